/* The first layer's row loop written by hand: a yardstick for grokreg's kernels.

   z[:hidden] = sum over t of x[t] * w[rows[t], :], 150 rows per example (as many as an MNIST
   image has non-zero pixels), rows increasing with gaps of 1-4 over 784 inputs, float64, the
   sums in vector registers (GCC/clang vector types), no fused multiply-add. Prints the time per
   row and per example, with and without software prefetching, for 40 and 100 hidden units:
   how fast the arithmetic grokreg's kernels do can go on this CPU.

       cc -O3 -mavx2 -ffp-contract=off bench/row_loop.c -o row_loop && ./row_loop
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define INPUTS 784
#define ROWS_PER_EXAMPLE 150
#define EXAMPLES 1000
#define MAX_VECTORS 14 /* accumulators per pass, as in grokreg's kernels */

typedef double vec __attribute__((vector_size(32), aligned(8)));
enum { LANES = 4 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* one pass: out[:vectors * LANES] for the rows of one example */
static inline __attribute__((always_inline)) void pass(
        const double *x, const int32_t *rows, const double *w, int hidden, int vectors,
        int prefetch, double *out) {
    vec acc[MAX_VECTORS];
    for (int v = 0; v < vectors; v++) acc[v] = (vec){0, 0, 0, 0};
    for (int t = 0; t < ROWS_PER_EXAMPLE; t++) {
        if (prefetch) {
            int ahead = t + 8 < ROWS_PER_EXAMPLE ? t + 8 : ROWS_PER_EXAMPLE - 1;
            const char *next = (const char *) (w + (size_t) rows[ahead] * hidden);
            for (int line = 0; line < (vectors * 32 + 63) / 64; line++)
                __builtin_prefetch(next + 64 * line);
        }
        const double *row = w + (size_t) rows[t] * hidden;
        vec xt = (vec){0, 0, 0, 0} + x[t];
        for (int v = 0; v < vectors; v++) acc[v] += xt * *(const vec *) (row + LANES * v);
    }
    for (int v = 0; v < vectors; v++) *(vec *) (out + LANES * v) = acc[v];
}

static void run(int hidden, int prefetch, const double *x, const int32_t *rows) {
    double *w = malloc(sizeof(double) * INPUTS * hidden);
    double out[128], best = 1e9;
    volatile double sink = 0; /* every example's sums are used */
    for (int i = 0; i < INPUTS * hidden; i++) w[i] = 1e-6 * (i % 1000) - 5e-4;
    for (int repeat = 0; repeat < 20; repeat++) {
        double started = now();
        for (int e = 0; e < EXAMPLES; e++) {
            const double *xe = x + e * ROWS_PER_EXAMPLE;
            const int32_t *re = rows + e * ROWS_PER_EXAMPLE;
            int done = 0;
            while (done < hidden) { /* passes of up to MAX_VECTORS vectors, as the kernels */
                int vectors = (hidden - done) / LANES;
                if (vectors > MAX_VECTORS) vectors = MAX_VECTORS;
                if (vectors == 14) pass(xe, re, w + done, hidden, 14, prefetch, out + done);
                else if (vectors == 11) pass(xe, re, w + done, hidden, 11, prefetch, out + done);
                else if (vectors == 10) pass(xe, re, w + done, hidden, 10, prefetch, out + done);
                else { fprintf(stderr, "unsupported width\n"); exit(1); }
                done += vectors * LANES;
            }
            sink += out[e % hidden];
        }
        double seconds = now() - started;
        if (seconds < best) best = seconds;
    }
    printf("| %d | %s | %.2f | %.3f |\n", hidden, prefetch ? "yes" : "no",
           best / EXAMPLES / ROWS_PER_EXAMPLE * 1e9, best / EXAMPLES * 1e6);
    free(w);
}

int main(void) {
    double *x = malloc(sizeof(double) * EXAMPLES * ROWS_PER_EXAMPLE);
    int32_t *rows = malloc(sizeof(int32_t) * EXAMPLES * ROWS_PER_EXAMPLE);
    srand(1);
    for (int e = 0; e < EXAMPLES; e++) {
        int row = 100 + rand() % 50;
        for (int t = 0; t < ROWS_PER_EXAMPLE; t++) {
            row += 1 + rand() % 4;
            rows[e * ROWS_PER_EXAMPLE + t] = row % INPUTS;
            x[e * ROWS_PER_EXAMPLE + t] = (rand() % 255 + 1) / 255.0;
        }
    }
    printf("| hidden units | prefetch | ns / row | µs / example (150 rows) |\n|---|---|---|---|\n");
    for (int prefetch = 0; prefetch < 2; prefetch++) {
        run(40, prefetch, x, rows);
        run(100, prefetch, x, rows);
    }
    free(x);
    free(rows);
    return 0;
}
