/* Register tiles: the dense layout's matrix products (grokreg/_dense.pxi), after the
 * micro-kernels of BLIS and OpenBLAS. A tile of ROWS x VECTORS vector registers of
 * accumulators is kept while the shared dimension is walked, so that every vector of
 * weights loaded serves ROWS rows and every input read serves VECTORS vectors.
 *
 * The arithmetic is that of the sparse rows (grokreg/_rows.pxi), bit for bit: each
 * accumulator is one output summed in the order of t, each product added with one rounding
 * (a fused multiply-add, IEEE 754's fusedMultiplyAdd, the same bits on every CPU and in
 * every build: FMA instructions where the build has them, C's fma/fmaf elsewhere), starting
 * from the given start values or +0. Skipping a zero input there, adding its +-0 product
 * here: the same sum while the weights are finite.
 *
 *   grokreg_tile_sums:   out[r] = start + sum over s of a[r * a_r + t * a_t] * w[rows[t]]
 *   grokreg_tile_update: w[rows[r]] += alpha * (sum over s of inputs[r][t] * d[t]),
 *                        the update itself a fused multiply-add too
 *
 * with t = steps[s] for s < count: the steps of the shared dimension where the tile has a
 * non-zero input, in order (each a row of VECTORS vectors from the tile's first column; w, d
 * and out rows ld apart).
 * GCC and clang get explicit vector types, so that the tile stays in registers whatever the
 * compiler's cost model says (left to the auto-vectoriser, GCC kept the accumulators in
 * memory); other compilers run plain loops, slower, with the same results. */
#ifndef GROKREG_TILES_H
#define GROKREG_TILES_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__AVX512F__)
#define GROKREG_VECTOR_BYTES 64
#define GROKREG_TILE_ROWS 8     /* 24 of the 32 registers for accumulators */
#define GROKREG_TILE_VECTORS 3
#elif defined(__AVX__)
#define GROKREG_VECTOR_BYTES 32
#define GROKREG_TILE_ROWS 6     /* 12 of the 16 registers for accumulators */
#define GROKREG_TILE_VECTORS 2
#else
#define GROKREG_VECTOR_BYTES 16
#define GROKREG_TILE_ROWS 6
#define GROKREG_TILE_VECTORS 2
#endif

/* room for the largest tile of any build; a shape's unused registers are never touched */
#define GROKREG_MAX_ROWS 8
#define GROKREG_MAX_VECTORS 3

#if defined(__GNUC__) || defined(__clang__)
#define GROKREG_INLINE static inline __attribute__((always_inline))
/* the loops over a tile's rows and vectors unrolled whole, so that it lives in registers */
#define GROKREG_UNROLL _Pragma("GCC unroll 8")
/* may_alias and the element's alignment: loaded from and stored to plain float rows */
typedef float grokreg_v32 __attribute__((vector_size(GROKREG_VECTOR_BYTES), aligned(4), may_alias));
typedef double grokreg_v64 __attribute__((vector_size(GROKREG_VECTOR_BYTES), aligned(8), may_alias));
/* 32 bytes, the rows' padding (grokreg.network.padded_width): a row's last columns with
   64-byte vectors */
typedef float grokreg_h32 __attribute__((vector_size(32), aligned(4), may_alias));
typedef double grokreg_h64 __attribute__((vector_size(32), aligned(8), may_alias));
#define GROKREG_V_ZERO(V) ((V) {0})
#define GROKREG_V_LOAD(V, p) (*(const V *) (p))
#define GROKREG_V_STORE(V, p, x) (*(V *) (p) = (x))
#define GROKREG_V_LANE(x, i) ((x)[i])
/* acc + x * w rounded once (a fused multiply-add), x broadcast; likewise a row's update,
 * w + alpha * acc. Where the target has FMA instructions both are written as a product and a
 * sum, which the compiler fuses: the tile bodies are compiled with contraction on
 * (GROKREG_CONTRACT, below; the rest of grokreg with it off), so that each FMA reads x from
 * memory by broadcast and the tile stays in registers (with FMA intrinsics GCC 12 spilled the
 * accumulators to the stack at every step, 2.5x slower). Elsewhere C's fma, lane by lane: the
 * same bits, slower. The tests check these bits against an exact fused multiply-add and
 * against the portable build. */
