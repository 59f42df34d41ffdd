"""grokreg's compiled kernels: the inputs-hidden-outputs network of Grokking Deep Learning, ch. 8.

The kernels are in files by job, included below: ``_rows.pxi`` (the row primitives every layer
is computed with), ``_example.pxi`` (one example), ``_epochs.pxi`` (an epoch, per example or in
mini-batches) and ``_sparse.pxi`` (data sets as sparse rows); this file holds the declarations
they share and the entry points. Layout follows scikit-learn's Cython modules:
``cdef ... noexcept nogil`` functions work on one example (raw pointers into C-contiguous
arrays), ``def`` functions loop them over a whole epoch or data set with the GIL released, and
the public Python layer (``grokreg.network``) converts and validates user input before calling
down. The ``def`` functions still check every shape and
index they rely on, so calling them directly with bad arguments raises instead of crashing.

Conventions (the book's names): ``weights_1_2`` is (n_hidden, n_outputs) and ``weights_0_1`` is
(n_inputs, width) with width >= n_hidden: its rows may be padded with zero columns, and
``bias_1`` (width,) likewise. grokreg.network pads them to whole AVX2 vectors, so that a row
is read in whole vectors, in one pass of registers (100 float32 units take 12.5 AVX2 vectors:
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
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
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
    #ifdef _OPENMP
    #include <omp.h>
    static int grokreg_team_size(void) { return omp_get_num_threads(); }
    static void grokreg_barrier(void) {
    #pragma omp barrier
    }
    #else
    static int grokreg_team_size(void) { return 1; }
    static void grokreg_barrier(void) {}
    #endif
    """
    # inside a parallel block: how many threads it has (OpenMP may give fewer than asked), and
    # a barrier they all meet at (Cython has none)
    int team_size "grokreg_team_size"() noexcept nogil
    void barrier "grokreg_barrier"() noexcept nogil

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
PHASES = ("masks", "forward and deltas", "regrouping by input", "weights_1_2 update",
          "weights_0_1 update", "biases")


cdef inline void lap(double *phases, int phase, double *mark) noexcept nogil:
    """Add the time since mark to phases[phase] (when timing) and move mark on."""
    cdef double t
    if phases != NULL:
        t = now()
        phases[phase] += t - mark[0]
        mark[0] = t


cdef inline void meet(double *waits, int member) noexcept nogil:
    """A barrier between two steps of a parallel block; when timing (waits not NULL), the
    seconds this thread spent waiting there are added to waits[member]."""
    cdef double arrived
    if waits == NULL:
        barrier()
    else:
        arrived = now()
        barrier()
        waits[member] += now() - arrived


cpdef enum Loss:
    SQUARED_ERROR = 0
    SOFTMAX_CROSS_ENTROPY = 1


# the integer type of sparse columns and listed rows: 16 bits for a data set's columns where
# the network has at most 65,536 inputs (half the memory of 32 bits: 18 MB for MNIST's training
# set), 32 bits for wider data and for the kernels' own lists (units, a batch's examples)
ctypedef fused index_int:
    int32_t
    uint16_t


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


# The kernels, by job; each file is included here, so that one module (per instruction-set
# build: _kernels_avx2.pyx includes this file) holds them all.
include "_rows.pxi"      # row primitives: z += x . W over listed rows, W[rows] += alpha * x v
include "_example.pxi"   # one example: masks, ReLU, forward pass, losses and deltas
include "_epochs.pxi"    # one epoch: per example, or in mini-batches
include "_sparse.pxi"    # data sets as compressed sparse rows

#: the width of this build's vector registers, in bytes (16 SSE2, 32 AVX2, 64 AVX-512)
VECTOR_WIDTH = VECTOR_BYTES

#: where the arrays the kernels read in vectors start: a cache line (and an AVX-512 vector)
ALIGNMENT = 64


def aligned_empty(shape, dtype):
    """np.empty(shape, dtype), its data starting on a multiple of ALIGNMENT bytes.

    numpy's own arrays start wherever malloc puts them (16 or 48 bytes past a cache line,
    say): then, with rows of whole vectors, every other vector read crosses a line, which
    cost 13-23% of a book-mode training step and ~11% of a full-MNIST mini-batch epoch at one
    thread (bench/alignment.py).
    """
    dtype = np.dtype(dtype)
    shape = tuple(shape) if np.iterable(shape) else (shape,)
    if any(n < 0 for n in shape):
        raise ValueError(f"negative dimensions are not allowed: {shape}")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buffer = np.empty(nbytes + ALIGNMENT, dtype=np.uint8)
    start = -buffer.ctypes.data % ALIGNMENT
    return buffer[start:start + nbytes].view(dtype).reshape(shape)


