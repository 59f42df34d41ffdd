/* The first-layer update of a batch shared between threads, two ways, in its bare pattern
   (synthetic MNIST-like batches as update_loop.c's: 100 examples of 150 increasing inputs,
   float32, 100 hidden units padded to 104, AVX2, no fused multiply-add). "today" is grokreg's
   update of the ninth session: the counting sort split by parts of the batch, then the rows
   shared out.
   "columns": each thread sorts the whole batch for itself (no entry written by both) and
   sums its part of every row, split at a cache line (6 and 7 of the 13 vectors), so that no
   line of weights_0_1 is written by both. A check of the design, not of grokreg.

       cc -O3 -mavx2 -ffp-contract=off -fopenmp bench/update_threads.c -o update_threads &&
       ./update_threads
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#define INPUTS 784
#define B 100
#define NNZ 150
#define NB 60
#define W 104
typedef float vec __attribute__((vector_size(32), aligned(4)));
float *w, *delta; static int32_t csr_idx[NB][B*NNZ]; static float csr_val[NB][B*NNZ];
typedef struct { int32_t example; float value; } entry_t;
static entry_t ent[2][B*NNZ]; static int32_t cs2[2][INPUTS+1]; static int32_t pfill[2][INPUTS];
#define SUMS(V) static inline void sums##V(const entry_t *e, int s, int n, int c0, int k){ \
  vec acc[V]; for(int v=0;v<V;v++) acc[v]=(vec){0}; \
  for(int t=s;t<n;t++){ __asm__ volatile(""); vec x=(vec){0}+e[t].value; const float *row=delta+(size_t)e[t].example*W+c0; \
    for(int v=0;v<V;v++) acc[v]+=x* *(const vec*)(row+8*v);} \
  float *wr=w+(size_t)k*W+c0; for(int v=0;v<V;v++) *(vec*)(wr+8*v)+=(vec){0}+0.1f*acc[v]; }
SUMS(13) SUMS(7) SUMS(6)
static void sort_into(int nb, int b0, int b1, int32_t *cs, entry_t *e){ /* full sort of examples [b0,b1) */
  int32_t fill[INPUTS]; memset(cs,0,4*(INPUTS+1)); for(int t=b0*NNZ;t<b1*NNZ;t++) cs[csr_idx[nb][t]+1]++;
  for(int k=0;k<INPUTS;k++){cs[k+1]+=cs[k]; fill[k]=cs[k];}
  for(int t=b0*NNZ;t<b1*NNZ;t++){int p=fill[csr_idx[nb][t]]++; e[p].example=t/NNZ; e[p].value=csr_val[nb][t];} }
static void today(int threads){ for(int nb=0;nb<NB;nb++){
  static int32_t cnt[2][INPUTS]; static int32_t start[INPUTS+1];
  #pragma omp parallel for num_threads(threads) schedule(static)
  for(int p=0;p<threads;p++){ memset(cnt[p],0,4*INPUTS); for(int t=p*B/threads*NNZ;t<(p+1)*B/threads*NNZ;t++) cnt[p][csr_idx[nb][t]]++; }
  int pos=0; for(int k=0;k<INPUTS;k++){ start[k]=pos; for(int p=0;p<threads;p++){int c=cnt[p][k]; pfill[p][k]=pos; pos+=c;} } start[INPUTS]=pos;
  #pragma omp parallel for num_threads(threads) schedule(static)
  for(int p=0;p<threads;p++){ for(int t=p*B/threads*NNZ;t<(p+1)*B/threads*NNZ;t++){int q=pfill[p][csr_idx[nb][t]]++; ent[0][q].example=t/NNZ; ent[0][q].value=csr_val[nb][t];} }
  #pragma omp parallel for num_threads(threads) schedule(guided)
  for(int k=0;k<INPUTS;k++) if(start[k+1]>start[k]) sums13(ent[0], start[k], start[k+1], 0, k);
}}
static void columns(int threads){ for(int nb=0;nb<NB;nb++){
  #pragma omp parallel num_threads(threads)
  { int me=omp_get_thread_num(), n=omp_get_num_threads();
    sort_into(nb, 0, B, cs2[me], ent[me]);
    for(int k=0;k<INPUTS;k++){ int s=cs2[me][k], e=cs2[me][k+1]; if(s==e) continue;
      if(n==1) sums13(ent[me], s, e, 0, k);
      else { int odd = ((uintptr_t)(w+(size_t)k*W) % 64) != 0; /* split at a line */
        int split = odd ? 7 : 6;
        if(me==0){ if(split==7) sums7(ent[me],s,e,0,k); else sums6(ent[me],s,e,0,k);}
        else { if(split==7) sums6(ent[me],s,e,56,k); else sums7(ent[me],s,e,48,k);} } } }
}}
int main(){ w=aligned_alloc(64,4*INPUTS*W); delta=aligned_alloc(64,4*B*W);
 for(int i=0;i<INPUTS*W;i++) w[i]=0;
 for(int i=0;i<B*W;i++) delta[i]=1e-3*(i%97);
 srand(1);
 for(int nb=0;nb<NB;nb++) for(int b=0;b<B;b++){int row=100+rand()%50; for(int t=0;t<NNZ;t++){row+=1+rand()%4; csr_idx[nb][b*NNZ+t]=row%INPUTS; csr_val[nb][b*NNZ+t]=(rand()%255+1)/255.0f;}}
 for(int rep=0;rep<5;rep++){
  double r[4]; void (*f[2])(int)={today,columns};
  for(int i=0;i<2;i++) for(int th=1;th<=2;th++){ double best=1e9; for(int q=0;q<5;q++){double s=omp_get_wtime(); f[i](th); double d=omp_get_wtime()-s; if(d<best)best=d;} r[i*2+th-1]=best/NB*600*1e3; }
  printf("today 1t %.1f 2t %.1f (%.2fx) | columns 1t %.1f 2t %.1f (%.2fx) ms/epoch\n", r[0],r[1],r[0]/r[1],r[2],r[3],r[2]/r[3]);
 }
}
