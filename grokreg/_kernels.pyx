"""grokreg's compiled kernels: the inputs-hidden-outputs network of Grokking Deep Learning, ch. 8.

Layout follows scikit-learn's Cython modules: ``cdef ... noexcept nogil`` functions work on one
example (raw pointers into C-contiguous arrays), ``def`` functions loop them over a whole epoch or
data set with the GIL released, and the public Python layer (``grokreg.network``) converts and
validates user input before calling down. The ``def`` functions still check every shape and
index they rely on, so calling them directly with bad arguments raises instead of crashing.

Conventions (the book's names): ``weights_1_2`` is (n_hidden, n_outputs) and ``weights_0_1`` is
(n_inputs, width) with width >= n_hidden: its rows may be padded with zero columns, and
``bias_1`` (width,) likewise. grokreg.network pads them to whole cache lines, so that a row is
read in whole vectors, in one pass of registers (100 float32 units take 12.5 AVX2 vectors:
a second pass over the same rows for the last half vector cost a third of the time); the
padding's sums are zeros and are never read, and its updates add zeros (delta_1's padding is
0). ``bias_1`` and ``bias_2`` are added to the layers' sums (zeros, never updated, without
biases: starting a sum from +0.0 changes nothing). Targets are one-hot rows built
from integer labels. The update is ``w += alpha * (activation * delta)``, where for squared
error ``delta = target - output`` (gradient descent on half the squared error, the book's
convention) and for softmax cross-entropy ``delta = target - softmax(output)``.

Data sets are stored once in compressed sparse row form, ``sparse_rows(x)`` = (``data``,
``indices``, ``indptr``) as scipy.sparse names them, and every pass reads only the non-zero
inputs, contiguously (MNIST is ~19% ink). Skipping a zero input is exact while the weights are
finite: ``x_k * w`` adds an exact zero. Hidden units that are zero (inactive or dropped) are
likewise skipped in the second layer. Once training has diverged, NumPy's ``0 * inf`` is NaN;
book mode then follows the book with rows that keep their zeros (``sparse_rows(x, True)``) and
``dense`` set, which skips nothing.
"""
from contextlib import nullcontext

import numpy as np

from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid
from libc.math cimport exp, isfinite, log
from libc.string cimport memcpy
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from numpy.random cimport bitgen_t

cdef extern from *:
    """
    #ifdef _OPENMP
    #define GROKREG_OPENMP 1
    #else
    #define GROKREG_OPENMP 0
    #endif
    """
    const int GROKREG_OPENMP

# Without OpenMP (a compiler that lacks it) the prange loops below run in the calling thread.
OPENMP = bool(GROKREG_OPENMP)

cdef extern from *:
    """
    static int grokreg_cpu_has_avx2(void) {
    #if defined(GROKREG_CPU_DISPATCH) && (defined(__GNUC__) || defined(__clang__))
        /* setup.py defines GROKREG_CPU_DISPATCH where it builds the AVX2 kernels, having checked
           that this compiler has __builtin_cpu_supports; it is also false where the operating
           system does not save the AVX registers */
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") != 0;
    #else
        return 0;
    #endif
    }
    #ifdef __AVX2__
    #define GROKREG_BUILT_FOR_AVX2 1
    #else
    #define GROKREG_BUILT_FOR_AVX2 0
    #endif
    """
    int grokreg_cpu_has_avx2() noexcept nogil
    const int GROKREG_BUILT_FOR_AVX2

# Which instructions this build was compiled for, and whether this CPU runs the AVX2 build
# (grokreg._dispatch chooses with these).
AVX2 = bool(GROKREG_BUILT_FOR_AVX2)


def cpu_has_avx2():
    """True where this CPU (and operating system) can run the AVX2 build of the kernels."""
    return bool(grokreg_cpu_has_avx2())


cdef extern from *:
    """
    #include <time.h>
    static double grokreg_now(void) {
        struct timespec t;
        timespec_get(&t, TIME_UTC);
        return (double) t.tv_sec + 1e-9 * (double) t.tv_nsec;
    }
    """
    # seconds, for bench/phases.py's breakdown of a mini-batch epoch (train_epoch's phases)
    double now "grokreg_now"() noexcept nogil

#: the phases of a mini-batch epoch that train_epoch(phases=...) times, in its order
PHASES = ("masks", "forward", "hidden deltas", "weights_1_2 update", "weights_0_1 update",
          "biases")


cdef inline void lap(double *phases, int phase, double *mark) noexcept nogil:
    """Add the time since mark to phases[phase] (when timing) and move mark on."""
    cdef double t
    if phases != NULL:
        t = now()
        phases[phase] += t - mark[0]
        mark[0] = t


cpdef enum Loss:
    SQUARED_ERROR = 0
    SOFTMAX_CROSS_ENTROPY = 1


cdef struct Dropout:
    bint active        # draw a mask at each training step
    bint book          # the book's mask: raw 32-bit draw & 1, survivors x2, gradient masked only
    double keep        # probability that a unit survives (inverted dropout)
    bitgen_t *rng


cdef struct Rules:
    bint book          # the book's arithmetic: ReLU derivative 1, its mask and batch loop
    bint train_bias
    int loss           # SQUARED_ERROR or SOFTMAX_CROSS_ENTROPY
    bint dense         # skip no zero: 0 * inf must give NaN, as in NumPy (after a divergence)
    Dropout dropout


# ---------------------------------------------------------------------------------------------
# One example
# ---------------------------------------------------------------------------------------------

