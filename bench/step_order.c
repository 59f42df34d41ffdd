/* The order of a per-example step's row passes, written by hand: a yardstick for the book's
   overfit and dropout tables (grokreg's sgd_epoch).

   A step reads its image's rows of weights_0_1 in the forward pass and reads and writes them
   in the update; an MNIST image's ~148 rows (47 KB at 40 float64 units, 119 KB at 100) do not
   fit the 32 KB L1 data cache. This program runs the same steps (the first 1,000 images of the
   embedded MNIST subset, z = x . W in input order, W[i] += alpha * (x[i] * d) with d derived
   from z) in orders that read the rows differently, and prints microseconds per step:

     plain       forward inputs first to last, update first to last (grokreg before)
     reversed    update last to first: it starts on the rows the forward pass left in L1
     tiled       the columns in 2 tiles (each tile's rows ~28 KB at 40 units): forward tile 1
                 then 2, update tile 2 then 1 (rows last to first)
     fused       the update of one step and the forward pass of the next in one pass over
                 the union of their inputs, each shared row read once (columns in 2 tiles,
                 to keep sums and delta in 16 registers)

   All four compute the same numbers (checked). No fused multiply-add, as in grokreg. With
   --in-l1 every image's inputs are folded onto the first 32 rows (10 KB at 40 units, 25 KB
   at 100), so that every row comes from L1: what the same steps cost when the cache costs
   nothing.

       cc -O3 -mavx2 -ffp-contract=off bench/step_order.c -o step_order -lz
       ./step_order [--in-l1] [IMAGES.gz]     (default: grokreg/data/train-images-idx3-ubyte.gz)
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#define INPUTS 784
#define EXAMPLES 1000
#define MAX_VECTORS 25

typedef double vec __attribute__((vector_size(32), aligned(8)));
enum { LANES = 4 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int32_t *starts, *columns;
static double *values;

static void load(const char *path, int in_l1) {
    gzFile f = gzopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    static unsigned char image[INPUTS];
    unsigned char header[16];
    if (gzread(f, header, 16) != 16) { fprintf(stderr, "short file\n"); exit(1); }
    starts = malloc((EXAMPLES + 1) * sizeof *starts);
    columns = malloc((size_t) EXAMPLES * INPUTS * sizeof *columns);
    values = malloc((size_t) EXAMPLES * INPUTS * sizeof *values);
    int n = 0;
    for (int e = 0; e < EXAMPLES; e++) {
        if (gzread(f, image, INPUTS) != INPUTS) { fprintf(stderr, "short file\n"); exit(1); }
        starts[e] = n;
        for (int i = 0; i < INPUTS; i++)
            if (image[i]) { columns[n] = in_l1 ? i % 32 : i; values[n++] = image[i] / 255.0; }
    }
    starts[EXAMPLES] = n;
    gzclose(f);
}

/* sums over rows[0..count) of x * w[row][first .. first + V * LANES), added to z */
#define SUM_PASS(V)                                                                     \
    static inline __attribute__((always_inline)) void sum_##V(                        \
            const double *x, const int32_t *rows, int count, const double *w, int stride, \
            int first, double *z) {                                                   \
        vec acc[V];                                                                   \
        for (int v = 0; v < V; v++) acc[v] = *(const vec *) (z + first + v * LANES); \
        for (int t = 0; t < count; t++) {                                             \
            __asm__ __volatile__("");                                                 \
            const vec *row = (const vec *) (w + (size_t) rows[t] * stride + first);  \
            double xt = x[t];                                                         \
            for (int v = 0; v < V; v++) acc[v] += xt * row[v];                        \
        }                                                                             \
        for (int v = 0; v < V; v++) *(vec *) (z + first + v * LANES) = acc[v];       \
    }