def aligned_zeros(shape, dtype):
    """np.zeros(shape, dtype), its data starting on a multiple of ALIGNMENT bytes."""
    array = aligned_empty(shape, dtype)
    array[...] = 0
    return array


def aligned_copy(array, dtype=None):
    """A C-contiguous copy of array (converted to dtype if given), its data starting on a
    multiple of ALIGNMENT bytes."""
    array = np.asarray(array)
    copy = aligned_empty(array.shape, array.dtype if dtype is None else dtype)
    copy[...] = array
    return copy


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


cdef check_rows(const index_int[::1] indices, const int64_t[::1] indptr, Py_ssize_t n_data,
                Py_ssize_t n_inputs, bint ascending, int n_threads):
    """The sparse rows must lie inside their arrays, and their columns inside the network;
    with ascending, each row's columns must ascend too (as sparse_rows makes them: mini-batches
    find a run of inputs in a row by counting those below it, see run_of_row)."""
    cdef Py_ssize_t i, t, n = indptr.shape[0] - 1, n_entries = indices.shape[0]
    if n < 0 or indptr[0] != 0 or indptr[n] != n_entries or n_data != n_entries:
        raise ValueError("data, indices and indptr do not describe sparse rows: use sparse_rows(x)")
    for i in range(n):
        if indptr[i + 1] < indptr[i]:
            raise ValueError("indptr must be non-decreasing")
    # columns outside the network; and where a column is below the one before it: the rows
    # ascend when every such place is the start of a row
    cdef Py_ssize_t outside = 0, descents = 0, descents_at_starts = 0
    with nogil:
        # counts over the whole array, with no early exit, so that the loop vectorises, shared
        # among threads (it is run on every call: a full data set's rows for every epoch and
        # every evaluation; MNIST's columns are 19 MB, read from memory)
        if not ascending:
            for t in prange(n_entries, num_threads=n_threads, schedule="static"):
                outside += (indices[t] < 0) | (indices[t] >= n_inputs)
        else:  # in the same pass
            if n_entries > 0:
                outside = (indices[0] < 0) | (indices[0] >= n_inputs)
            for t in prange(1, n_entries, num_threads=n_threads, schedule="static"):
                outside += (indices[t] < 0) | (indices[t] >= n_inputs)
                descents += indices[t] < indices[t - 1]
            for i in range(1, n):
                if 0 < indptr[i] < indptr[i + 1]:
                    descents_at_starts += indices[indptr[i]] < indices[indptr[i] - 1]
    if outside:
        for t in range(n_entries):
            if indices[t] < 0 or indices[t] >= n_inputs:
                raise ValueError(f"indices[{t}] = {indices[t]} is outside 0..{n_inputs - 1} "
                                 f"(the network's inputs)")
    if descents != descents_at_starts:
        for i in range(n):
            for t in range(indptr[i] + 1, indptr[i + 1]):
                if indices[t] < indices[t - 1]:
                    raise ValueError(f"row {i}'s columns must ascend (indices[{t - 1}] = "
                                     f"{indices[t - 1]}, indices[{t}] = {indices[t]}): use "
                                     f"sparse_rows(x)")


cdef ByInput by_input_of(int64_t[:, ::1] counts, int64_t[:, ::1] starts,
                         int64_t[:, ::1] fill):
    """The ByInput over these arrays (which must outlive it)."""
    cdef ByInput view
    view.n_parts = counts.shape[0]
    view.n_inputs = counts.shape[1]
    view.counts = &counts[0, 0]
    view.starts = &starts[0, 0]
    view.fill = &fill[0, 0]
    return view