#if defined(__FMA__) || defined(__AVX512F__) || defined(__ARM_FEATURE_FMA)
#define GROKREG_CONTRACT 1
#define GROKREG_V_ADD_PRODUCT(V, acc, x, w) ((acc) = (acc) + (x) * (w))
#define GROKREG_V_ADD_SCALED(V, p, alpha, acc) (*(V *) (p) = *(V *) (p) + (alpha) * (acc))
#else
#define GROKREG_CONTRACT 0
#define GROKREG_V_ADD_PRODUCT(V, acc, x, w) GROKREG_FMA_LANES_##V(acc, x, w)
#define GROKREG_V_ADD_SCALED(V, p, alpha, acc)                                              \
    do {                                                                                    \
        V scaled_ = GROKREG_V_LOAD(V, p);                                                   \
        GROKREG_FMA_LANES_##V(scaled_, alpha, acc);                                         \
        GROKREG_V_STORE(V, p, scaled_);                                                     \
    } while (0)
#endif
#define GROKREG_FMA_LANES(V, FMA, acc, x, w)                                                \
    do {                                                                                    \
        int lane_;                                                                          \
        for (lane_ = 0; lane_ < (int) (sizeof(V) / sizeof((acc)[0])); lane_++)              \
            (acc)[lane_] = FMA((x), (w)[lane_], (acc)[lane_]);                              \
    } while (0)
#define GROKREG_FMA_LANES_grokreg_v32(acc, x, w) GROKREG_FMA_LANES(grokreg_v32, fmaf, acc, x, w)
#define GROKREG_FMA_LANES_grokreg_v64(acc, x, w) GROKREG_FMA_LANES(grokreg_v64, fma, acc, x, w)
#define GROKREG_FMA_LANES_grokreg_h32(acc, x, w) GROKREG_FMA_LANES(grokreg_h32, fmaf, acc, x, w)
#define GROKREG_FMA_LANES_grokreg_h64(acc, x, w) GROKREG_FMA_LANES(grokreg_h64, fma, acc, x, w)
#else
#define GROKREG_INLINE static __inline
#define GROKREG_UNROLL
#define GROKREG_CONTRACT 0
#define GROKREG_LANES32 (GROKREG_VECTOR_BYTES / 4)
#define GROKREG_LANES64 (GROKREG_VECTOR_BYTES / 8)
typedef struct { float v[GROKREG_LANES32]; } grokreg_v32;
typedef struct { double v[GROKREG_LANES64]; } grokreg_v64;
typedef struct { float v[8]; } grokreg_h32;
typedef struct { double v[4]; } grokreg_h64;
#define GROKREG_LANES_OF(V) ((int) (sizeof(V) / sizeof(((V *) 0)->v[0])))
#define GROKREG_V_ZERO(V) grokreg_zero_##V()
#define GROKREG_V_LOAD(V, p) grokreg_load_##V(p)
#define GROKREG_V_STORE(V, p, x) grokreg_store_##V(p, x)
#define GROKREG_V_LANE(x, i) ((x).v[i])
#define GROKREG_V_ADD_PRODUCT(V, acc, x, w) grokreg_add_product_##V(&(acc), x, w)
#define GROKREG_V_ADD_SCALED(V, p, alpha, acc) grokreg_add_scaled_##V(p, alpha, acc)
#define GROKREG_FMA_float fmaf
#define GROKREG_FMA_double fma
#define GROKREG_PLAIN_VECTOR(V, T) \
    GROKREG_INLINE V grokreg_zero_##V(void) { V z; int i; for (i = 0; i < GROKREG_LANES_OF(V); i++) z.v[i] = 0; return z; } \
    GROKREG_INLINE V grokreg_load_##V(const T *p) { V z; int i; for (i = 0; i < GROKREG_LANES_OF(V); i++) z.v[i] = p[i]; return z; } \
    GROKREG_INLINE void grokreg_store_##V(T *p, V x) { int i; for (i = 0; i < GROKREG_LANES_OF(V); i++) p[i] = x.v[i]; } \
    GROKREG_INLINE void grokreg_add_product_##V(V *acc, T x, V w) { int i; for (i = 0; i < GROKREG_LANES_OF(V); i++) acc->v[i] = GROKREG_FMA_##T(x, w.v[i], acc->v[i]); } \
    GROKREG_INLINE void grokreg_add_scaled_##V(T *p, T alpha, V acc) { int i; for (i = 0; i < GROKREG_LANES_OF(V); i++) p[i] = GROKREG_FMA_##T(alpha, acc.v[i], p[i]); }