# sum_rows, the products of every layer, works in blocks of columns held in a local array,
# which the compiler keeps in vector registers across the loop over rows (a loop over z in
# memory would reload and store z for every row). A block is up to WIDEST vector registers
# wide, so that few passes over an example's inputs read each weights row (up to 56 float64 or
# 112 float32 units per pass with AVX2, 28 and 56 with SSE2): every pass waits on the cache for
# the rows again. Widths are literal constants at each call (whole vectors, then 4, 2, 1 for
# what is left), so that each inlined call is specialised to its width. Each z[j] is still
# summed in input order. The first-layer update (add_outer_rows) is blocked the same way.
cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define GROKREG_PREFETCH(address) __builtin_prefetch(address)
    #elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
    #include <xmmintrin.h>
    #define GROKREG_PREFETCH(address) _mm_prefetch((const char *) (address), _MM_HINT_T0)
    #else
    #define GROKREG_PREFETCH(address) ((void) (address))
    #endif
    #if defined(__AVX512F__)
    #define GROKREG_VECTOR_BYTES 64
    #elif defined(__AVX__)
    #define GROKREG_VECTOR_BYTES 32
    #else
    #define GROKREG_VECTOR_BYTES 16
    #endif
    """
    # the weights rows of inputs a few steps ahead are fetched early: the hardware prefetcher
    # cannot guess them, and a row read from L2 otherwise stalls the accumulation chains
    void prefetch "GROKREG_PREFETCH"(const void *address) noexcept nogil
    const Py_ssize_t VECTOR_BYTES "GROKREG_VECTOR_BYTES"

cdef enum:
    WIDEST = 14        # vector registers of accumulators (16 exist on x86-64 and more on arm64)
    BLOCK = 224        # WIDEST 64-byte vectors of float32: room for any block
    AHEAD = 8          # prefetch distance, in inputs
    CACHE_LINE = 64


cdef inline void prefetch_row(const floating *row, Py_ssize_t width) noexcept nogil:
    cdef Py_ssize_t line
    for line in range((width * <Py_ssize_t> sizeof(floating) + CACHE_LINE - 1) // CACHE_LINE):
        prefetch(<const char *> row + line * CACHE_LINE)


cdef inline void sum_rows_block(const floating *values, const int32_t *columns,
                                Py_ssize_t count, const floating *weights, Py_ssize_t n_cols,
                                Py_ssize_t width, floating *acc) noexcept nogil:
    """acc[:width] += x . weights[:, :width] (weights offset to the block's first column)."""
    cdef Py_ssize_t t, j
    cdef floating xk
    cdef const floating *row
    for t in range(count):
        prefetch_row(weights + columns[min(t + AHEAD, count - 1)] * n_cols, width)
        xk = values[t]
        row = weights + columns[t] * n_cols
        for j in range(width):
            acc[j] += xk * row[j]


cdef inline Py_ssize_t sum_rows_blocks(const floating *values, const int32_t *columns,
                                       Py_ssize_t count, const floating *weights,
                                       Py_ssize_t n_cols, Py_ssize_t remaining,
                                       floating *acc) noexcept nogil:
    """sum_rows_block for the widest block that fits in the remaining columns; its width."""
    cdef Py_ssize_t lanes = VECTOR_BYTES // sizeof(floating)
    cdef Py_ssize_t vectors = min(remaining // lanes, <Py_ssize_t> WIDEST)
    if vectors == 14:
        sum_rows_block(values, columns, count, weights, n_cols, 14 * lanes, acc)
    elif vectors == 13:
        sum_rows_block(values, columns, count, weights, n_cols, 13 * lanes, acc)
    elif vectors == 12:
        sum_rows_block(values, columns, count, weights, n_cols, 12 * lanes, acc)
    elif vectors == 11:
        sum_rows_block(values, columns, count, weights, n_cols, 11 * lanes, acc)
    elif vectors == 10:
        sum_rows_block(values, columns, count, weights, n_cols, 10 * lanes, acc)
    elif vectors == 9:
        sum_rows_block(values, columns, count, weights, n_cols, 9 * lanes, acc)
    elif vectors == 8:
        sum_rows_block(values, columns, count, weights, n_cols, 8 * lanes, acc)
    elif vectors == 7:
        sum_rows_block(values, columns, count, weights, n_cols, 7 * lanes, acc)
    elif vectors == 6:
        sum_rows_block(values, columns, count, weights, n_cols, 6 * lanes, acc)
    elif vectors == 5:
        sum_rows_block(values, columns, count, weights, n_cols, 5 * lanes, acc)
    elif vectors == 4:
        sum_rows_block(values, columns, count, weights, n_cols, 4 * lanes, acc)
    elif vectors == 3:
        sum_rows_block(values, columns, count, weights, n_cols, 3 * lanes, acc)
    elif vectors == 2:
        sum_rows_block(values, columns, count, weights, n_cols, 2 * lanes, acc)
    elif vectors == 1:
        sum_rows_block(values, columns, count, weights, n_cols, lanes, acc)
    elif remaining >= 4:
        sum_rows_block(values, columns, count, weights, n_cols, 4, acc)
        return 4
    elif remaining >= 2:
        sum_rows_block(values, columns, count, weights, n_cols, 2, acc)
        return 2
    else:
        sum_rows_block(values, columns, count, weights, n_cols, 1, acc)
        return 1
    return vectors * lanes


cdef void sum_rows(const floating *values, const int32_t *rows, Py_ssize_t count,
                   const floating *weights, Py_ssize_t n_cols, const floating *start_values,
                   floating *out) noexcept nogil:
    """out = start_values + sum over t of values[t] * weights[rows[t], :] (start 0 if NULL).

    The first layer's z = bias_1 + x . weights_0_1 from x's non-zero values and their
    columns; likewise the output layer from the active hidden units, and the hidden delta from
    the outputs' deltas and weights_1_2.T. Each out[j] is summed in the order of t.
    """
    # the accumulators live here: in each inlined block's frame they would stop the compiler
    # inlining so many blocks; it still keeps them in registers
    cdef floating acc[BLOCK]
    cdef Py_ssize_t start = 0, width, j
    while start < n_cols:
        for j in range(min(n_cols - start, <Py_ssize_t> BLOCK)):
            acc[j] = start_values[start + j] if start_values != NULL else 0
        width = sum_rows_blocks(values, rows, count, weights + start, n_cols, n_cols - start,
                                acc)
        for j in range(width):
            out[start + j] = acc[j]
        start += width


cdef inline void draw_mask(Dropout *dropout, floating *mask, Py_ssize_t n) noexcept nogil:
    """n dropout factors (one per hidden unit, example after example), in stream order.

    0 drops the unit; a kept unit is multiplied by 2 in the book (np.random.randint(2) * 2, one
    raw 32-bit draw & 1 each, as numpy draws the book's mask) and by 1 / keep otherwise
    (inverted dropout). Default mode takes two units from each 64-bit draw: a unit is kept
    when its 32 bits, as an integer, are below keep * 2**32 (exact for keep = 0.5), which halves
    the calls into the generator (a call each unit cost more than the rest of a batch's
    masking). Masks are drawn before the examples they serve are computed, so that examples
    can run in parallel and still consume the stream in the same order.
    """
    cdef Py_ssize_t j
    cdef uint64_t bits, threshold = <uint64_t> (dropout.keep * 4294967296.0)
    # the factor looked up by the random bit(s): no branch on them (mispredicted half the
    # time) and no int-to-float conversion (a dependency chain through its register)
    cdef floating factor[2]
    factor[0] = 0
    if dropout.book:
        factor[1] = 2
        for j in range(n):
            mask[j] = factor[dropout.rng.next_uint32(dropout.rng.state) & 1]
        return
    factor[1] = <floating> (1.0 / dropout.keep)
    for j in range(0, n - 1, 2):
        bits = dropout.rng.next_uint64(dropout.rng.state)
        mask[j] = factor[<uint64_t> (<uint32_t> bits) < threshold]
        mask[j + 1] = factor[(bits >> 32) < threshold]
    if n % 2:
        bits = dropout.rng.next_uint64(dropout.rng.state)
        mask[n - 1] = factor[<uint64_t> (<uint32_t> bits) < threshold]


cdef inline Py_ssize_t activate(floating *h, floating *gate, Py_ssize_t n_hidden, bint book,
                                const floating *mask, bint dense, floating *active_values,
                                int32_t *active_units) noexcept nogil:
    """ReLU and dropout (mask, from draw_mask, or NULL for none), in place: h holds z on
    entry, the layer's output on exit. Returns the number of active units (h[j] != 0, or every
    unit when dense), listed in order in active_units with their values in active_values: the
    output layer reads only their rows.

    gate[j] is what the hidden delta is multiplied by: the ReLU derivative times the dropout
    factor. The book's derivative is taken of the layer's *output* (always >= 0, so 1) and is
    computed literally, as are its relu (z >= 0) * z and its masking, so that NaN and inf
    behave as in NumPy.
    """
    cdef Py_ssize_t j, n_active = 0
    cdef floating z, y, g, m
    for j in range(n_hidden):
        # selects rather than branches: with dropout, half the units go each way at random
        z = h[j]
        m = mask[j] if mask != NULL else 1
        if book:
            # relu(z) = (z >= 0) * z, masked by multiplying (inf * 0 is NaN, as in NumPy); the
            # derivative relu2deriv(layer_1) = layer_1 >= 0, of the masked layer
            y = (<floating> (z >= 0)) * z * m if mask != NULL else (<floating> (z >= 0)) * z
            g = <floating> ((m != 0) & (y >= 0))
        else:
            # max(z, 0) * m: a max and a multiply, where a test of both z and m compiled to a
            # branch on random data (a fifth of the forward pass in mispredictions)
            y = (z if z > 0 else 0) * m
            g = m if z > 0 else 0
        h[j] = y
        gate[j] = g
        # written in every case, kept by advancing the count: no branch on the data
        active_values[n_active] = y
        active_units[n_active] = <int32_t> j
        n_active += (y != 0) | dense
    return n_active


cdef inline Py_ssize_t argmax(const floating *v, Py_ssize_t n) noexcept nogil:
    """First index of the maximum, as numpy.argmax (a NaN counts as the maximum)."""
    cdef Py_ssize_t c, best = 0
    for c in range(1, n):
        if v[c] > v[best] or (v[c] != v[c] and v[best] == v[best]):
            best = c
    return best


cdef inline double log_sum_exp(const floating *out, Py_ssize_t n_outputs,
                               double *largest) noexcept nogil:
    """log(sum(exp(out - largest))), with largest = max(out): the stable softmax normaliser."""
    cdef Py_ssize_t c
    cdef double total = 0
    largest[0] = out[argmax(out, n_outputs)]
    for c in range(n_outputs):
        total += exp(out[c] - largest[0])
    return log(total)


cdef inline double score_example(const floating *out, Py_ssize_t n_outputs, int64_t label,
                                 int loss, Py_ssize_t *n_correct) noexcept nogil:
    """The example's loss (squared error summed over outputs, or cross-entropy) and its hit."""
    cdef Py_ssize_t c
    cdef double d, largest, error = 0
    if loss == SOFTMAX_CROSS_ENTROPY:
        error = log_sum_exp(out, n_outputs, &largest) - (out[label] - largest)
    else:
        for c in range(n_outputs):
            d = (1.0 if c == label else 0.0) - out[c]
            error += d * d
    if argmax(out, n_outputs) == label:
        n_correct[0] += 1
    return error


cdef inline void output_delta(floating *out, Py_ssize_t n_outputs, int64_t label, int loss,
                              floating divisor) noexcept nogil:
    """In place: out becomes (target - prediction) / divisor, the book's (labels - layer_2) / B.

    The prediction is the output itself for squared error, its softmax for cross-entropy.
    """
    cdef Py_ssize_t c
    cdef double largest, normaliser
    if loss == SOFTMAX_CROSS_ENTROPY:
        normaliser = log_sum_exp(out, n_outputs, &largest)
        for c in range(n_outputs):
            out[c] = <floating> exp(out[c] - largest - normaliser)
    for c in range(n_outputs):
        out[c] = ((<floating> 1 if c == label else <floating> 0) - out[c]) / divisor


cdef inline void hidden_delta(const floating *delta_2, const floating *weights_2_1,
                              const int32_t *outputs, Py_ssize_t n_outputs,
                              const floating *gate, Py_ssize_t n_hidden,
                              floating *delta_1) noexcept nogil:
    """delta_1 = (delta_2 . weights_1_2.T) * gate, given weights_2_1 = weights_1_2.T.

    outputs lists 0 .. n_outputs - 1: the sum is sum_rows over weights_2_1's rows, across the
    hidden units in vector registers (each unit's sum in output order), where weights_1_2's
    rows would take n_hidden short dot products.
    """
    cdef Py_ssize_t j
    sum_rows(delta_2, outputs, n_outputs, weights_2_1, n_hidden, NULL, delta_1)
    for j in range(n_hidden):
        delta_1[j] = delta_1[j] * gate[j]


cdef inline void transpose(const floating *a, Py_ssize_t n_rows, Py_ssize_t n_cols,
                           floating *a_t) noexcept nogil:
    cdef Py_ssize_t r, c
    for r in range(n_rows):
        for c in range(n_cols):
            a_t[c * n_rows + r] = a[r * n_cols + c]


cdef inline void add_scaled(floating *target, Py_ssize_t n, floating alpha,
                            const floating *v) noexcept nogil:
    """target += alpha * v (a bias update)."""
    cdef Py_ssize_t c
    for c in range(n):
        target[c] += alpha * v[c]


cdef inline void add_rows_block(floating *weights, Py_ssize_t n_cols, floating alpha,
                                const floating *values, const int32_t *rows, Py_ssize_t count,
                                Py_ssize_t width, const floating *v) noexcept nogil:
    """weights[rows[t], :width] += alpha * (values[t] * v[:width]) (weights offset as above)."""
    cdef Py_ssize_t t, c
    cdef floating xr
    cdef floating *row
    for t in range(count):
        prefetch_row(weights + rows[min(t + AHEAD, count - 1)] * n_cols, width)
        xr = values[t]
        row = weights + rows[t] * n_cols
        for c in range(width):
            row[c] = row[c] + alpha * (xr * v[c])


cdef inline Py_ssize_t add_rows_blocks(floating *weights, Py_ssize_t n_cols, floating alpha,
                                       const floating *values, const int32_t *rows,
                                       Py_ssize_t count, Py_ssize_t remaining,
                                       const floating *v) noexcept nogil:
    """add_rows_block for the widest block that fits in the remaining columns; its width."""
    cdef Py_ssize_t lanes = VECTOR_BYTES // sizeof(floating)
    cdef Py_ssize_t vectors = min(remaining // lanes, <Py_ssize_t> WIDEST)
    if vectors == 14:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 14 * lanes, v)
    elif vectors == 13:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 13 * lanes, v)
    elif vectors == 12:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 12 * lanes, v)
    elif vectors == 11:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 11 * lanes, v)
    elif vectors == 10:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 10 * lanes, v)
    elif vectors == 9:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 9 * lanes, v)
    elif vectors == 8:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 8 * lanes, v)
    elif vectors == 7:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 7 * lanes, v)
    elif vectors == 6:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 6 * lanes, v)
    elif vectors == 5:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 5 * lanes, v)
    elif vectors == 4:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 4 * lanes, v)
    elif vectors == 3:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 3 * lanes, v)
    elif vectors == 2:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 2 * lanes, v)
    elif vectors == 1:
        add_rows_block(weights, n_cols, alpha, values, rows, count, lanes, v)
    elif remaining >= 4:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 4, v)
        return 4
    elif remaining >= 2:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 2, v)
        return 2
    else:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 1, v)
        return 1
    return vectors * lanes


