/* Do two threads get twice the work done on this machine? A check of the hardware, not of
   grokreg: vector arithmetic in registers (12 independent multiply-add chains per thread),
   then sums over a private buffer of 16 KB (L1), 400 KB (L2), 8 MB (L3) and 256 MB (memory),
   each at 1 and at 2 threads doing the same work per thread. Equal times (arithmetic) and
   equal GB/s per thread (caches) mean the cores and their caches are not shared, so a
   kernel that scales worse is limited by its own serial work or by data moving between
   the cores' caches. Last, that movement itself, in the pattern of a mini-batch epoch: 600
   times, every example of a batch of 100 reads 150 rows of a 784 x 112 float32 layer (the
   forward pass, examples shared among threads), then every row is updated (rows shared
   among threads); the update's time against the same update repeated alone shows what it
   costs to write rows that the other core has just read.

       cc -O3 -mavx2 -ffp-contract=off -fopenmp bench/cores.c -o cores && ./cores
*/
#include <stdio.h>
#include <stdlib.h>
#include <omp.h>

typedef float vec __attribute__((vector_size(32)));

static void arithmetic(void) {
    for (int threads = 1; threads <= 2; threads++) {
        double best = 1e9;
        for (int repeat = 0; repeat < 5; repeat++) {
            double started = omp_get_wtime();
            #pragma omp parallel num_threads(threads)
            {
                vec a[12];
                for (int v = 0; v < 12; v++) a[v] = (vec){0} + v * 1e-3f;
                vec m = (vec){0} + 0.999999f, b = (vec){0} + 1e-7f;
                for (long i = 0; i < 200000000L; i++) {
                    for (int v = 0; v < 12; v++) a[v] = a[v] * m + b;
                    __asm__ volatile("" ::"x"(a[0]));
                }
                float sum = 0;
                for (int v = 0; v < 12; v++) sum += a[v][0];
                if (sum == 12345) printf("!");
            }
            double seconds = omp_get_wtime() - started;
            if (seconds < best) best = seconds;
        }
        printf("arithmetic, %d thread(s): %.3f s for each thread's work\n", threads, best);
    }
}

static void caches(void) {
    long sizes[] = {16 * 1024, 400 * 1024, 8 * 1024 * 1024, 256 * 1024 * 1024};
    for (int s = 0; s < 4; s++) {
        long n = sizes[s] / 32, total = (1L << 32) / sizes[s] * sizes[s] / (s == 3 ? 4 : 1);
        for (int threads = 1; threads <= 2; threads++) {
            double best = 1e9;
            for (int repeat = 0; repeat < 3; repeat++) {
                #pragma omp parallel num_threads(threads)
                {
                    vec *buffer = aligned_alloc(64, n * 32);
                    for (long i = 0; i < n; i++) buffer[i] = (vec){0} + 1.0f;
                    #pragma omp barrier
                    double started = omp_get_wtime();
                    vec acc[8] = {0};
                    for (long pass = 0; pass < total / sizes[s]; pass++)
                        for (long i = 0; i < n; i += 8)
                            for (int v = 0; v < 8; v++) acc[v] += buffer[i + v];
                    float sum = 0;
                    for (int v = 0; v < 8; v++) sum += acc[v][0];
                    if (sum == 1) printf("!");
                    #pragma omp master
                    {
                        double seconds = omp_get_wtime() - started;
                        if (seconds < best) best = seconds;
                    }
                    free(buffer);
                }
            }
            printf("%8ld KB buffer, %d thread(s): %.1f GB/s per thread\n", sizes[s] / 1024,
                   threads, total / best / 1e9);
        }
    }
}

enum { INPUTS = 784, WIDTH = 112, BATCH = 100, ROWS_PER_EXAMPLE = 150, BATCHES = 600 };

static void shared_rows(void) {
    float *w = aligned_alloc(64, sizeof(float) * INPUTS * WIDTH);
    static int rows[BATCH][ROWS_PER_EXAMPLE];
    volatile float sink = 0;
    for (int i = 0; i < INPUTS * WIDTH; i++) w[i] = 1e-3f * (i % 100);
    srand(1);
    for (int b = 0; b < BATCH; b++) {
        int row = 100 + rand() % 50;
        for (int t = 0; t < ROWS_PER_EXAMPLE; t++) {
            row += 1 + rand() % 4;
            rows[b][t] = row % INPUTS;
        }
    }
    for (int threads = 1; threads <= 2; threads++) {
        double forward = 0, update = 0, alone = 0;
        for (int batch = 0; batch < 2 * BATCHES; batch++) {
            double started = omp_get_wtime();
            if (batch < BATCHES) {
                #pragma omp parallel for num_threads(threads) schedule(static)
                for (int b = 0; b < BATCH; b++) {
                    vec acc[14] = {0};
                    for (int t = 0; t < ROWS_PER_EXAMPLE; t++) {
                        const float *row = w + (size_t) rows[b][t] * WIDTH;
                        for (int v = 0; v < 14; v++) acc[v] += *(const vec *) (row + 8 * v);
                    }
                    float sum = 0;
                    for (int v = 0; v < 14; v++) sum += acc[v][0];
                    if (sum == 12345) sink = sum;
                }
            }
            double updating = omp_get_wtime();
            #pragma omp parallel for num_threads(threads) schedule(static)
            for (int k = 0; k < INPUTS; k++) {
                float *row = w + (size_t) k * WIDTH;
                for (int v = 0; v < 14; v++) *(vec *) (row + 8 * v) += (vec){0} + 1e-9f;
            }
            double done = omp_get_wtime();
            if (batch < BATCHES) {
                forward += updating - started;
                update += done - updating;
            } else {
                alone += done - updating;
            }
        }
        printf("shared rows, %d thread(s), 600 batches: forward %.1f ms, update after it %.1f ms,"
               " update alone %.1f ms\n", threads, 1e3 * forward, 1e3 * update, 1e3 * alone);
    }
    free(w);
}

int main(void) {
    arithmetic();
    caches();
    shared_rows();
    return 0;
}