GROKREG_PLAIN_VECTOR(grokreg_v32, float)
GROKREG_PLAIN_VECTOR(grokreg_v64, double)
GROKREG_PLAIN_VECTOR(grokreg_h32, float)
GROKREG_PLAIN_VECTOR(grokreg_h64, double)
#endif

/* Packing (grokreg/_dense.pxi): a batch's rows side by side, packed[k * ld + b] =
 * values[examples[b] * n_inputs + k] for b < n, k in low..high - 1. Blocks of eight inputs
 * of eight examples are transposed in registers (unpack, shuffle and swap halves, as
 * _MM_TRANSPOSE8_PS does), a block of inputs across all the examples at a time, so that
 * each line of packed is written whole while the examples' lines stay in L1; plain copies
 * where the compiler has no vector shuffles, and for the last inputs and examples. Only
 * moves values: the same bits. */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define GROKREG_SHUFFLE8(M, a, b, i0, i1, i2, i3, i4, i5, i6, i7) \
    __builtin_shufflevector(a, b, i0, i1, i2, i3, i4, i5, i6, i7)
#elif defined(__GNUC__)
#define GROKREG_SHUFFLE8(M, a, b, i0, i1, i2, i3, i4, i5, i6, i7) \
    __builtin_shuffle(a, b, (M) {i0, i1, i2, i3, i4, i5, i6, i7})
#endif
#ifdef GROKREG_SHUFFLE8
typedef float grokreg_f8 __attribute__((vector_size(32), aligned(4), may_alias));
typedef int32_t grokreg_f8_mask __attribute__((vector_size(32)));
typedef double grokreg_d8 __attribute__((vector_size(64), aligned(8), may_alias));
typedef int64_t grokreg_d8_mask __attribute__((vector_size(64)));
#define GROKREG_TRANSPOSE8(V, M, in, out)                                                   \
    do {                                                                                    \
        V t_[8], u_[8];                                                                     \
        int i_;                                                                             \
        GROKREG_UNROLL for (i_ = 0; i_ < 8; i_ += 2) { /* pairs of rows interleaved */      \
            t_[i_] = GROKREG_SHUFFLE8(M, in[i_], in[i_ + 1], 0, 8, 1, 9, 4, 12, 5, 13);     \
            t_[i_ + 1] = GROKREG_SHUFFLE8(M, in[i_], in[i_ + 1], 2, 10, 3, 11, 6, 14, 7, 15); \
        }                                                                                   \
        GROKREG_UNROLL for (i_ = 0; i_ < 8; i_ += 4) { /* pairs of pairs */                 \
            u_[i_] = GROKREG_SHUFFLE8(M, t_[i_], t_[i_ + 2], 0, 1, 8, 9, 4, 5, 12, 13);     \
            u_[i_ + 1] = GROKREG_SHUFFLE8(M, t_[i_], t_[i_ + 2], 2, 3, 10, 11, 6, 7, 14, 15); \
            u_[i_ + 2] = GROKREG_SHUFFLE8(M, t_[i_ + 1], t_[i_ + 3], 0, 1, 8, 9, 4, 5, 12, 13); \
            u_[i_ + 3] = GROKREG_SHUFFLE8(M, t_[i_ + 1], t_[i_ + 3], 2, 3, 10, 11, 6, 7, 14, 15); \
        }                                                                                   \
        GROKREG_UNROLL for (i_ = 0; i_ < 4; i_++) { /* rows 0-3 with rows 4-7 */            \
            out[i_] = GROKREG_SHUFFLE8(M, u_[i_], u_[i_ + 4], 0, 1, 2, 3, 8, 9, 10, 11);    \
            out[i_ + 4] = GROKREG_SHUFFLE8(M, u_[i_], u_[i_ + 4], 4, 5, 6, 7, 12, 13, 14, 15); \
        }                                                                                   \
    } while (0)