cdef void add_outer_rows(floating *weights, Py_ssize_t n_cols, floating alpha,
                         const floating *values, const int32_t *rows, Py_ssize_t count,
                         const floating *v) noexcept nogil:
    """weights[rows[t], :] += alpha * (values[t] * v): the sparse first-layer update.

    Blocks as in sum_rows, with v's block in registers. Each block of v is copied into a
    local array first: the compiler then knows that the rows cannot overlap it (with v read in
    place, the update came out scalar).
    """
    cdef floating block[BLOCK]
    cdef Py_ssize_t start = 0, c
    while start < n_cols:
        for c in range(min(n_cols - start, <Py_ssize_t> BLOCK)):
            block[c] = v[start + c]
        start += add_rows_blocks(weights + start, n_cols, alpha, values, rows, count,
                                 n_cols - start, block)


# ---------------------------------------------------------------------------------------------
# One epoch: per example, or in mini-batches
# ---------------------------------------------------------------------------------------------

cdef inline Py_ssize_t forward_example(const floating *data, const int32_t *indices,
                                       const int64_t *indptr, Py_ssize_t i,
                                       const floating[:, ::1] weights_0_1,
                                       const floating[::1] bias_1,
                                       const floating[:, ::1] weights_1_2,
                                       const floating[::1] bias_2, floating *h, floating *gate,
                                       floating *active_values, int32_t *active_units,
                                       floating *out, bint book, const floating *mask,
                                       bint dense) noexcept nogil:
    """Example i's hidden layer (h, gate and active units, as activate) and output layer
    (out); returns the number of active hidden units."""
    cdef Py_ssize_t first = indptr[i], n_hidden = weights_1_2.shape[0], n_active
    # the whole padded row (see the module docstring): the padding's sums are zeros, unused
    sum_rows(data + first, indices + first, indptr[i + 1] - first, &weights_0_1[0, 0],
             weights_0_1.shape[1],
             &bias_1[0], h)
    n_active = activate(h, gate, n_hidden, book, mask, dense, active_values, active_units)
    sum_rows(active_values, active_units, n_active, &weights_1_2[0, 0], weights_1_2.shape[1],
             &bias_2[0], out)
    return n_active


