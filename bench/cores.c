/* Do two threads get twice the work done on this machine? A check of the hardware, not of
   grokreg: vector arithmetic in registers (12 independent multiply-add chains per thread),
   then sums over a private buffer of 16 KB (L1), 400 KB (L2), 8 MB (L3) and 256 MB (memory),
   each at 1 and at 2 threads doing the same work per thread. Equal times (arithmetic) and
   equal GB/s per thread (caches) mean the cores and their caches are not shared, so a
   kernel that scales worse is limited by its own serial work or by data moving between
   the cores' caches. Then that movement itself, in the pattern of a mini-batch epoch: 600
   times, every example of a batch of 100 reads 150 rows of a 784 x 112 float32 layer (the
   forward pass, examples shared among threads), then every row is updated (rows shared
   among threads); the update's time against the same update repeated alone shows what it
   costs to write rows that the other core has just read. Then whether the two cores keep
   pace with each other: register arithmetic, and reads from L2, cut into the steps of a
   mini-batch epoch (600 batches of 4 steps between barriers, 30-35 us a step at 2 threads)
   and split evenly between 2 threads as grokreg's kernels split a batch (a fixed share
   each, so that the bits never depend on the thread count), against 1 thread doing it all:
   the speed-up this machine allows such a split with no data shared at all, and each
   thread's time waiting for the other. Last, what grokreg's split by inputs must still move
   between the cores every batch: each thread's partial sums of every example's hidden units
   (100 x 104 floats), of which the other reads half where it finishes its half of the
   examples, and those examples' hidden deltas, which the other reads for its rows' update;
   against the same reads of data the thread wrote itself.

       cc -O3 -mavx2 -ffp-contract=off -fopenmp bench/cores.c -o cores && ./cores
       ./cores lockstep       # only the lockstep parts (~5 s), e.g. beside a kernel's timing
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    (void) sink;
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

enum { STEPS = 4 * BATCHES, STEP_ITERATIONS = 16000, EPOCHS = 10, L2_VECTORS = 256 * 1024 / 32,
       STEP_PASSES = 12 };

/* Every lane of every vector, so that the compiler keeps all the work that made them. */
static float total(const vec *vectors, int n) {
    float sum = 0;
    for (int v = 0; v < n; v++)
        for (int lane = 0; lane < 8; lane++) sum += vectors[v][lane];
    return sum;
}

static void step_of_arithmetic(long iterations) {
    vec a[12];
    for (int v = 0; v < 12; v++) a[v] = (vec){0} + v * 1e-3f;
    vec m = (vec){0} + 0.999999f, b = (vec){0} + 1e-7f;
    for (long i = 0; i < iterations; i++) {
        for (int v = 0; v < 12; v++) a[v] = a[v] * m + b;
        __asm__ volatile("" ::"x"(a[0]));
    }
    if (total(a, 12) == 12345) printf("!");
}

/* A step of passes over the thread's own 256 KB buffer (in L2). */
static void step_of_reads(const vec *buffer, int passes) {
    vec acc[8] = {0};
    for (int pass = 0; pass < passes; pass++) {
        __asm__ volatile("" : "+r"(buffer));  /* every pass reads: nothing hoisted */
        for (long i = 0; i < L2_VECTORS; i += 8)
            for (int v = 0; v < 8; v++) acc[v] += buffer[i + v];
    }
    if (total(acc, 8) == 12345) printf("!");
}

static void lockstep(int reads) {
    static vec *buffers[2];
    for (int t = 0; t < 2; t++) {
        if (!buffers[t]) buffers[t] = aligned_alloc(64, L2_VECTORS * 32);
        for (long i = 0; i < L2_VECTORS; i++) buffers[t][i] = (vec){0} + 1.0f;
    }
    printf("lockstep, %s, %d epochs of %d steps, each: 1 thread ms, 2 threads ms (speed-up),"
           " each thread's ms waiting at the barriers\n",
           reads ? "reads from L2" : "register arithmetic", EPOCHS, STEPS);
    for (int epoch = 0; epoch < EPOCHS; epoch++) {
        double started = omp_get_wtime();
        for (int step = 0; step < STEPS; step++) {
            if (reads) {
                step_of_reads(buffers[0], 2 * STEP_PASSES);
            } else {
                step_of_arithmetic(2 * STEP_ITERATIONS);
            }
        }
        double alone = omp_get_wtime() - started;
        double waiting[2] = {0, 0};
        started = omp_get_wtime();
        #pragma omp parallel num_threads(2)
        {
            int thread = omp_get_thread_num();
            for (int step = 0; step < STEPS; step++) {
                if (reads) {
                    step_of_reads(buffers[thread], STEP_PASSES);
                } else {
                    step_of_arithmetic(STEP_ITERATIONS);
                }
                double arrived = omp_get_wtime();
                #pragma omp barrier
                waiting[thread] += omp_get_wtime() - arrived;
            }
        }
        double together = omp_get_wtime() - started;
        printf("  %.1f, %.1f (%.2fx), %.1f / %.1f\n", 1e3 * alone, 1e3 * together,
               alone / together, 1e3 * waiting[0], 1e3 * waiting[1]);
    }
}

enum { UNITS = 104 };

static float sums_by_run[2][BATCH][UNITS], deltas[BATCH][UNITS];

/* One batch's exchange: each thread (run) writes its partial sums of every example; each
   finishes half the examples (their sums from both runs, or when !across from its own run
   twice); each reads every example's deltas (or when !across its own half twice). */
static float exchange(int thread, int across) {
    vec acc = {0};
    for (int b = 0; b < BATCH; b++)
        for (int v = 0; v < UNITS / 8; v++)
            *(vec *) &sums_by_run[thread][b][8 * v] = acc + (float) b;
    #pragma omp barrier
    for (int b = thread * BATCH / 2; b < (thread + 1) * BATCH / 2; b++)
        for (int v = 0; v < UNITS / 8; v++)
            *(vec *) &deltas[b][8 * v] = *(vec *) &sums_by_run[thread][b][8 * v]
                                         + *(vec *) &sums_by_run[across ? 1 - thread : thread][b][8 * v];
    #pragma omp barrier
    for (int b = 0; b < BATCH; b++) {
        int read = across ? b : thread * BATCH / 2 + b % (BATCH / 2);
        for (int v = 0; v < UNITS / 8; v++) acc += *(vec *) &deltas[read][8 * v];
    }
    #pragma omp barrier
    return total(&acc, 1);
}

static void crossing(void) {
    for (int round = 0; round < 3; round++) {
        double ms[2];
        float sink = 0;
        for (int across = 0; across <= 1; across++) {
            double started = omp_get_wtime();
            #pragma omp parallel num_threads(2) reduction(+ : sink)
            for (int batch = 0; batch < BATCHES; batch++) sink += exchange(omp_get_thread_num(), across);
            ms[across] = 1e3 * (omp_get_wtime() - started);
        }
        printf("a split by inputs' exchange, 2 threads, 600 batches: %.1f ms reading the other"
               " core's half, %.1f ms reading its own%s\n", ms[1], ms[0], sink == 1 ? "!" : "");
    }
}

int main(int argc, char **argv) {
    int only_lockstep = argc > 1 && strcmp(argv[1], "lockstep") == 0;
    if (!only_lockstep) {
        arithmetic();
        caches();
        shared_rows();
    }
    lockstep(0);
    lockstep(1);
    if (!only_lockstep) crossing();
    return 0;
}
