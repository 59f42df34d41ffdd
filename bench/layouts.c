/* Three ways to share a mini-batch epoch between 2 threads, timed in its bare pattern: each
   batch, 100 examples read 150 rows each of a 784 x 112 float32 layer (the forward pass), then
   every row is updated (the first-layer update). "By examples" (grokreg's layout until its
   tenth session): each thread takes half the examples, then half the rows, so every row is
   read by both cores and written by one. "By columns": each thread takes a whole-cache-line
   part of every row (8 and 6 of its 14 vectors) for all examples, so no line is ever shared.
   "By inputs" (grokreg's layout since): each thread sums, for every example, the rows of its
   half of the inputs (split where the batch's entries are halved), stores that partial sum,
   and after a barrier adds the two halves for half the examples and updates its own rows, so
   no row is ever shared either, and each row is read once per example as in the plain loop.
   At 1 thread all three are the same loop. A check of the hardware, not of grokreg.

       cc -O3 -mavx2 -ffp-contract=off -fopenmp bench/layouts.c -o layouts && ./layouts
*/
#include <stdio.h>
#include <stdlib.h>
#include <omp.h>
#define INPUTS 784
#define W 112
#define B 100
#define NNZ 150
#define BATCHES 600
typedef float vec __attribute__((vector_size(32), aligned(4)));
float *w; int rows[B][NNZ]; volatile float sink;
static void by_examples(int nt){
  #pragma omp parallel num_threads(nt)
  {
    #pragma omp for schedule(static)
    for(int b=0;b<B;b++){ vec acc[14]={0}; for(int t=0;t<NNZ;t++){ const float *r=w+(size_t)rows[b][t]*W; for(int v=0;v<14;v++) acc[v]+=*(const vec*)(r+8*v);} {vec s=acc[0]; for(int v=1;v<14;v++) s+=acc[v]; if(s[0]==12345) sink=1;} }
    #pragma omp for schedule(static)
    for(int k=0;k<INPUTS;k++){ float *r=w+(size_t)k*W; for(int v=0;v<14;v++) *(vec*)(r+8*v)+=(vec){0}+1e-9f; }
  }
}
#define COLS(V) static void cols##V(void){ const int nthreads = 14 / V; \
  _Pragma("omp parallel num_threads(nthreads)") \
  { int v0=V*omp_get_thread_num(); \
    for(int b=0;b<B;b++){ vec acc[V]={0}; for(int t=0;t<NNZ;t++){ const float *r=w+(size_t)rows[b][t]*W+8*v0; for(int v=0;v<V;v++) acc[v]+=*(const vec*)(r+8*v);} {vec s=acc[0]; for(int v=1;v<V;v++) s+=acc[v]; if(s[0]==12345) sink=1;} } \
    for(int k=0;k<INPUTS;k++){ float *r=w+(size_t)k*W+8*v0; for(int v=0;v<V;v++) *(vec*)(r+8*v)+=(vec){0}+1e-9f; } } }
COLS(14) COLS(7)
#define PART(V, v0) { \
    for(int b=0;b<B;b++){ vec acc[V]={0}; for(int t=0;t<NNZ;t++){ const float *r=w+(size_t)rows[b][t]*W+8*(v0); for(int v=0;v<V;v++) acc[v]+=*(const vec*)(r+8*v);} {vec s=acc[0]; for(int v=1;v<V;v++) s+=acc[v]; if(s[0]==12345) sink=1;} } \
    for(int k=0;k<INPUTS;k++){ float *r=w+(size_t)k*W+8*(v0); for(int v=0;v<V;v++) *(vec*)(r+8*v)+=(vec){0}+1e-9f; } }
static void split_lines(void){
  #pragma omp parallel num_threads(2)
  { if (omp_get_thread_num() == 0) PART(8, 0) else PART(6, 8) }
}
static void by_columns(int nt){ if(nt==1) cols14(); else split_lines(); }
static float partial[2][B][W]; static int split; /* the median input of the batch's entries */
static void by_inputs(int nt){
  #pragma omp parallel num_threads(nt)
  { int m=omp_get_thread_num(), team=omp_get_num_threads();
    int lo = m==0 ? 0 : split, hi = m==team-1 ? INPUTS : split;
    for(int b=0;b<B;b++){ vec acc[14]={0}; for(int t=0;t<NNZ;t++){ int k=rows[b][t]; if(k<lo) continue; if(k>=hi) break; const float *r=w+(size_t)k*W; for(int v=0;v<14;v++) acc[v]+=*(const vec*)(r+8*v);} for(int v=0;v<14;v++) *(vec*)(&partial[m][b][8*v])=acc[v]; }
    #pragma omp barrier
    #pragma omp for schedule(static)
    for(int b=0;b<B;b++){ vec s={0}; for(int q=0;q<team;q++) for(int v=0;v<14;v++) s+=*(vec*)(&partial[q][b][8*v]); if(s[0]==12345) sink=1; }
    for(int k=lo;k<hi;k++){ float *r=w+(size_t)k*W; for(int v=0;v<14;v++) *(vec*)(r+8*v)+=(vec){0}+1e-9f; }
    #pragma omp barrier
  }
}
static int ascending(const void *a, const void *b){ return *(const int*)a - *(const int*)b; }
int main(){ w=aligned_alloc(64,4*INPUTS*W); for(int i=0;i<INPUTS*W;i++) w[i]=1e-3f*(i%100);
  srand(1); for(int b=0;b<B;b++){int row=100+rand()%50; for(int t=0;t<NNZ;t++){row+=1+rand()%4; rows[b][t]=row%INPUTS;}
    qsort(rows[b],NNZ,sizeof(int),ascending);}  /* a row's inputs ascend, as in grokreg */
  { static int all[B*NNZ]; for(int i=0;i<B*NNZ;i++) all[i]=rows[i/NNZ][i%NNZ];
    qsort(all,B*NNZ,sizeof(int),ascending); split=all[B*NNZ/2]; }
  for(int rep=0;rep<3;rep++) for(int nt=1;nt<=2;nt++){
    double t=omp_get_wtime(); for(int i=0;i<BATCHES;i++) by_examples(nt); double te=omp_get_wtime()-t;
    t=omp_get_wtime(); for(int i=0;i<BATCHES;i++) by_columns(nt); double tc=omp_get_wtime()-t;
    t=omp_get_wtime(); for(int i=0;i<BATCHES;i++) by_inputs(nt); double ti=omp_get_wtime()-t;
    printf("%d thread(s): split by examples %.1f ms, by columns %.1f ms, by inputs %.1f ms (600 batches)\n",
           nt, te*1e3, tc*1e3, ti*1e3);
  }
}
