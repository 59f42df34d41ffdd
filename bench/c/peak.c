/* The arithmetic ceiling of the dense layout's register tiles: float32 multiply-adds per
 * second on one core, with a separate multiply and add, and with fused multiply-adds (as
 * grokreg's matrix products and OpenBLAS's compute them). Where the two differ (Intel cores,
 * whose multiplies and adds share the FMA ports), fusing is what reaches the ceiling.
 *
 *   gcc -O2 -march=x86-64-v4 -ffp-contract=off bench/c/peak.c -o /tmp/peak && /tmp/peak
 *
 * (x86-64-v4: AVX-512; use -mavx2 -mfma for a CPU without it.) Each loop keeps ACCUMULATORS
 * independent vector accumulators, enough to cover the add's latency on both pipes, each
 * adding its own product (as a tile adds input x weight), and runs from registers only: no
 * load or store bounds it. Prints the best of 5 runs of each.
 */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

#define ACCUMULATORS 12
#define STEPS 100000000L

#if defined(__AVX512F__)
typedef __m512 vec;
#define LANES 16
#define SET1 _mm512_set1_ps
#define MUL _mm512_mul_ps
#define ADD _mm512_add_ps
#define FMA _mm512_fmadd_ps
#define SUM(v) _mm512_reduce_add_ps(v)
#else
typedef __m256 vec;
#define LANES 8
#define SET1 _mm256_set1_ps
#define MUL _mm256_mul_ps
#define ADD _mm256_add_ps
#define FMA _mm256_fmadd_ps
static float SUM(vec v) { float f[8]; _mm256_storeu_ps(f, v); return f[0]; }
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* acc += a * b with the multiply and the add as two instructions (two pipes, no fusion) */
static float separate(float x, long steps) {
    vec acc[ACCUMULATORS], b[ACCUMULATORS], a = SET1(x);
    for (int i = 0; i < ACCUMULATORS; i++) acc[i] = SET1((float)i), b[i] = SET1(1.0f + i);
    for (long s = 0; s < steps; s++) {
#pragma GCC unroll 16
        for (int i = 0; i < ACCUMULATORS; i++) acc[i] = ADD(acc[i], MUL(a, b[i]));
        __asm__ volatile("" : "+v"(a));  /* a product per step: not hoisted out of the loop */
    }
    float total = 0;
    for (int i = 0; i < ACCUMULATORS; i++) total += SUM(acc[i]);
    return total;
}

static float fused(float x, long steps) {
    vec acc[ACCUMULATORS], b[ACCUMULATORS], a = SET1(x);
    for (int i = 0; i < ACCUMULATORS; i++) acc[i] = SET1((float)i), b[i] = SET1(1.0f + i);
    for (long s = 0; s < steps; s++) {
#pragma GCC unroll 16
        for (int i = 0; i < ACCUMULATORS; i++) acc[i] = FMA(a, b[i], acc[i]);
        __asm__ volatile("" : "+v"(a));
    }
    float total = 0;
    for (int i = 0; i < ACCUMULATORS; i++) total += SUM(acc[i]);
    return total;
}

static void report(const char *name, float (*loop)(float, long)) {
    double best = 1e30;
    float sink = 0;
    for (int run = 0; run < 5; run++) {
        double started = now();
        sink += loop(1e-9f, STEPS / 10);
        double seconds = now() - started;
        if (seconds < best) best = seconds;
    }
    double macs = (double)(STEPS / 10) * ACCUMULATORS * LANES;
    printf("%-34s %6.1f G multiply-adds/s  (%d-lane vectors; checksum %g)\n", name,
           macs / best / 1e9, LANES, sink);
}

int main(void) {
    report("multiply, then add", separate);
    report("fused multiply-add (grokreg, OpenBLAS)", fused);
    return 0;
}