#define GROKREG_PACK_BLOCKS(T, V, M)                                                        \
    for (; k + 8 <= high; k += 8) {                                                         \
        for (b = 0; b + 8 <= n; b += 8) {                                                   \
            V in_[8], out_[8];                                                              \
            GROKREG_UNROLL for (r = 0; r < 8; r++)                                          \
                in_[r] = *(const V *) (values + examples[b + r] * n_inputs + k);            \
            GROKREG_TRANSPOSE8(V, M, in_, out_);                                            \
            GROKREG_UNROLL for (r = 0; r < 8; r++)                                          \
                *(V *) (packed + (k + r) * ld + b) = out_[r];                               \
        }                                                                                   \
        for (; b < n; b++)                                                                  \
            for (r = 0; r < 8; r++)                                                         \
                packed[(k + r) * ld + b] = values[examples[b] * n_inputs + k + r];          \
    }
#else
#define GROKREG_PACK_BLOCKS(T, V, M)
#endif

#define GROKREG_PACK_ROWS(T, V, M, SUFFIX)                                                  \
static void grokreg_pack_rows_##SUFFIX(const T *values, const int64_t *examples,            \
                                       ptrdiff_t n, ptrdiff_t n_inputs, ptrdiff_t low,      \
                                       ptrdiff_t high, T *packed, ptrdiff_t ld) {           \
    ptrdiff_t k = low, b;                                                                   \
    int r;                                                                                  \
    GROKREG_PACK_BLOCKS(T, V, M)                                                            \
    for (; k < high; k++)                                                                   \
        for (b = 0; b < n; b++)                                                             \
            packed[k * ld + b] = values[examples[b] * n_inputs + k];                        \
}
#ifdef GROKREG_SHUFFLE8
GROKREG_PACK_ROWS(float, grokreg_f8, grokreg_f8_mask, f32)
GROKREG_PACK_ROWS(double, grokreg_d8, grokreg_d8_mask, f64)
#else
GROKREG_PACK_ROWS(float, , , f32)
GROKREG_PACK_ROWS(double, , , f64)
#endif

#if GROKREG_CONTRACT && defined(__clang__)
#pragma clang fp contract(fast)
#elif GROKREG_CONTRACT
#pragma GCC push_options
#pragma GCC optimize("fp-contract=fast")
#endif

/* The bodies, for a tile of MR rows and NV vectors known where they are inlined. */
#define GROKREG_TILE_BODIES(T, V, SUFFIX)                                                   \
GROKREG_INLINE void grokreg_sums_body_##SUFFIX(                                             \
        const int MR, const int NV, const T *a, ptrdiff_t a_r, ptrdiff_t a_t,                \
        const T *w, ptrdiff_t ldw, const int32_t *rows, const int32_t *steps,               \
        ptrdiff_t count, const T *start, T *out, ptrdiff_t ldo) {                          \
    const ptrdiff_t lanes = (ptrdiff_t) (sizeof(V) / sizeof(T));                            \
    V acc[GROKREG_MAX_ROWS][GROKREG_MAX_VECTORS];                                          \
    ptrdiff_t s, t;                                                                         \
    int r, v;                                                                               \
    GROKREG_UNROLL for (r = 0; r < MR; r++)                                                                \
        GROKREG_UNROLL for (v = 0; v < NV; v++)                                                            \
            acc[r][v] = start ? GROKREG_V_LOAD(V, start + v * lanes) : GROKREG_V_ZERO(V);  \
    for (s = 0; s < count; s++) {                                                           \
        const T *row;                                                                       \
        t = steps[s];                                                                       \
        row = w + (ptrdiff_t) rows[t] * ldw;                                                \
        V weights[GROKREG_MAX_VECTORS];                                                    \
        GROKREG_UNROLL for (v = 0; v < NV; v++)                                                            \
            weights[v] = GROKREG_V_LOAD(V, row + v * lanes);                                \
        GROKREG_UNROLL for (r = 0; r < MR; r++) {                                                          \
            const T x = a[r * a_r + t * a_t];                                               \
            GROKREG_UNROLL for (v = 0; v < NV; v++)                                                        \
                GROKREG_V_ADD_PRODUCT(V, acc[r][v], x, weights[v]);                         \
        }                                                                                   \
    }                                                                                       \
    GROKREG_UNROLL for (r = 0; r < MR; r++)                                                                \
        GROKREG_UNROLL for (v = 0; v < NV; v++)                                                            \
            GROKREG_V_STORE(V, out + r * ldo + v * lanes, acc[r][v]);                       \
}                                                                                           \
GROKREG_INLINE void grokreg_update_body_##SUFFIX(                                           \
        const int MR, const int NV, const T *const *inputs, const T *d, ptrdiff_t ldd,      \
        const int32_t *steps, ptrdiff_t count, T alpha, T *w, ptrdiff_t ldw,                \
        const int32_t *rows) {                                                             \
    const ptrdiff_t lanes = (ptrdiff_t) (sizeof(V) / sizeof(T));                            \
    V acc[GROKREG_MAX_ROWS][GROKREG_MAX_VECTORS];                                          \
    ptrdiff_t s, t;                                                                         \
    int r, v;                                                                               \
    GROKREG_UNROLL for (r = 0; r < MR; r++)                                                                \
        GROKREG_UNROLL for (v = 0; v < NV; v++)                                                            \
            acc[r][v] = GROKREG_V_ZERO(V);                                                  \
    for (s = 0; s < count; s++) {                                                           \
        V deltas[GROKREG_MAX_VECTORS];                                                     \
        t = steps[s];                                                                       \
        GROKREG_UNROLL for (v = 0; v < NV; v++)                                                            \
            deltas[v] = GROKREG_V_LOAD(V, d + t * ldd + v * lanes);                         \
        GROKREG_UNROLL for (r = 0; r < MR; r++) {                                                          \
            const T x = inputs[r][t];                                                        \
            GROKREG_UNROLL for (v = 0; v < NV; v++)                                                        \
                GROKREG_V_ADD_PRODUCT(V, acc[r][v], x, deltas[v]);                          \
        }                                                                                   \
    }                                                                                       \
    GROKREG_UNROLL for (r = 0; r < MR; r++)                                                                \
        GROKREG_UNROLL for (v = 0; v < NV; v++)                                                            \
            GROKREG_V_ADD_SCALED(V, w + (ptrdiff_t) rows[r] * ldw + v * lanes, alpha,       \
                                 acc[r][v]);                                                \
}

