/* The first-layer update of one batch by hand in C: a yardstick for update_inputs.

   A batch of 100 synthetic MNIST-like examples (150 increasing inputs each, gaps of 1-4 over
   784), float32, 100 hidden units padded to 112, AVX2 vectors, no fused multiply-add. Times
   the counting sort alone (entries as two arrays, or as one array of (example, value)
   pairs), the count alone, and the sums with each input's row update (14 vectors at once,
   or two column halves, or two halves copied to a compact array), per batch and per epoch
   of 600 batches.

       cc -O3 -mavx2 -ffp-contract=off bench/update_loop.c -o update_loop && ./update_loop
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define INPUTS 784
#define B 100
#define NNZ 150
#define NB 60
#define W 112
typedef float vec __attribute__((vector_size(32), aligned(4)));
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
float *w, *delta, *compact; int32_t colstart[NB][INPUTS+1]; int32_t ex[NB][B*NNZ]; float val[NB][B*NNZ];
/* update with delta rows of stride `stride`, columns [c0, c0+8*V) */
#define PASS(V) static inline void pass##V(int nb, const float *d, int stride, int c0){ \
  for(int k=0;k<INPUTS;k++){ int s=colstart[nb][k], e=colstart[nb][k+1]; if(s==e) continue; \
    vec acc[V]; for(int v=0;v<V;v++) acc[v]=(vec){0}; \
    for(int t=s;t<e;t++){ vec x=(vec){0}+val[nb][t]; const float *row=d+(size_t)ex[nb][t]*stride; \
      for(int v=0;v<V;v++) acc[v]+=x* *(const vec*)(row+8*v);} \
    float *wr=w+(size_t)k*W+c0; for(int v=0;v<V;v++) *(vec*)(wr+8*v)+=(vec){0}+0.1f*acc[v]; } }
PASS(14) PASS(7)
static void full(void){ for(int nb=0;nb<NB;nb++) pass14(nb, delta, W, 0); }
static void halves(void){ for(int nb=0;nb<NB;nb++){ pass7(nb, delta, W, 0); pass7(nb, delta+56, W, 56);} }
static void halves_compact(void){ for(int nb=0;nb<NB;nb++){
  for(int h=0;h<2;h++){ for(int b=0;b<B;b++) memcpy(compact+b*56, delta+b*W+56*h, 56*4); pass7(nb, compact, 56, 56*h);} } }
static void bench(const char*name, void(*f)(void)){double best=1e9; for(int r=0;r<10;r++){double s=now();f();double d=now()-s;if(d<best)best=d;}
 printf("%-16s %.1f us/batch -> %.1f ms/epoch (600 batches)\n",name,best/NB*1e6,best/NB*600*1e3);}
static int32_t csr_idx[NB][B*NNZ]; static float csr_val[NB][B*NNZ];
static void sort_only(void){ for(int nb=0;nb<NB;nb++){ static int32_t cs[INPUTS+1], fill[INPUTS];
  memset(cs,0,sizeof cs); for(int t=0;t<B*NNZ;t++) cs[csr_idx[nb][t]+1]++;
  for(int k=0;k<INPUTS;k++){cs[k+1]+=cs[k]; fill[k]=cs[k];}
  for(int b=0;b<B;b++) for(int t=b*NNZ;t<(b+1)*NNZ;t++){int p=fill[csr_idx[nb][t]]++; ex[nb][p]=b; val[nb][p]=csr_val[nb][t];} } }
typedef struct { int32_t example; float value; } entry_t; static entry_t entries[B*NNZ];
static void sort_struct(void){ for(int nb=0;nb<NB;nb++){ static int32_t cs[INPUTS+1], fill[INPUTS];
  memset(cs,0,sizeof cs); for(int t=0;t<B*NNZ;t++) cs[csr_idx[nb][t]+1]++;
  for(int k=0;k<INPUTS;k++){cs[k+1]+=cs[k]; fill[k]=cs[k];}
  for(int b=0;b<B;b++) for(int t=b*NNZ;t<(b+1)*NNZ;t++){int p=fill[csr_idx[nb][t]]++; entries[p].example=b; entries[p].value=csr_val[nb][t];} } }
static void count_only(void){ for(int nb=0;nb<NB;nb++){ static int32_t cs[INPUTS+1], fill[INPUTS];
  memset(cs,0,sizeof cs); for(int t=0;t<B*NNZ;t++) cs[csr_idx[nb][t]+1]++;
  for(int k=0;k<INPUTS;k++){cs[k+1]+=cs[k]; fill[k]=cs[k];} } }
int main(){ w=aligned_alloc(64,4*INPUTS*W); delta=aligned_alloc(64,4*B*W); compact=aligned_alloc(64,4*B*56);
 for(int i=0;i<INPUTS*W;i++) w[i]=0; for(int i=0;i<B*W;i++) delta[i]=1e-3*(i%97);
 srand(1);
 for(int nb=0;nb<NB;nb++){ static int rows[B][NNZ]; int count[INPUTS]={0};
   for(int b=0;b<B;b++){int row=100+rand()%50; for(int t=0;t<NNZ;t++){row+=1+rand()%4; rows[b][t]=row%INPUTS; count[row%INPUTS]++;}}
   colstart[nb][0]=0; for(int k=0;k<INPUTS;k++) colstart[nb][k+1]=colstart[nb][k]+count[k];
   int fill[INPUTS]; for(int k=0;k<INPUTS;k++) fill[k]=colstart[nb][k];
   for(int b=0;b<B;b++) for(int t=0;t<NNZ;t++){csr_idx[nb][b*NNZ+t]=rows[b][t]; csr_val[nb][b*NNZ+t]=0.5f;}
   for(int b=0;b<B;b++) for(int t=0;t<NNZ;t++){int k=rows[b][t]; ex[nb][fill[k]]=b; val[nb][fill[k]++]=(rand()%255+1)/255.0f;} }
 bench("sort only",sort_only); bench("sort struct",sort_struct); bench("count only",count_only); bench("full 14 vectors",full); bench("halves",halves); bench("halves compact",halves_compact);
}
