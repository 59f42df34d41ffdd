/* What a parallel region costs on this machine: grokreg's mini-batch epoch opens ~8 OpenMP
   regions per batch (forward pass, hidden deltas, the gather of a shuffled batch, and three
   for each layer's update), each a fork and a join of the team. Times, at 2 threads, a
   region per loop of 2 trivial iterations, against the same loops inside one region (a
   barrier each, what one region per batch would pay instead).

       cc -O2 -fopenmp bench/regions.c -o regions && ./regions
*/
#include <stdio.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static volatile double sink[2][8];  /* a line per thread apart: no sharing */
int main(void) {
    enum { LOOPS = 20000 };
    for (int round = 0; round < 3; round++) {
        double start = now();
        for (int k = 0; k < LOOPS; k++) {
            #pragma omp parallel for num_threads(2) schedule(static)
            for (int b = 0; b < 2; b++) sink[b][0] += 1;
        }
        double regions = (now() - start) / LOOPS * 1e6;
        start = now();
        #pragma omp parallel num_threads(2)
        for (int k = 0; k < LOOPS; k++) {
            #pragma omp for schedule(static)
            for (int b = 0; b < 2; b++) sink[b][0] += 1;
        }
        double barriers = (now() - start) / LOOPS * 1e6;
        printf("a region per loop: %.2f us a loop; one region, a barrier per loop: %.2f us\n",
               regions, barriers);
    }
    return 0;
}