GROKREG_TILE_BODIES(float, grokreg_v32, f32)
GROKREG_TILE_BODIES(double, grokreg_v64, f64)
GROKREG_TILE_BODIES(float, grokreg_h32, h32)
GROKREG_TILE_BODIES(double, grokreg_h64, h64)

/* A row's last 32 bytes of columns (past its whole 64-byte vectors) for a block of examples,
 * with the vectors the other way: each accumulator holds one column of a vector of examples,
 * read from the packed batch (a[t * a_t + e]), and each weight is broadcast, so that every
 * fused multiply-add does a whole vector's work (the half-width tile does half of one).
 * The same sums: out[e] = start + sum over s of a[t * a_t + e] * w[rows[t]], t = steps[s],
 * for the EV vectors of examples from e = 0. */
#define GROKREG_BLOCK_MAX_VECTORS 4
#define GROKREG_BLOCK_BODY(T, V, SUFFIX)                                                    \
GROKREG_INLINE void grokreg_block_body_##SUFFIX(                                            \
        const int EV, const T *a, ptrdiff_t a_t, const T *w, ptrdiff_t ldw,                 \
        const int32_t *rows, const int32_t *steps, ptrdiff_t count, const T *start, T *out, \
        ptrdiff_t ldo) {                                                                   \
    enum { LANES = (int) (sizeof(V) / sizeof(T)), COLUMNS = (int) (32 / sizeof(T)) };       \
    V acc[GROKREG_BLOCK_MAX_VECTORS][COLUMNS];                                             \
    ptrdiff_t s, t;                                                                         \
    int e, c, lane;                                                                         \
    GROKREG_UNROLL for (e = 0; e < EV; e++)                                                 \
        GROKREG_UNROLL for (c = 0; c < COLUMNS; c++)                                        \
            for (lane = 0; lane < LANES; lane++)                                            \
                GROKREG_V_LANE(acc[e][c], lane) = start ? start[c] : 0;                     \
    for (s = 0; s < count; s++) {                                                           \
        const T *row;                                                                       \
        V x[GROKREG_BLOCK_MAX_VECTORS];                                                    \
        t = steps[s];                                                                       \
        row = w + (ptrdiff_t) rows[t] * ldw;                                                \
        GROKREG_UNROLL for (e = 0; e < EV; e++)                                             \
            x[e] = GROKREG_V_LOAD(V, a + t * a_t + e * LANES);                              \
        GROKREG_UNROLL for (c = 0; c < COLUMNS; c++) {                                      \
            const T weight = row[c];                                                        \
            GROKREG_UNROLL for (e = 0; e < EV; e++) /* fma(weight, x, acc): x * weight */   \
                GROKREG_V_ADD_PRODUCT(V, acc[e][c], weight, x[e]);                          \
        }                                                                                   \
    }                                                                                       \
    for (e = 0; e < EV; e++)                                                                \
        for (lane = 0; lane < LANES; lane++)                                                \
            GROKREG_UNROLL for (c = 0; c < COLUMNS; c++)                                    \
                out[(e * LANES + lane) * ldo + c] = GROKREG_V_LANE(acc[e][c], lane);        \
}                                                                                           \
static void grokreg_block_sums_##SUFFIX(                                                    \
        int ev, const T *a, ptrdiff_t a_t, const T *w, ptrdiff_t ldw, const int32_t *rows,  \
        const int32_t *steps, ptrdiff_t count, const T *start, T *out, ptrdiff_t ldo) {     \
    switch (ev) {                                                                           \
        case 1: grokreg_block_body_##SUFFIX(1, a, a_t, w, ldw, rows, steps, count, start, out, ldo); break; \
        case 2: grokreg_block_body_##SUFFIX(2, a, a_t, w, ldw, rows, steps, count, start, out, ldo); break; \
        case 3: grokreg_block_body_##SUFFIX(3, a, a_t, w, ldw, rows, steps, count, start, out, ldo); break; \
        case 4: grokreg_block_body_##SUFFIX(4, a, a_t, w, ldw, rows, steps, count, start, out, ldo); break; \
        default: break;                                                                     \
    }                                                                                       \
}
GROKREG_BLOCK_BODY(float, grokreg_v32, f32)
GROKREG_BLOCK_BODY(double, grokreg_v64, f64)