cdef double sgd_epoch(const floating *data, const int32_t *indices, const int64_t *indptr,
                      const int64_t[::1] labels, const int64_t[::1] order,
                      floating[:, ::1] weights_0_1, floating[::1] bias_1,
                      floating[:, ::1] weights_1_2, floating[::1] bias_2, floating alpha,
                      Rules *rules, floating[:, ::1] h, floating[:, ::1] gate,
                      floating[:, ::1] active_values, int32_t[:, ::1] active_units,
                      floating[:, ::1] out, floating[:, ::1] delta_1, floating[:, ::1] mask,
                      floating[:, ::1] weights_2_1, const int32_t[::1] output_units,
                      Py_ssize_t *n_correct) noexcept nogil:
    """Per-example gradient descent (batch size 1), the book's first two experiments.

    weights_2_1 is a transposed copy of weights_1_2 (for hidden_delta), updated in step with
    it: the same products are added to the same numbers.
    """
    cdef Py_ssize_t t, i, first, n_active
    cdef Py_ssize_t n_hidden = weights_1_2.shape[0], n_outputs = out.shape[1]
    cdef double error = 0
    cdef floating *example_mask = &mask[0, 0] if rules.dropout.active else NULL
    transpose(&weights_1_2[0, 0], n_hidden, n_outputs, &weights_2_1[0, 0])
    for t in range(order.shape[0]):
        i = order[t]
        if example_mask != NULL:
            draw_mask(&rules.dropout, example_mask, n_hidden)
        n_active = forward_example(data, indices, indptr, i, weights_0_1, bias_1, weights_1_2,
                                   bias_2, &h[0, 0], &gate[0, 0], &active_values[0, 0],
                                   &active_units[0, 0], &out[0, 0], rules.book, example_mask,
                                   rules.dense)
        error += score_example(&out[0, 0], n_outputs, labels[i], rules.loss, n_correct)
        output_delta(&out[0, 0], n_outputs, labels[i], rules.loss, 1)
        # delta_1 from the weights before this step's update, as the book computes it
        hidden_delta(&out[0, 0], &weights_2_1[0, 0], &output_units[0], n_outputs, &gate[0, 0],
                     n_hidden, &delta_1[0, 0])
        # weights_1_2 += alpha * (h outer delta_2): the rows of the active units (the others
        # would add zeros), and the whole of its transposed copy
        add_outer_rows(&weights_1_2[0, 0], n_outputs, alpha, &active_values[0, 0],
                       &active_units[0, 0], n_active, &out[0, 0])
        add_outer_rows(&weights_2_1[0, 0], n_hidden, alpha, &out[0, 0], &output_units[0],
                       n_outputs, &h[0, 0])
        first = indptr[i]
        add_outer_rows(&weights_0_1[0, 0], weights_0_1.shape[1], alpha, data + first,
                       indices + first, indptr[i + 1] - first, &delta_1[0, 0])
        if rules.train_bias:
            add_scaled(&bias_2[0], n_outputs, alpha, &out[0, 0])
            add_scaled(&bias_1[0], n_hidden, alpha, &delta_1[0, 0])
    return error


cdef void book_batch_literally(const floating *data, const int32_t *indices,
                               const int64_t *indptr, const int64_t[::1] order, Py_ssize_t start,
                               Py_ssize_t size, floating[:, ::1] weights_0_1,
                               floating[:, ::1] weights_1_2, floating alpha,
                               floating[:, ::1] h, floating[:, ::1] gate,
                               floating[:, ::1] delta_2, floating[:, ::1] delta_1,
                               floating[:, ::1] grad_1_2, floating[:, ::1] sums_0_1,
                               floating[:, ::1] transposed,
                               const int32_t[::1] output_units) noexcept nogil:
    """The book's batch loop as written: batch_size updates, nothing skipped.

    Used once book-mode training has diverged, where only the literal order of operations
    turns inf into the same NaNs as the book's program (the closed form would not).
    """
    cdef Py_ssize_t n_hidden = weights_1_2.shape[0], n_outputs = delta_2.shape[1]
    cdef Py_ssize_t width = weights_0_1.shape[1], repeat, b, i, j, c, t
    for j in range(n_hidden):
        for c in range(n_outputs):
            grad_1_2[j, c] = 0
    add_outer_batch(grad_1_2, 1, h, delta_2, size, True, 1)
    for repeat in range(size):
        transpose(&weights_1_2[0, 0], n_hidden, n_outputs, &transposed[0, 0])
        for b in range(size):
            hidden_delta(&delta_2[b, 0], &transposed[0, 0], &output_units[0], n_outputs,
                         &gate[b, 0], n_hidden, &delta_1[b, 0])
        for j in range(n_hidden):
            for c in range(n_outputs):
                weights_1_2[j, c] += alpha * grad_1_2[j, c]
        # w01 += alpha * (layer_0.T . delta_1): the sum over the batch first, as a matrix product
        for t in range(sums_0_1.shape[0]):
            for j in range(width):
                sums_0_1[t, j] = 0
        for b in range(size):
            i = order[start + b]
            add_outer_rows(&sums_0_1[0, 0], width, 1, data + indptr[i], indices + indptr[i],
                           indptr[i + 1] - indptr[i], &delta_1[b, 0])
        for t in range(sums_0_1.shape[0]):
            for j in range(width):
                weights_0_1[t, j] += alpha * sums_0_1[t, j]