/* w[rows[t]][first ..] += alpha * (x[t] * d[first ..]), t from first to last or back */
#define ADD_PASS(V)                                                                     \
    static inline __attribute__((always_inline)) void add_##V(                        \
            const double *x, const int32_t *rows, int count, double *w, int stride,   \
            int first, const double *d, double alpha, int backwards) {                \
        vec dv[V];                                                                    \
        for (int v = 0; v < V; v++) dv[v] = *(const vec *) (d + first + v * LANES);  \
        for (int k = 0; k < count; k++) {                                             \
            __asm__ __volatile__("");                                                 \
            int t = backwards ? count - 1 - k : k;                                    \
            vec *row = (vec *) (w + (size_t) rows[t] * stride + first);              \
            double xt = x[t];                                                         \
            for (int v = 0; v < V; v++) row[v] = row[v] + alpha * (xt * dv[v]);       \
        }                                                                             \
    }
SUM_PASS(5) SUM_PASS(10) SUM_PASS(13) SUM_PASS(12)
ADD_PASS(5) ADD_PASS(10) ADD_PASS(13) ADD_PASS(12)

/* one pass over the merged inputs of the step just computed (update, delta d) and the next
   (forward, sums into z), columns first .. first + 5 * LANES */
static inline __attribute__((always_inline)) void fused_5(
        const double *xu, const int32_t *ru, int nu, const double *xf, const int32_t *rf,
        int nf, double *w, int stride, int first, const double *d, double alpha, double *z) {
    vec acc[5], dv[5];
    for (int v = 0; v < 5; v++) {
        acc[v] = *(const vec *) (z + first + v * LANES);
        dv[v] = *(const vec *) (d + first + v * LANES);
    }
    int a = 0, b = 0;
    while (a < nu || b < nf) {
        __asm__ __volatile__("");
        int ia = a < nu ? ru[a] : INPUTS, ib = b < nf ? rf[b] : INPUTS;
        int i = ia < ib ? ia : ib;
        vec *row = (vec *) (w + (size_t) i * stride + first);
        if (ia == i) {
            double xt = xu[a++];
            for (int v = 0; v < 5; v++) row[v] = row[v] + alpha * (xt * dv[v]);
        }
        if (ib == i) {
            double xt = xf[b++];
            for (int v = 0; v < 5; v++) acc[v] += xt * row[v];
        }
    }
    for (int v = 0; v < 5; v++) *(vec *) (z + first + v * LANES) = acc[v];
}

enum { PLAIN, REVERSED, TILED, FUSED };
static const char *NAMES[] = {"plain", "reversed", "tiled", "fused"};

static void sums(int hidden, const double *x, const int32_t *rows, int count, const double *w,
                 int first_tile_only, int second_tile_only, double *z) {
    if (hidden == 40) {
        if (first_tile_only) sum_5(x, rows, count, w, hidden, 0, z);
        else if (second_tile_only) sum_5(x, rows, count, w, hidden, 20, z);
        else sum_10(x, rows, count, w, hidden, 0, z);
    } else { /* 100 units: 13 + 12 vectors, as grokreg's blocks of up to 14 split them */
        if (!second_tile_only) sum_13(x, rows, count, w, hidden, 0, z);
        if (!first_tile_only) sum_12(x, rows, count, w, hidden, 52, z);
    }
}

static void adds(int hidden, const double *x, const int32_t *rows, int count, double *w,
                 int tile, const double *d, double alpha, int backwards) {
    /* tile: 0 both (first then second), 1 the first, 2 the second */
    if (hidden == 40) {
        if (tile == 0) add_10(x, rows, count, w, hidden, 0, d, alpha, backwards);
        if (tile == 1) add_5(x, rows, count, w, hidden, 0, d, alpha, backwards);
        if (tile == 2) add_5(x, rows, count, w, hidden, 20, d, alpha, backwards);
    } else {
        if (tile == 0 || tile == 1) add_13(x, rows, count, w, hidden, 0, d, alpha, backwards);
        if (tile == 0 || tile == 2) add_12(x, rows, count, w, hidden, 52, d, alpha, backwards);
    }
}