def train_epoch(const floating[::1] data not None, const index_int[::1] indices not None,
                const int64_t[::1] indptr not None, const int64_t[::1] labels not None,
                const int64_t[::1] order not None, floating[:, ::1] weights_0_1 not None,
                floating[::1] bias_1 not None, floating[:, ::1] weights_1_2 not None,
                floating[::1] bias_2 not None, double alpha, Py_ssize_t batch_size, bint book,
                double keep, object bit_generator, int loss=SQUARED_ERROR,
                bint train_bias=False, bint dense=False, int n_threads=1,
                double[::1] phases=None, double[::1] waits=None):
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
    only) accumulates the time of each phase of the epoch (as thread 0 sees it), and waits
    (n_threads seconds) each thread's time spent waiting for the others at the barriers
    between a batch's steps, for bench/phases.py.
    """
    cdef Py_ssize_t n = indptr.shape[0] - 1, width = weights_0_1.shape[1]
    cdef Py_ssize_t n_hidden = weights_1_2.shape[0], n_outputs = weights_1_2.shape[1]
    cdef Py_ssize_t t, n_correct = 0, n_seen = order.shape[0], rows
    cdef double error
    cdef bint finite
    cdef Rules rules
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    check_network(weights_0_1, bias_1, weights_1_2, bias_2, loss)
    check_rows(indices, indptr, data.shape[0], weights_0_1.shape[0],
               batch_size > 1 and not dense, n_threads)
    check_labels(labels, n, n_outputs)
    for t in range(order.shape[0]):
        if order[t] < 0 or order[t] >= n:
            raise ValueError(f"order[{t}] = {order[t]} is outside 0..{n - 1}")
    if not (0 < keep <= 1):
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not isfinite(alpha):
        raise ValueError(f"alpha must be finite, got {alpha}")
    if book and (loss != SQUARED_ERROR or train_bias):
        raise ValueError("the book's network has squared error and no biases")
    if phases is not None and phases.shape[0] != len(PHASES):
        raise ValueError(f"phases must have {len(PHASES)} entries, one per phase in PHASES")
    cdef double *phase_seconds = &phases[0] if phases is not None else NULL
    if waits is not None and waits.shape[0] != n_threads:
        raise ValueError(f"waits must have n_threads = {n_threads} entries, got {waits.shape[0]}")
    cdef double *wait_seconds = &waits[0] if waits is not None else NULL
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
    # rows as wide as weights_0_1's where they meet it, read and written in whole vectors:
    # aligned as its rows are; delta_1's padding stays 0, so that the padding of weights_0_1
    # stays 0 too
    cdef floating[:, ::1] h = aligned_empty((rows, width), dtype)
    cdef floating[:, ::1] gate = np.empty((rows, n_hidden), dtype=dtype)
    cdef floating[:, ::1] delta_1 = aligned_zeros((rows, width), dtype)
    cdef floating[:, ::1] drift = np.empty((rows, n_hidden), dtype=dtype)
    cdef floating[:, ::1] delta_2 = np.empty((rows, n_outputs), dtype=dtype)
    cdef floating[:, ::1] grad_1_2 = np.empty((n_hidden, n_outputs), dtype=dtype)
    # the second layer's sums over each half of a mini-batch (see BATCH_HALVES)
    cdef floating[:, ::1] half_grads = np.empty((BATCH_HALVES * n_hidden, n_outputs), dtype=dtype)
    cdef floating[:, ::1] mask = np.empty((rows, n_hidden), dtype=dtype)
    cdef double[::1] example_error = np.empty(rows, dtype=np.float64)
    cdef Py_ssize_t[::1] example_hit = np.empty(rows, dtype=np.intp)
    literal = book and dense and batch_size > 1  # the book's batch loop, which needs sums_0_1
    cdef floating[:, ::1] sums_0_1 = aligned_empty(
        (weights_0_1.shape[0] if literal else 1, width), dtype)
    # a mini-batch's first-layer sums over each run of inputs (see INPUT_RUNS)
    cdef floating[:, ::1] run_sums = aligned_empty(
        (INPUT_RUNS * rows if batch_size > 1 and not dense else 1, width), dtype)
    # a mini-batch in one part per thread (batch_epoch's threads index their scratch by
    # their number, and OpenMP gives at most n_threads), and regrouped by input (ByInput) for
    # each layer's update: room for its largest possible size
    by_columns = batch_size > 1 and not dense
    cdef Py_ssize_t batch_entries = 1, n_parts = n_threads if batch_size > 1 else 1
    if by_columns:
        batch_entries = max(1, rows * int(np.max(np.diff(indptr)) if n > 0 else 0))
    cdef Py_ssize_t n_inputs = weights_0_1.shape[0]
    cdef int64_t[:, ::1] input_counts = np.empty((n_parts, n_inputs), dtype=np.int64)
    cdef int64_t[:, ::1] input_starts = np.empty((n_parts, n_inputs + 1), dtype=np.int64)
    cdef int64_t[:, ::1] input_fill = np.empty((n_parts, n_inputs), dtype=np.int64)
    cdef floating[:, ::1] input_entries = np.empty((batch_entries, 2), dtype=dtype)
    cdef int64_t[:, ::1] unit_counts = np.empty((BATCH_HALVES, n_hidden), dtype=np.int64)
    cdef int64_t[:, ::1] unit_starts = np.empty((BATCH_HALVES, n_hidden + 1), dtype=np.int64)
    cdef int64_t[:, ::1] unit_fill = np.empty((BATCH_HALVES, n_hidden), dtype=np.int64)
    cdef floating[:, ::1] unit_entries = np.empty((rows * n_hidden if by_columns else 1, 2),
                                                  dtype=dtype)
    cdef ByInput by_input = by_input_of(input_counts, input_starts, input_fill)
    cdef ByInput by_unit = by_input_of(unit_counts, unit_starts, unit_fill)
    # a batch's sparse rows gathered into one stretch (see batch_epoch, copy_rows)
    cdef floating[::1] batch_data = np.empty(batch_entries, dtype=dtype)
    cdef index_int[::1] batch_indices = np.empty(batch_entries, dtype=np.asarray(indices).dtype)
    cdef int64_t[::1] batch_indptr = np.empty(rows + 1, dtype=np.int64)
    # each example's active hidden units as a sparse row: active_values[b] and
    # active_units[b] up to active_end[b] (positions: the batch's rows in order)
    cdef int64_t[::1] active_begin = np.arange(rows, dtype=np.int64) * n_hidden
    cdef int64_t[::1] active_end = np.empty(rows, dtype=np.int64)
    cdef int64_t[::1] positions = np.arange(rows, dtype=np.int64)
    cdef floating[:, ::1] active_values = np.empty((rows, n_hidden), dtype=dtype)
    cdef int32_t[:, ::1] active_units = np.empty((rows, n_hidden), dtype=np.int32)
    # weights_1_2.T (see hidden_delta), and the outputs' indices to address its rows
    # (one per thread in mini-batches)
    cdef floating[:, ::1] transposed = aligned_empty((n_parts * n_outputs, n_hidden), dtype)
    cdef int32_t[::1] output_units = np.arange(n_outputs, dtype=np.int32)
    # base pointers; with no non-zero input at all, every row is empty and neither is read
    cdef const floating *values = &data[0] if data.shape[0] else NULL
    cdef const index_int *columns = &indices[0] if indices.shape[0] else NULL

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
                                delta_1, grad_1_2, half_grads, drift, sums_0_1, run_sums, mask,
                                example_error, example_hit, active_begin, active_end, positions,
                                &by_input, &input_entries[0, 0], &by_unit,
                                &unit_entries[0, 0], transposed, output_units,
                                &batch_data[0], &batch_indices[0], &batch_indptr[0], n_threads,
                                &n_correct, &n_seen, phase_seconds, wait_seconds)
        finite = (isfinite(error)
                  and all_finite(&weights_0_1[0, 0], weights_0_1.shape[0] * width)
                  and all_finite(&weights_1_2[0, 0], n_hidden * n_outputs)
                  and all_finite(&bias_1[0], width) and all_finite(&bias_2[0], n_outputs))
    return error, n_correct, n_seen, finite


def evaluate(const floating[::1] data not None, const index_int[::1] indices not None,
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
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    check_network(weights_0_1, bias_1, weights_1_2, bias_2, loss)
    check_rows(indices, indptr, data.shape[0], weights_0_1.shape[0], False, n_threads)
    if has_labels:
        check_labels(labels, n, n_outputs)
    if has_predictions and predictions.shape[0] != n:
        raise ValueError(f"predictions has {predictions.shape[0]} entries for {n} examples")
    if has_outputs and (outputs.shape[0] != n or outputs.shape[1] != n_outputs):
        raise ValueError(f"outputs must have shape ({n}, {n_outputs})")
    dtype = np.float32 if floating is float else np.float64
    # one scratch row per thread; one loss and hit per example, added up in order below
    cdef floating[:, ::1] h = aligned_empty((n_threads, weights_0_1.shape[1]), dtype)
    cdef floating[:, ::1] gate = np.empty((n_threads, n_hidden), dtype=dtype)
    cdef floating[:, ::1] out = np.empty((n_threads, n_outputs), dtype=dtype)
    cdef floating[:, ::1] active_values = np.empty((n_threads, n_hidden), dtype=dtype)
    cdef int32_t[:, ::1] active_units = np.empty((n_threads, n_hidden), dtype=np.int32)
    cdef double[::1] example_error = np.zeros(n if has_labels else 0, dtype=np.float64)
    cdef Py_ssize_t[::1] example_hit = np.zeros(n if has_labels else 0, dtype=np.intp)
    cdef floating *row_out
    cdef const floating *values = &data[0] if data.shape[0] else NULL
    cdef const index_int *columns = &indices[0] if indices.shape[0] else NULL
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