cdef void update_by_columns(const floating *data, const int32_t *indices, const int64_t *indptr,
                            const int64_t[::1] order, Py_ssize_t start, Py_ssize_t size,
                            floating[:, ::1] weights_0_1, floating alpha,
                            floating[:, ::1] delta_1, int64_t[::1] column_start,
                            int64_t[::1] column_fill, int32_t[::1] entry_example,
                            floating[::1] entry_value, floating[:, ::1] column_sum,
                            int n_threads) noexcept nogil:
    """weights_0_1 += alpha * (x_batch.T . delta_1), one row of weights_0_1 at a time.

    Adding each example's outer product in turn reads and writes a weights row once per
    example that has that input (~19 times per MNIST batch of 100); here the batch's sparse
    rows are regrouped by input (a counting sort), each row's sum over the batch is taken in
    registers (sum_rows, with delta_1 in the role of the weights), and each row is updated
    once, as a matrix product would. Rows are independent, so threads share them out (each
    with its own row of column_sum) and the result does not depend on the number of threads.
    """
    cdef Py_ssize_t n_inputs = weights_0_1.shape[0], n_hidden = weights_0_1.shape[1]
    cdef Py_ssize_t b, i, k, t, position, thread
    for k in range(n_inputs + 1):
        column_start[k] = 0
    for b in range(size):
        i = order[start + b]
        for t in range(indptr[i], indptr[i + 1]):
            column_start[indices[t] + 1] += 1
    for k in range(n_inputs):
        column_start[k + 1] += column_start[k]
        column_fill[k] = column_start[k]
    for b in range(size):
        i = order[start + b]
        for t in range(indptr[i], indptr[i + 1]):
            position = column_fill[indices[t]]
            column_fill[indices[t]] = position + 1
            entry_example[position] = <int32_t> b
            entry_value[position] = data[t]
    thread = 0  # set by each thread; initialised for the compiler's sake
    with parallel(num_threads=n_threads):
        thread = threadid()
        for k in prange(n_inputs, schedule="guided"):
            if column_start[k + 1] > column_start[k]:
                sum_rows(&entry_value[0] + column_start[k], &entry_example[0] + column_start[k],
                         column_start[k + 1] - column_start[k], &delta_1[0, 0], n_hidden, NULL,
                         &column_sum[thread, 0])
                add_scaled(&weights_0_1[k, 0], n_hidden, alpha, &column_sum[thread, 0])


cdef void add_outer_batch(floating[:, ::1] weights, floating alpha, floating[:, ::1] h,
                          floating[:, ::1] delta, Py_ssize_t size, bint dense,
                          int n_threads) noexcept nogil:
    """weights += alpha * (h[b] outer delta[b]) for b < size, in b's order for every entry.

    The same sums as add_outer_rows called for each example in turn, computed row by row so
    that threads can share out the rows.
    """
    cdef Py_ssize_t j, b, c, n_cols = weights.shape[1]
    cdef floating hj
    for j in prange(weights.shape[0], num_threads=n_threads, schedule="static"):
        for b in range(size):
            hj = h[b, j]
            if hj != 0 or dense:
                for c in range(n_cols):
                    weights[j, c] += alpha * (hj * delta[b, c])