static void delta_of(const double *z, int hidden, double *d) {
    for (int j = 0; j < hidden; j++) d[j] = z[j] > 0 ? 0.5 - z[j] : 0.0;
}

/* one epoch in the given order; returns a checksum of the weights */
static double epoch(int order, int hidden, double *w, double *z, double *d, double alpha) {
    for (int e = 0; e < EXAMPLES; e++) {
        const int32_t *rows = columns + starts[e];
        const double *x = values + starts[e];
        int count = starts[e + 1] - starts[e];
        if (order != FUSED || e == 0) {
            memset(z, 0, hidden * sizeof *z);
            if (order == TILED) {
                sums(hidden, x, rows, count, w, 1, 0, z);
                sums(hidden, x, rows, count, w, 0, 1, z);
            } else {
                sums(hidden, x, rows, count, w, 0, 0, z);
            }
        }
        delta_of(z, hidden, d);
        if (order == PLAIN) adds(hidden, x, rows, count, w, 0, d, alpha, 0);
        if (order == REVERSED) adds(hidden, x, rows, count, w, 0, d, alpha, 1);
        if (order == TILED) {
            adds(hidden, x, rows, count, w, 2, d, alpha, 1);
            adds(hidden, x, rows, count, w, 1, d, alpha, 1);
        }
        if (order == FUSED) {
            if (e + 1 < EXAMPLES) {
                int next = e + 1, nf = starts[next + 1] - starts[next];
                memset(z, 0, hidden * sizeof *z);
                for (int first = 0; first < hidden; first += 20)
                    fused_5(x, rows, count, values + starts[next], columns + starts[next], nf,
                            w, hidden, first, d, alpha, z);
            } else {
                adds(hidden, x, rows, count, w, 0, d, alpha, 1);
            }
        }
    }
    double sum = 0;
    for (int i = 0; i < INPUTS * hidden; i++) sum += w[i];
    return sum;
}

int main(int argc, char **argv) {
    int in_l1 = argc > 1 && strcmp(argv[1], "--in-l1") == 0;
    load(argc > 1 + in_l1 ? argv[1 + in_l1] : "grokreg/data/train-images-idx3-ubyte.gz", in_l1);
    printf("%d images, %.1f non-zero pixels each on average%s\n", EXAMPLES,
           (double) starts[EXAMPLES] / EXAMPLES, in_l1 ? ", folded onto 32 rows (in L1)" : "");
    int hiddens[] = {40, 100};
    for (int h = 0; h < 2; h++) {
        int hidden = hiddens[h];
        double *w = aligned_alloc(64, INPUTS * hidden * sizeof *w);
        double z[MAX_VECTORS * LANES] __attribute__((aligned(32)));
        double d[MAX_VECTORS * LANES] __attribute__((aligned(32)));
        double best[4] = {1e9, 1e9, 1e9, 1e9}, check[4];
        int orders = hidden == 40 ? 4 : 3; /* fused is written for 40 units' 2 tiles */
        for (int round = 0; round < 7; round++)
            for (int order = 0; order < orders; order++) {
                srand(1);
                for (int i = 0; i < INPUTS * hidden; i++) w[i] = 0.2 * rand() / RAND_MAX - 0.1;
                double started = now();
                for (int r = 0; r < 5; r++) check[order] = epoch(order, hidden, w, z, d, 0.005);
                double us = (now() - started) / (5.0 * EXAMPLES) * 1e6;
                if (us < best[order]) best[order] = us;
            }
        printf("%d units (%d bytes a row):", hidden, hidden * 8);
        for (int order = 0; order < orders; order++)
            printf("  %s %.3f us%s", NAMES[order], best[order],
                   check[order] == check[0] || in_l1 ? "" : " (DIFFERENT WEIGHTS)");
        printf("\n");
        free(w);
    }
    return 0;
}