/* One function per kind and dtype, which takes the tile's shape at run time and runs the
 * body compiled for it: every shape up to ROWS x VECTORS, the smaller ones for the edges. */
#define GROKREG_SHAPE(MR, NV, CALL) case (MR) * 16 + (NV): CALL(MR, NV); break;
#define GROKREG_SHAPES_OF_ROWS(MR, CALL) \
    GROKREG_SHAPE(MR, 1, CALL) GROKREG_SHAPE(MR, 2, CALL) GROKREG_SHAPE(MR, 3, CALL)
#define GROKREG_SHAPES(CALL)                                                                \
    GROKREG_SHAPES_OF_ROWS(1, CALL) GROKREG_SHAPES_OF_ROWS(2, CALL)                         \
    GROKREG_SHAPES_OF_ROWS(3, CALL) GROKREG_SHAPES_OF_ROWS(4, CALL)                         \
    GROKREG_SHAPES_OF_ROWS(5, CALL) GROKREG_SHAPES_OF_ROWS(6, CALL)                         \
    GROKREG_SHAPES_OF_ROWS(7, CALL) GROKREG_SHAPES_OF_ROWS(8, CALL)

#define GROKREG_TILE_FUNCTIONS(T, SUFFIX)                                                   \
static void grokreg_tile_sums_##SUFFIX(                                                     \
        int mr, int nv, const T *a, ptrdiff_t a_r, ptrdiff_t a_t, const T *w,               \
        ptrdiff_t ldw, const int32_t *rows, const int32_t *steps, ptrdiff_t count,           \
        const T *start, T *out, ptrdiff_t ldo) {                                           \
    if (mr > GROKREG_TILE_ROWS || nv > GROKREG_TILE_VECTORS) return;                        \
    switch (mr * 16 + nv) {                                                                 \
        GROKREG_SHAPES(GROKREG_CALL_SUMS_##SUFFIX)                                          \
        default: break;                                                                     \
    }                                                                                       \
}                                                                                           \
static void grokreg_tile_update_##SUFFIX(                                                   \
        int mr, int nv, const T *const *inputs, const T *d, ptrdiff_t ldd,                  \
        const int32_t *steps, ptrdiff_t count, T alpha, T *w, ptrdiff_t ldw,                \
        const int32_t *rows) {                                                             \
    if (mr > GROKREG_TILE_ROWS || nv > GROKREG_TILE_VECTORS) return;                        \
    switch (mr * 16 + nv) {                                                                 \
        GROKREG_SHAPES(GROKREG_CALL_UPDATE_##SUFFIX)                                        \
        default: break;                                                                     \
    }                                                                                       \
}

#define GROKREG_CALL_SUMS_f32(MR, NV) \
    if ((MR) <= GROKREG_TILE_ROWS && (NV) <= GROKREG_TILE_VECTORS) \
        grokreg_sums_body_f32(MR, NV, a, a_r, a_t, w, ldw, rows, steps, count, start, out, ldo)
#define GROKREG_CALL_SUMS_f64(MR, NV) \
    if ((MR) <= GROKREG_TILE_ROWS && (NV) <= GROKREG_TILE_VECTORS) \
        grokreg_sums_body_f64(MR, NV, a, a_r, a_t, w, ldw, rows, steps, count, start, out, ldo)
#define GROKREG_CALL_UPDATE_f32(MR, NV) \
    if ((MR) <= GROKREG_TILE_ROWS && (NV) <= GROKREG_TILE_VECTORS) \
        grokreg_update_body_f32(MR, NV, inputs, d, ldd, steps, count, alpha, w, ldw, rows)
#define GROKREG_CALL_UPDATE_f64(MR, NV) \
    if ((MR) <= GROKREG_TILE_ROWS && (NV) <= GROKREG_TILE_VECTORS) \
        grokreg_update_body_f64(MR, NV, inputs, d, ldd, steps, count, alpha, w, ldw, rows)

GROKREG_TILE_FUNCTIONS(float, f32)
GROKREG_TILE_FUNCTIONS(double, f64)

/* A tile one 32-byte block wide (the last columns of a row, past its whole 64-byte vectors):
 * the same arguments, nv unused. */
#define GROKREG_ROWS_OF(CALL) \
    case 1: CALL(1); break; case 2: CALL(2); break; case 3: CALL(3); break; \
    case 4: CALL(4); break; case 5: CALL(5); break; case 6: CALL(6); break; \
    case 7: CALL(7); break; case 8: CALL(8); break;
#define GROKREG_HALF_FUNCTIONS(T, SUFFIX)                                                   \
static void grokreg_tile_sums_half_##SUFFIX(                                                \
        int mr, int nv, const T *a, ptrdiff_t a_r, ptrdiff_t a_t, const T *w,               \
        ptrdiff_t ldw, const int32_t *rows, const int32_t *steps, ptrdiff_t count,           \
        const T *start, T *out, ptrdiff_t ldo) {                                           \
    (void) nv;                                                                              \
    switch (mr) { GROKREG_ROWS_OF(GROKREG_HALF_SUMS_##SUFFIX) default: break; }            \
}                                                                                           \
static void grokreg_tile_update_half_##SUFFIX(                                              \
        int mr, int nv, const T *const *inputs, const T *d, ptrdiff_t ldd,                  \
        const int32_t *steps, ptrdiff_t count, T alpha, T *w, ptrdiff_t ldw,                \
        const int32_t *rows) {                                                             \
    (void) nv;                                                                              \
    switch (mr) { GROKREG_ROWS_OF(GROKREG_HALF_UPDATE_##SUFFIX) default: break; }          \
}
#define GROKREG_HALF_SUMS_f32(MR) \
    if ((MR) <= GROKREG_TILE_ROWS) \
        grokreg_sums_body_h32(MR, 1, a, a_r, a_t, w, ldw, rows, steps, count, start, out, ldo)
#define GROKREG_HALF_SUMS_f64(MR) \
    if ((MR) <= GROKREG_TILE_ROWS) \
        grokreg_sums_body_h64(MR, 1, a, a_r, a_t, w, ldw, rows, steps, count, start, out, ldo)
#define GROKREG_HALF_UPDATE_f32(MR) \
    if ((MR) <= GROKREG_TILE_ROWS) \
        grokreg_update_body_h32(MR, 1, inputs, d, ldd, steps, count, alpha, w, ldw, rows)
#define GROKREG_HALF_UPDATE_f64(MR) \
    if ((MR) <= GROKREG_TILE_ROWS) \
        grokreg_update_body_h64(MR, 1, inputs, d, ldd, steps, count, alpha, w, ldw, rows)
GROKREG_HALF_FUNCTIONS(float, f32)
GROKREG_HALF_FUNCTIONS(double, f64)

#if GROKREG_CONTRACT && defined(__clang__)
#pragma clang fp contract(off)
#elif GROKREG_CONTRACT
#pragma GCC pop_options
#endif

#endif