cdef double batch_epoch(const floating *data, const int32_t *indices, const int64_t *indptr,
                        const int64_t[::1] labels, const int64_t[::1] order,
                        floating[:, ::1] weights_0_1, floating[::1] bias_1,
                        floating[:, ::1] weights_1_2, floating[::1] bias_2, floating alpha,
                        Py_ssize_t batch_size, Rules *rules, floating[:, ::1] h,
                        floating[:, ::1] gate, floating[:, ::1] active_values,
                        int32_t[:, ::1] active_units, floating[:, ::1] delta_2,
                        floating[:, ::1] delta_1, floating[:, ::1] grad_1_2,
                        floating[:, ::1] drift, floating[:, ::1] sums_0_1,
                        floating[:, ::1] mask, double[::1] example_error,
                        Py_ssize_t[::1] example_hit, int64_t[::1] column_start,
                        int64_t[::1] column_fill, int32_t[::1] entry_example,
                        floating[::1] entry_value, floating[:, ::1] column_sum,
                        floating[:, ::1] transposed, const int32_t[::1] output_units,
                        int n_threads, Py_ssize_t *n_correct,
                        Py_ssize_t *n_seen, double *phases) noexcept nogil:
    """Mini-batch gradient descent (phases, if not NULL, accumulates each phase's seconds).

    Default mode: one update per batch with the batch-mean gradient; a last, smaller batch is
    trained too. Book mode: the book's loop, which drops the last partial batch and applies its
    update batch_size times per batch, recomputing delta_1 from the freshly updated
    weights_1_2 each time. Done literally that costs batch_size x the work; it is computed here
    in closed form. weights_1_2 grows by the same alpha * grad_1_2 at each of the B repeats, so at
    repeat k delta_1 = A + k * alpha * C (A from the batch's starting weights, C = delta_2 .
    grad_1_2.T, both masked), and the B updates of weights_0_1 sum to
    alpha * x.T . (B * A + alpha * B(B-1)/2 * C). (Book mode has no biases.) In both modes the
    first-layer update is added row by row over the batch (update_by_columns).

    With n_threads > 1 the examples of a batch (forward and deltas) and the rows of each update
    are shared out among threads. Every sum is still taken in one fixed order (the masks are
    drawn first, the losses added up in example order, each weight's updates in example
    order), so the result is the same, bit for bit, whatever the number of threads.
    """
    cdef Py_ssize_t n = order.shape[0]
    cdef Py_ssize_t n_hidden = weights_1_2.shape[0], n_outputs = delta_2.shape[1]
    cdef Py_ssize_t start = 0, size, b, i, j, c, repeat
    cdef double error = 0
    cdef floating triangle
    cdef floating *example_mask
    cdef bint book = rules.book, masked = rules.dropout.active
    cdef Py_ssize_t stop = (n // batch_size) * batch_size if book else n
    cdef double mark = now() if phases != NULL else 0
    n_seen[0] = stop
    while start < stop:
        size = min(batch_size, stop - start)
        if masked:  # the batch's masks at once: its rows are contiguous
            draw_mask(&rules.dropout, &mask[0, 0], size * n_hidden)
        lap(phases, 0, &mark)
        for b in prange(size, num_threads=n_threads, schedule="static"):
            i = order[start + b]
            example_mask = &mask[b, 0] if masked else NULL
            forward_example(data, indices, indptr, i, weights_0_1, bias_1, weights_1_2, bias_2,
                            &h[b, 0], &gate[b, 0], &active_values[b, 0], &active_units[b, 0],
                            &delta_2[b, 0], book, example_mask, rules.dense)
            example_hit[b] = 0
            example_error[b] = score_example(&delta_2[b, 0], n_outputs, labels[i], rules.loss,
                                             &example_hit[b])
            output_delta(&delta_2[b, 0], n_outputs, labels[i], rules.loss, <floating> size)
        for b in range(size):
            error += example_error[b]
            n_correct[0] += example_hit[b]
        lap(phases, 1, &mark)
        if book and rules.dense:
            book_batch_literally(data, indices, indptr, order, start, size, weights_0_1,
                                 weights_1_2, alpha, h, gate, delta_2, delta_1, grad_1_2,
                                 sums_0_1, transposed, output_units)
            start += size
            continue
        # transposed: weights_1_2.T, then grad_1_2.T (see hidden_delta)
        transpose(&weights_1_2[0, 0], n_hidden, n_outputs, &transposed[0, 0])
        for b in prange(size, num_threads=n_threads, schedule="static"):
            hidden_delta(&delta_2[b, 0], &transposed[0, 0], &output_units[0], n_outputs,
                         &gate[b, 0], n_hidden, &delta_1[b, 0])
        lap(phases, 2, &mark)
        if book:
            for j in range(n_hidden):
                for c in range(n_outputs):
                    grad_1_2[j, c] = 0
            add_outer_batch(grad_1_2, 1, h, delta_2, size, False, n_threads)
            triangle = alpha * <floating> (size * (size - 1) // 2)
            transpose(&grad_1_2[0, 0], n_hidden, n_outputs, &transposed[0, 0])
            for b in prange(size, num_threads=n_threads, schedule="static"):
                hidden_delta(&delta_2[b, 0], &transposed[0, 0], &output_units[0], n_outputs,
                             &gate[b, 0], n_hidden, &drift[b, 0])
                for j in range(n_hidden):
                    delta_1[b, j] = size * delta_1[b, j] + triangle * drift[b, j]
            for repeat in range(size):
                for j in range(n_hidden):
                    for c in range(n_outputs):
                        weights_1_2[j, c] += alpha * grad_1_2[j, c]
        else:
            add_outer_batch(weights_1_2, alpha, h, delta_2, size, rules.dense, n_threads)
        lap(phases, 3, &mark)
        if rules.dense:
            for b in range(size):
                i = order[start + b]
                add_outer_rows(&weights_0_1[0, 0], weights_0_1.shape[1], alpha,
                               data + indptr[i], indices + indptr[i], indptr[i + 1] - indptr[i],
                               &delta_1[b, 0])
        else:
            update_by_columns(data, indices, indptr, order, start, size, weights_0_1, alpha,
                              delta_1, column_start, column_fill, entry_example, entry_value,
                              column_sum, n_threads)
        lap(phases, 4, &mark)
        for b in range(size):
            if rules.train_bias:
                add_scaled(&bias_2[0], n_outputs, alpha, &delta_2[b, 0])
                add_scaled(&bias_1[0], n_hidden, alpha, &delta_1[b, 0])
        lap(phases, 5, &mark)
        start += size
    return error


cdef bint all_finite(const floating *a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if not isfinite(a[i]):
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Python entry points (private: grokreg.network validates user input before calling these)
# ---------------------------------------------------------------------------------------------

cdef bitgen_t *bitgen_of(object bit_generator) except NULL:
    capsule = getattr(bit_generator, "capsule", None)
    if not PyCapsule_IsValid(capsule, "BitGenerator"):
        raise TypeError("bit_generator must be a numpy BitGenerator")
    return <bitgen_t *> PyCapsule_GetPointer(capsule, "BitGenerator")


cdef check_network(const floating[:, ::1] weights_0_1, const floating[::1] bias_1,
                   const floating[:, ::1] weights_1_2, const floating[::1] bias_2, int loss):
    if weights_0_1.shape[0] < 1 or weights_1_2.shape[0] < 1 or weights_1_2.shape[1] < 1:
        raise ValueError("the network needs at least one input, hidden unit and output")
    if weights_1_2.shape[0] > weights_0_1.shape[1]:
        raise ValueError("weights_1_2 must have one row per column of weights_0_1 (the "
                         "columns past its rows are padding)")
    if bias_1.shape[0] != weights_0_1.shape[1] or bias_2.shape[0] != weights_1_2.shape[1]:
        raise ValueError("bias_1 and bias_2 must have one entry per column of weights_0_1 "
                         "and per output")
    if loss != SQUARED_ERROR and loss != SOFTMAX_CROSS_ENTROPY:
        raise ValueError(f"unknown loss code {loss}")


cdef check_labels(const int64_t[::1] labels, Py_ssize_t n, Py_ssize_t n_outputs):
    cdef Py_ssize_t i
    if labels.shape[0] != n:
        raise ValueError(f"labels has {labels.shape[0]} entries for {n} examples")
    for i in range(n):
        if labels[i] < 0 or labels[i] >= n_outputs:
            raise ValueError(f"labels[{i}] = {labels[i]} is outside 0..{n_outputs - 1}")


cdef check_rows(const int32_t[::1] indices, const int64_t[::1] indptr, Py_ssize_t n_data,
                Py_ssize_t n_inputs):
    """The sparse rows must lie inside their arrays, and their columns inside the network."""
    cdef Py_ssize_t i, t, n = indptr.shape[0] - 1
    if n < 0 or indptr[0] != 0 or indptr[n] != indices.shape[0] or n_data != indices.shape[0]:
        raise ValueError("data, indices and indptr do not describe sparse rows: use sparse_rows(x)")
    for i in range(n):
        if indptr[i + 1] < indptr[i]:
            raise ValueError("indptr must be non-decreasing")
    cdef bint outside = False
    with nogil:
        # an "any" over the whole array, with no early exit, so that the loop vectorises (it is
        # run on every call: a full data set's rows for every epoch and every evaluation)
        for t in range(indices.shape[0]):
            outside = outside | (indices[t] < 0) | (indices[t] >= n_inputs)
    if outside:
        for t in range(indices.shape[0]):
            if indices[t] < 0 or indices[t] >= n_inputs:
                raise ValueError(f"indices[{t}] = {indices[t]} is outside 0..{n_inputs - 1} "
                                 f"(the network's inputs)")


cdef int64_t[::1] row_starts(const int64_t[::1] counts):
    """indptr from per-row counts: indptr[i] is where row i starts, indptr[n] the total."""
    cdef Py_ssize_t i, n = counts.shape[0]
    cdef int64_t[::1] indptr = np.empty(n + 1, dtype=np.int64)
    indptr[0] = 0
    for i in range(n):
        indptr[i + 1] = indptr[i] + counts[i]
    return indptr


cdef inline void place_row(floating *data, int32_t *indices, const floating *row_values,
                           const int32_t *row_columns, Py_ssize_t count) noexcept nogil:
    """Copy a row gathered in scratch space to its place in the sparse rows."""
    memcpy(data, row_values, count * sizeof(floating))
    memcpy(indices, row_columns, count * sizeof(int32_t))


def sparse_rows(const floating[:, ::1] x not None, bint keep_zeros=False, int n_threads=1):
    """x in compressed sparse row form: (data, indices, indptr), as scipy.sparse.csr_matrix.

    Row i's non-zero values are data[indptr[i]:indptr[i + 1]], in its columns
    indices[indptr[i]:indptr[i + 1]] (increasing). keep_zeros lists every entry, zeros too:
    the kernels then compute as densely as NumPy (where 0 * inf is NaN). n_threads share out
    the rows (the result does not depend on it).
    """
    cdef Py_ssize_t n = x.shape[0], n_inputs = x.shape[1], i, k, thread
    cdef int64_t row_count
    if n_inputs > 2**31 - 1:
        raise ValueError("x has too many columns for 32-bit indices")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    dtype = np.float32 if floating is float else np.float64
    cdef int64_t[::1] counts = np.empty(n, dtype=np.int64)
    with nogil:
        for i in prange(n, num_threads=n_threads, schedule="static"):
            row_count = 0
            for k in range(n_inputs):  # a comparison, which vectorises
                row_count = row_count + ((x[i, k] != 0) | keep_zeros)
            counts[i] = row_count
    cdef int64_t[::1] indptr = row_starts(counts)
    cdef floating[::1] data = np.empty(indptr[n], dtype=dtype)
    cdef int32_t[::1] indices = np.empty(indptr[n], dtype=np.int32)
    # each row is gathered into its thread's scratch row first, every entry written at the
    # next free place and only a kept one advancing it (no branch on the values, which
    # mispredicts on every stroke's edge), then copied to its place
    cdef floating[:, ::1] scratch_values = np.empty((n_threads, n_inputs + 1), dtype=dtype)
    cdef int32_t[:, ::1] scratch_columns = np.empty((n_threads, n_inputs + 1), dtype=np.int32)
    thread = 0  # set by each thread; initialised for the compiler's sake
    if indptr[n] == 0:  # no entry to place (and no data[0] to point at)
        return np.asarray(data), np.asarray(indices), np.asarray(indptr)
    with nogil, parallel(num_threads=n_threads):
        thread = threadid()
        for i in prange(n, schedule="static"):
            row_count = 0
            for k in range(n_inputs):
                scratch_values[thread, row_count] = x[i, k]
                scratch_columns[thread, row_count] = <int32_t> k
                row_count = row_count + ((x[i, k] != 0) | keep_zeros)
            place_row(&data[0] + indptr[i], &indices[0] + indptr[i],
                      &scratch_values[thread, 0], &scratch_columns[thread, 0], row_count)
    return np.asarray(data), np.asarray(indices), np.asarray(indptr)


def sparse_pixels(const uint8_t[:, ::1] x not None, const floating[::1] values not None,
                  bint keep_zeros=False, int n_threads=1):
    """sparse_rows of the images values[x], without their dense floating-point copy.

    x holds uint8 pixels; values (256 entries) is what each pixel value stands for, e.g.
    np.divide(np.arange(256, dtype=np.uint8), 255, dtype=...) for the book's x / 255, so that
    the rows hold exactly what sparse_rows(values[x]) would (a quarter of the memory traffic).
    """
    cdef Py_ssize_t n = x.shape[0], n_inputs = x.shape[1], i, k, thread
    cdef int64_t row_count
    if values.shape[0] != 256:
        raise ValueError(f"values must have 256 entries, one per pixel value, got {values.shape[0]}")
    if n_inputs > 2**31 - 1:
        raise ValueError("x has too many columns for 32-bit indices")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    cdef uint8_t kept[256]
    cdef bint kept_if_nonzero = True  # the usual table: only pixel 0 stands for 0
    cdef int p
    for p in range(256):
        kept[p] = values[p] != 0 or keep_zeros
        kept_if_nonzero = kept_if_nonzero and kept[p] == (p != 0)
    dtype = np.float32 if floating is float else np.float64
    cdef int64_t[::1] counts = np.empty(n, dtype=np.int64)
    with nogil:
        for i in prange(n, num_threads=n_threads, schedule="static"):
            row_count = 0
            if kept_if_nonzero:  # a byte comparison, which vectorises; a table lookup does not
                for k in range(n_inputs):
                    row_count = row_count + (x[i, k] != 0)
            else:
                for k in range(n_inputs):
                    row_count = row_count + kept[x[i, k]]
            counts[i] = row_count
    cdef int64_t[::1] indptr = row_starts(counts)
    cdef floating[::1] data = np.empty(indptr[n], dtype=dtype)
    cdef int32_t[::1] indices = np.empty(indptr[n], dtype=np.int32)
    # gathered as in sparse_rows
    cdef floating[:, ::1] scratch_values = np.empty((n_threads, n_inputs + 1), dtype=dtype)
    cdef int32_t[:, ::1] scratch_columns = np.empty((n_threads, n_inputs + 1), dtype=np.int32)
    thread = 0  # set by each thread; initialised for the compiler's sake
    if indptr[n] == 0:  # no entry to place (and no data[0] to point at)
        return np.asarray(data), np.asarray(indices), np.asarray(indptr)
    with nogil, parallel(num_threads=n_threads):
        thread = threadid()
        for i in prange(n, schedule="static"):
            row_count = 0
            for k in range(n_inputs):
                scratch_values[thread, row_count] = values[x[i, k]]
                scratch_columns[thread, row_count] = <int32_t> k
                row_count = row_count + kept[x[i, k]]
            place_row(&data[0] + indptr[i], &indices[0] + indptr[i],
                      &scratch_values[thread, 0], &scratch_columns[thread, 0], row_count)
    return np.asarray(data), np.asarray(indices), np.asarray(indptr)


def train_epoch(const floating[::1] data not None, const int32_t[::1] indices not None,
                const int64_t[::1] indptr not None, const int64_t[::1] labels not None,
                const int64_t[::1] order not None, floating[:, ::1] weights_0_1 not None,
                floating[::1] bias_1 not None, floating[:, ::1] weights_1_2 not None,
                floating[::1] bias_2 not None, double alpha, Py_ssize_t batch_size, bint book,
                double keep, object bit_generator, int loss=SQUARED_ERROR,
                bint train_bias=False, bint dense=False, int n_threads=1,
                double[::1] phases=None):
    """Train one epoch in place; returns (summed loss, n_correct, n_seen, finite).

    (data, indices, indptr) is sparse_rows(x). order lists the example indices in training
    order. keep < 1 turns dropout on and needs bit_generator: book mode requires keep == 0.5 and
    draws the book's mask (an MT19937 stream continues numpy's legacy np.random.randint(2)
    exactly); otherwise inverted dropout. finite is False when the loss or any parameter
    stopped being finite (divergence). dense (with rows from sparse_rows(x, keep_zeros=True))
    skips no zero anywhere and runs the book's batch loop literally: NumPy's arithmetic for
    inf and NaN, for reproducing the book after a divergence. n_threads share out the work of
    each mini-batch (see batch_epoch: the result does not depend on it); per-example training
    is sequential by nature and runs in one thread. phases (len(PHASES) seconds, mini-batches
    only) accumulates the time of each phase of the epoch, for bench/phases.py.
    """
    cdef Py_ssize_t n = indptr.shape[0] - 1, width = weights_0_1.shape[1]
    cdef Py_ssize_t n_hidden = weights_1_2.shape[0], n_outputs = weights_1_2.shape[1]
    cdef Py_ssize_t t, n_correct = 0, n_seen = order.shape[0], rows
    cdef double error
    cdef bint finite
    cdef Rules rules
    check_network(weights_0_1, bias_1, weights_1_2, bias_2, loss)
    check_rows(indices, indptr, data.shape[0], weights_0_1.shape[0])
    check_labels(labels, n, n_outputs)
    for t in range(order.shape[0]):
        if order[t] < 0 or order[t] >= n:
            raise ValueError(f"order[{t}] = {order[t]} is outside 0..{n - 1}")
    if not (0 < keep <= 1):
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    if not isfinite(alpha):
        raise ValueError(f"alpha must be finite, got {alpha}")
    if book and (loss != SQUARED_ERROR or train_bias):
        raise ValueError("the book's network has squared error and no biases")
    if phases is not None and phases.shape[0] != len(PHASES):
        raise ValueError(f"phases must have {len(PHASES)} entries, one per phase in PHASES")
    cdef double *phase_seconds = &phases[0] if phases is not None else NULL
    rules.book = book
    rules.train_bias = train_bias
    rules.loss = loss
    rules.dense = dense
    rules.dropout.active = keep < 1
    rules.dropout.book = book
    rules.dropout.keep = keep
    rules.dropout.rng = NULL
    if rules.dropout.active:
        if book and keep != 0.5:
            raise ValueError("the book's dropout keeps half the units (keep = 0.5)")
        rules.dropout.rng = bitgen_of(bit_generator)
        lock = bit_generator.lock
    else:
        lock = nullcontext()

    dtype = np.float32 if floating is float else np.float64
    rows = min(batch_size, max(n_seen, 1))
    # rows as wide as weights_0_1's where they meet it; delta_1's padding stays 0, so that
    # the padding of weights_0_1 stays 0 too
    cdef floating[:, ::1] h = np.empty((rows, width), dtype=dtype)
    cdef floating[:, ::1] gate = np.empty((rows, n_hidden), dtype=dtype)
    cdef floating[:, ::1] delta_1 = np.zeros((rows, width), dtype=dtype)
    cdef floating[:, ::1] drift = np.empty((rows, n_hidden), dtype=dtype)
    cdef floating[:, ::1] delta_2 = np.empty((rows, n_outputs), dtype=dtype)
    cdef floating[:, ::1] grad_1_2 = np.empty((n_hidden, n_outputs), dtype=dtype)
    cdef floating[:, ::1] mask = np.empty((rows, n_hidden), dtype=dtype)
    cdef double[::1] example_error = np.empty(rows, dtype=np.float64)
    cdef Py_ssize_t[::1] example_hit = np.empty(rows, dtype=np.intp)
    literal = book and dense and batch_size > 1  # the book's batch loop, which needs sums_0_1
    cdef floating[:, ::1] sums_0_1 = np.empty(
        (weights_0_1.shape[0] if literal else 1, width), dtype=dtype)
    # the column view of a batch (update_by_columns): room for its largest possible size
    by_columns = batch_size > 1 and not dense
    cdef Py_ssize_t capacity = 1
    if by_columns:
        capacity = max(1, rows * int(np.max(np.diff(indptr)) if n > 0 else 0))
    cdef int64_t[::1] column_start = np.empty(weights_0_1.shape[0] + 1 if by_columns else 1,
                                              dtype=np.int64)
    cdef int64_t[::1] column_fill = np.empty(weights_0_1.shape[0] if by_columns else 1,
                                             dtype=np.int64)
    cdef int32_t[::1] entry_example = np.empty(capacity, dtype=np.int32)
    cdef floating[::1] entry_value = np.empty(capacity, dtype=dtype)
    cdef floating[:, ::1] column_sum = np.empty((n_threads, width), dtype=dtype)
    cdef floating[:, ::1] active_values = np.empty((rows, n_hidden), dtype=dtype)
    cdef int32_t[:, ::1] active_units = np.empty((rows, n_hidden), dtype=np.int32)
    # weights_1_2.T (see hidden_delta), and the outputs' indices to address its rows
    cdef floating[:, ::1] transposed = np.empty((n_outputs, n_hidden), dtype=dtype)
    cdef int32_t[::1] output_units = np.arange(n_outputs, dtype=np.int32)
    # base pointers; with no non-zero input at all, every row is empty and neither is read
    cdef const floating *values = &data[0] if data.shape[0] else NULL
    cdef const int32_t *columns = &indices[0] if indices.shape[0] else NULL

    with lock, nogil:
        if n_seen == 0:
            error = 0
        elif batch_size == 1:
            error = sgd_epoch(values, columns, &indptr[0], labels, order, weights_0_1, bias_1,
                              weights_1_2, bias_2, <floating> alpha, &rules, h, gate,
                              active_values, active_units, delta_2, delta_1, mask, transposed,
                              output_units, &n_correct)
        else:
            error = batch_epoch(values, columns, &indptr[0], labels, order, weights_0_1,
                                bias_1, weights_1_2, bias_2, <floating> alpha, batch_size,
                                &rules, h, gate, active_values, active_units, delta_2,
                                delta_1, grad_1_2, drift, sums_0_1, mask, example_error,
                                example_hit, column_start, column_fill, entry_example,
                                entry_value, column_sum, transposed, output_units, n_threads,
                                &n_correct, &n_seen, phase_seconds)
        finite = (isfinite(error)
                  and all_finite(&weights_0_1[0, 0], weights_0_1.shape[0] * width)
                  and all_finite(&weights_1_2[0, 0], n_hidden * n_outputs)
                  and all_finite(&bias_1[0], width) and all_finite(&bias_2[0], n_outputs))
    return error, n_correct, n_seen, finite


def evaluate(const floating[::1] data not None, const int32_t[::1] indices not None,
             const int64_t[::1] indptr not None, const int64_t[::1] labels,
             const floating[:, ::1] weights_0_1 not None, const floating[::1] bias_1 not None,
             const floating[:, ::1] weights_1_2 not None, const floating[::1] bias_2 not None,
             int loss=SQUARED_ERROR, int64_t[::1] predictions=None,
             floating[:, ::1] outputs=None, bint dense=False, int n_threads=1):
    """Forward pass without dropout over the sparse rows (data, indices, indptr).

    Returns (summed loss, n_correct) against labels (both 0 when labels is None); writes each
    example's predicted class into predictions and its output layer into outputs when given.
    dense: skip no zero (see train_epoch). n_threads share out the examples; the losses are
    added up in example order, so the result does not depend on it.
    """
    cdef Py_ssize_t n = indptr.shape[0] - 1, i, thread
    cdef Py_ssize_t n_hidden = weights_1_2.shape[0], n_outputs = weights_1_2.shape[1]
    cdef Py_ssize_t n_correct = 0
    cdef double error = 0
    cdef bint has_labels = labels is not None
    cdef bint has_predictions = predictions is not None, has_outputs = outputs is not None
    check_network(weights_0_1, bias_1, weights_1_2, bias_2, loss)
    check_rows(indices, indptr, data.shape[0], weights_0_1.shape[0])
    if has_labels:
        check_labels(labels, n, n_outputs)
    if has_predictions and predictions.shape[0] != n:
        raise ValueError(f"predictions has {predictions.shape[0]} entries for {n} examples")
    if has_outputs and (outputs.shape[0] != n or outputs.shape[1] != n_outputs):
        raise ValueError(f"outputs must have shape ({n}, {n_outputs})")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    dtype = np.float32 if floating is float else np.float64
    # one scratch row per thread; one loss and hit per example, added up in order below
    cdef floating[:, ::1] h = np.empty((n_threads, weights_0_1.shape[1]), dtype=dtype)
    cdef floating[:, ::1] gate = np.empty((n_threads, n_hidden), dtype=dtype)
    cdef floating[:, ::1] out = np.empty((n_threads, n_outputs), dtype=dtype)
    cdef floating[:, ::1] active_values = np.empty((n_threads, n_hidden), dtype=dtype)
    cdef int32_t[:, ::1] active_units = np.empty((n_threads, n_hidden), dtype=np.int32)
    cdef double[::1] example_error = np.zeros(n if has_labels else 0, dtype=np.float64)
    cdef Py_ssize_t[::1] example_hit = np.zeros(n if has_labels else 0, dtype=np.intp)
    cdef floating *row_out
    cdef const floating *values = &data[0] if data.shape[0] else NULL
    cdef const int32_t *columns = &indices[0] if indices.shape[0] else NULL
    thread = 0  # set by each thread; initialised for the compiler's sake
    with nogil, parallel(num_threads=n_threads):
        thread = threadid()
        for i in prange(n, schedule="static"):
            row_out = &outputs[i, 0] if has_outputs else &out[thread, 0]
            # dense evaluation serves the book after a divergence: its relu, (z >= 0) * z
            forward_example(values, columns, &indptr[0], i, weights_0_1, bias_1, weights_1_2,
                            bias_2, &h[thread, 0], &gate[thread, 0], &active_values[thread, 0],
                            &active_units[thread, 0], row_out, dense, NULL, dense)
            if has_labels:
                example_error[i] = score_example(row_out, n_outputs, labels[i], loss,
                                                 &example_hit[i])
            if has_predictions:
                predictions[i] = argmax(row_out, n_outputs)
    if has_labels:
        for i in range(n):
            error += example_error[i]
            n_correct += example_hit[i]
    return error, n_correct
