"""grokreg's compiled kernels: the inputs-hidden-outputs network of Grokking Deep Learning, ch. 8.

Three layers, each with one job, as in scikit-learn's Cython modules. ``cdef ... noexcept
nogil`` functions compute one row, one example, one tile or one step of a mini-batch, on raw
pointers; two classes built with the GIL hold what they read: a ``Dataset`` (a data set's
examples and labels, checked once when made) and a ``Workspace`` (one fit's network, options
and scratch, checked against its Dataset in constant time, allocated once), whose
``train_epoch`` runs an epoch with the GIL released; and the public Python layer
(``grokreg.network``, ``grokreg.training``) converts and validates user input before building
them. Called directly with inconsistent arrays, the classes and ``evaluate`` still raise.

The files, by job, included below: ``_rows.pxi`` (row primitives, generated from
``_rows.pxi.tp``), ``_example.pxi`` (one example: masks, ReLU, losses, deltas), ``_batch.pxi``
(a mini-batch regrouped by input), ``_dense.pxi`` and ``_tiles.h`` (the dense layout's
register tiles), ``_sparse.pxi`` (data sets as compressed sparse rows) and ``_fit.pxi``
(the network, the data and a fit's scratch as structs, and the epochs step by step, per dtype,
generated from ``_fit.pxi.tp``). This file holds what they share and the entry points.

Conventions (the book's names): ``weights_1_2`` is (n_hidden, n_outputs) and ``weights_0_1`` is
(n_inputs, width) with width >= n_hidden: its rows are padded with zero columns to whole
vectors of the build, and ``bias_1`` (width,) likewise (``grokreg.network.padded_width``), so
that a row is read in whole vectors, in one pass of registers (100 float32 units take 12.5 AVX2
vectors: a second pass over the same rows for the last half vector cost a third of the time);
the padding's sums are zeros and are never read, and its updates add zeros (delta_1's padding
is 0). ``bias_1`` and ``bias_2`` are added to the layers' sums (zeros, never updated, without
biases: starting a sum from +0.0 changes nothing). Targets are one-hot rows built from integer
labels. The update is ``w += alpha * (activation * delta)``, where for squared error ``delta =
target - output`` (gradient descent on half the squared error, the book's convention) and for
softmax cross-entropy ``delta = target - softmax(output)``.

A Dataset holds its examples in one of two layouts, by the share of inputs that are non-zero.
SPARSE: compressed sparse rows, ``sparse_rows(x)`` = (``data``, ``indices``, ``indptr``) as
scipy.sparse names them, every pass reading only the non-zero inputs, contiguously (MNIST is
~19% ink). DENSE: the examples as given (no copy), a mini-batch packed and computed in
register tiles, as a matrix product is. Both give the same bits: every sum is taken in the
same order, and skipping a zero input is exact while the weights are finite (``x_k * w`` adds
an exact zero). Hidden units that are zero (inactive or dropped) are likewise skipped in the
second layer. Once training has diverged, NumPy's ``0 * inf`` is NaN; book mode then follows
the book with literal rows, sparse rows that keep their zeros, over which nothing is skipped.
"""
from contextlib import nullcontext

import numpy as np

from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid
from libc.math cimport NAN, cos, exp, isfinite, log, sin, sqrt
from libc.string cimport memcpy
from libc.stdint cimport INT32_MAX, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from numpy.random cimport bitgen_t
cimport numpy as cnp

cnp.import_array()

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
    /* setup.py defines GROKREG_CPU_DISPATCH where it builds the wider kernels, having checked
       that this compiler has __builtin_cpu_supports, which is also false where the operating
       system does not save the wider registers */
    static int grokreg_cpu_has_avx2(void) {
    #if defined(GROKREG_CPU_DISPATCH) && (defined(__GNUC__) || defined(__clang__))
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    #else
        return 0;
    #endif
    }
    static int grokreg_cpu_has_avx512(void) {
    #if defined(GROKREG_CPU_DISPATCH) && (defined(__GNUC__) || defined(__clang__))
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
            && __builtin_cpu_supports("avx512f")
            && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512dq");
    #else
        return 0;
    #endif
    }
    #ifdef __AVX2__
    #define GROKREG_BUILT_FOR_AVX2 1
    #else
    #define GROKREG_BUILT_FOR_AVX2 0
    #endif
    #ifdef __AVX512F__
    #define GROKREG_BUILT_FOR_AVX512 1
    #else
    #define GROKREG_BUILT_FOR_AVX512 0
    #endif
    """
    int grokreg_cpu_has_avx2() noexcept nogil
    int grokreg_cpu_has_avx512() noexcept nogil
    const int GROKREG_BUILT_FOR_AVX2
    const int GROKREG_BUILT_FOR_AVX512

# Which instructions this build was compiled for, and whether this CPU runs the wider builds
# (grokreg._dispatch chooses with these).
AVX2 = bool(GROKREG_BUILT_FOR_AVX2)
AVX512 = bool(GROKREG_BUILT_FOR_AVX512)


def cpu_has_avx2():
    """True where this CPU (and operating system) can run the AVX2 build of the kernels."""
    return bool(grokreg_cpu_has_avx2())


def cpu_has_avx512():
    """True where this CPU (and operating system) can run the AVX-512 build of the kernels."""
    return bool(grokreg_cpu_has_avx512())


cdef extern from *:
    """
    #include <time.h>
    static double grokreg_now(void) {
        struct timespec t;
        timespec_get(&t, TIME_UTC);
        return (double) t.tv_sec + 1e-9 * (double) t.tv_nsec;
    }
    #ifdef GROKREG_TIMING
    #define GROKREG_TIMED 1
    #else
    #define GROKREG_TIMED 0
    #endif
    """
    # seconds, for bench/phases.py's breakdown of a mini-batch epoch (train_epoch's phases)
    double now "grokreg_now"() noexcept nogil
    # whether this build times the phases (setup.py's GROKREG_TIMING): a constant, so that the
    # shipped kernels carry no timing code at all
    const bint TIMED "GROKREG_TIMED"

#: whether train_epoch can time an epoch's phases (a bench build: GROKREG_TIMING=1)
TIMING = bool(TIMED)

#: the phases of a mini-batch epoch that train_epoch(phases=...) times, in its order
PHASES = ("masks", "forward and deltas", "regrouping by input", "weights_1_2 update",
          "weights_0_1 update", "biases")


cdef inline void lap(double *phases, int phase, double *mark) noexcept nogil:
    """Add the time since mark to phases[phase] (when timing) and move mark on."""
    cdef double t
    if TIMED and phases != NULL:
        t = now()
        phases[phase] += t - mark[0]
        mark[0] = t


cdef inline void meet(double *waits, int member) noexcept nogil:
    """A barrier between two steps of a parallel block; when timing (waits not NULL), the
    seconds this thread spent waiting there are added to waits[member]."""
    cdef double arrived
    if TIMED and waits != NULL:
        arrived = now()
        barrier()
        waits[member] += now() - arrived
    else:
        barrier()


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
    bint literal       # skip no zero: 0 * inf must give NaN, as in NumPy (after a divergence)
    Dropout dropout    # of the hidden units
    Dropout input_dropout  # of the inputs (default mode: keyed masks)
    # the regularizers of a step, as scikit-learn's SGDOptimizer takes it: step = -alpha *
    # (gradient + weight_decay * weights); with momentum, velocity = momentum * velocity +
    # step, weights += velocity (nesterov: momentum * velocity + step); max_norm > 0 rescales
    # each unit's incoming weights to that norm at most after every step
    double weight_decay
    double momentum
    bint nesterov
    double max_norm
    bint stepped       # weight decay or momentum: a step is made in the step buffers, then taken


# The kernels, by job; each file is included here, so that one module (per instruction-set
# build: _kernels_avx2.pyx includes this file) holds them all.
include "_rows.pxi"      # row primitives: z += x . W over listed rows, W[rows] += alpha * x v
include "_example.pxi"   # one example: masks, ReLU, losses and deltas
include "_batch.pxi"     # a mini-batch regrouped: by input, runs of inputs, halves of the batch
include "_dense.pxi"     # the dense layout: register tiles over a packed batch
include "_sparse.pxi"    # data sets as compressed sparse rows
include "_fit.pxi"       # the network, the data and a fit's scratch; the epochs, step by step
include "_distort.pxi"   # images distorted: affine and elastic displacement fields

#: the width of this build's vector registers, in bytes (16 SSE2, 32 AVX2, 64 AVX-512)
VECTOR_WIDTH = VECTOR_BYTES

#: where the arrays the kernels read in vectors start: a cache line (and an AVX-512 vector)
ALIGNMENT = 64


def aligned_empty(shape, dtype):
    """np.empty(shape, dtype), its data starting on a multiple of ALIGNMENT bytes.

    numpy's own arrays start wherever malloc puts them (16 or 48 bytes past a cache line,
    say): then, with rows of whole vectors, every other vector read crosses a line, which
    cost 13-23% of a book-mode training step and ~11% of a full-MNIST mini-batch epoch at one
    thread.
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

#: where the DENSE layout takes over (Dataset's "auto"): the share of non-zero inputs from
#: which its register tiles train a mini-batch epoch faster than the sparse rows, per build,
#: as bench/density.py measures the crossover on MNIST thinned or filled at random: 50% with
#: AVX-512 (taken lower: images' zeros come in stretches the tiles skip, and Fashion-MNIST's
#: 49.8% trains in 238 ms an epoch dense against 295 sparse), 75% with AVX2; the portable
#: build's 128-bit tiles lose at every density, so it keeps sparse rows (None). Per-example
#: training reads either layout as sparse rows.
DENSE_FROM = 0.45 if VECTOR_BYTES >= 64 else 0.75 if VECTOR_BYTES >= 32 else None

cdef enum:
    # evaluation's examples per thread at a time (a DENSE block is packed and summed in tiles)
    EVALUATION_BLOCK = 64


cdef inline void *address(object array) except? NULL:
    """Where an array's data start (NULL for None or an empty array)."""
    if array is None or array.size == 0:
        return NULL
    return cnp.PyArray_DATA(array)


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
    if weights_0_1.shape[1] % (32 // sizeof(floating)):
        raise ValueError("weights_0_1's rows must be whole blocks of 32 bytes (padded: see "
                         "grokreg.network.padded_width)")
    if loss != SQUARED_ERROR and loss != SOFTMAX_CROSS_ENTROPY:
        raise ValueError(f"unknown loss code {loss}")


def _parameters(weights_0_1, bias_1, weights_1_2, bias_2, int loss):
    """The network's four arrays, checked: one floating dtype, consistent shapes; their dtype."""
    arrays = [np.asarray(a) for a in (weights_0_1, bias_1, weights_1_2, bias_2)]
    dtype = arrays[0].dtype
    if dtype not in (np.float32, np.float64) or any(a.dtype != dtype for a in arrays):
        raise TypeError("weights_0_1, bias_1, weights_1_2 and bias_2 must all be float32 or "
                        "all float64")
    if dtype == np.float32:
        check_network[float](arrays[0], arrays[1], arrays[2], arrays[3], loss)
    else:
        check_network[double](arrays[0], arrays[1], arrays[2], arrays[3], loss)
    return dtype


cdef check_rows(const index_int[::1] indices, const int64_t[::1] indptr, Py_ssize_t n_data,
                Py_ssize_t n_inputs, int n_threads):
    """Sparse rows must lie inside their arrays, their columns inside the network, and each
    row's columns ascend (as sparse_rows makes them: mini-batches find a run of inputs in a row
    by counting those below it, see run_of_row)."""
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
        # counts over the whole array, with no early exit, so that the loop vectorises
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


LAYOUTS = ("sparse", "dense")


def _weights(sample_weight, Py_ssize_t n):
    """Sample weights as float64 (n,), checked finite and non-negative; their total."""
    if sample_weight is None:
        return None, float(n)
    weights = np.asarray(sample_weight)
    if weights.dtype != np.float64 or weights.ndim != 1 or not weights.flags.c_contiguous:
        raise TypeError("sample_weight must be a C-contiguous float64 array")
    if weights.shape[0] != n:
        raise ValueError(f"sample_weight has {weights.shape[0]} entries for {n} examples")
    if not np.isfinite(weights).all() or (n and weights.min() < 0):
        raise ValueError("sample_weight must hold finite, non-negative numbers")
    return weights, float(weights.sum())


def _labels(labels, Py_ssize_t n):
    """Labels as int64 (n,), checked non-negative; and the number of classes they need."""
    if labels is None:
        return None, 0
    labels = np.asarray(labels)
    if labels.dtype != np.int64 or labels.ndim != 1 or not labels.flags.c_contiguous:
        raise TypeError("labels must be a C-contiguous int64 array")
    if labels.shape[0] != n:
        raise ValueError(f"labels has {labels.shape[0]} entries for {n} examples")
    if n and labels.min() < 0:
        i = int(np.argmax(labels < 0))
        raise ValueError(f"labels[{i}] = {labels[i]} is negative")
    return labels, (int(labels.max()) + 1 if n else 0)


cdef class Dataset:
    """A data set as the kernels read it, checked once: its examples in one of two layouts,
    and their labels (or none).

    SPARSE: compressed sparse rows (``sparse_rows``), only the non-zero inputs stored and
    read. DENSE: the examples as given, every input read, in register tiles (``_tiles.h``).
    Both compute the same bits; which is faster depends on the share of non-zero inputs
    (``density``). ``Dataset(x, labels, dtype=..., layout="auto")`` measures it and chooses
    (``DENSE_FROM``); "sparse" or "dense" forces a layout (tests, bench/density.py).

    x is (n, n_inputs), C-contiguous: floating point of the dtype (kept as it is, not
    copied, in the DENSE layout), or uint8 pixels standing for ``values[pixel]`` (default:
    pixel / 255, the book's scaling, computed in the dtype). literal (book mode after a
    divergence) keeps every zero as an entry of SPARSE rows: NumPy's arithmetic for inf and NaN.
    ``Dataset.from_rows`` takes sparse rows made elsewhere and checks every entry. reuse, a
    Dataset no longer needed (a fit's previous epoch of distorted images), hands over the
    storage of its sparse rows where they have room for these (it is then ``taken``: the
    kernels refuse it), or this one makes its own with room to spare for the next. counts
    (floating-point x, not literal) is each row's number of non-zero inputs where the caller
    has it (``distort`` counts as it writes): the rows are then not read to count them, and
    their range is not measured (minimum, maximum and root_mean_square are NaN); sparse rows
    are checked against counts as they are placed.
    """
    cdef readonly str layout
    cdef readonly Py_ssize_t n, n_inputs
    cdef readonly double density
    cdef readonly object dtype
    cdef readonly bint literal
    cdef readonly object labels
    #: the number of classes the labels need (their largest + 1; 0 without labels)
    cdef readonly Py_ssize_t n_classes
    #: the longest row's entries (SPARSE; n_inputs for DENSE)
    cdef readonly Py_ssize_t longest_row
    #: the smallest and largest input (NaN where an input is NaN) and the inputs' root mean
    #: square (for pixels, a bound of it), measured when counting
    cdef readonly double minimum, maximum, root_mean_square
    #: each example's weight (None: each counts once), and their total
    cdef readonly object sample_weight
    cdef readonly double weight_total
    #: whether another Dataset took over its storage (reuse): its rows are no longer its own
    cdef readonly bint taken
    cdef dict arrays
    cdef object storage  # (data, indices) holding the SPARSE rows (perhaps with room to spare)
    cdef Rows32 rows32
    cdef Rows64 rows64

    def __init__(self, x, labels=None, *, dtype=None, layout="auto", bint literal=False,
                 values=None, sample_weight=None, int n_threads=1, counts=None, reuse=None):
        if n_threads < 1:
            raise ValueError(f"n_threads must be >= 1, got {n_threads}")
        if layout not in ("auto",) + LAYOUTS:
            raise ValueError(f"layout must be 'auto', 'sparse' or 'dense', got {layout!r}")
        if literal and layout == "dense":
            raise ValueError("literal rows keep their zeros as sparse rows: layout 'sparse'")
        x = np.asarray(x)
        if x.ndim != 2 or not x.flags.c_contiguous:
            raise ValueError(f"x must be a C-contiguous 2-D array, got shape {x.shape}")
        pixels = x.dtype == np.uint8
        if not pixels and x.dtype not in (np.float32, np.float64):
            raise TypeError(f"x must be uint8 pixels or float32 or float64, got {x.dtype}")
        # pixels stand for float64 numbers unless told otherwise
        self.dtype = np.dtype(dtype if dtype is not None else
                              np.float64 if pixels else x.dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        if not pixels and x.dtype != self.dtype:
            raise TypeError(f"x must be uint8 pixels or {self.dtype}, got {x.dtype}")
        if pixels:
            values = (np.divide(np.arange(256, dtype=np.uint8), 255, dtype=self.dtype)
                      if values is None else np.ascontiguousarray(values))
            if values.dtype != self.dtype or values.shape != (256,):
                raise ValueError(f"values must be 256 {self.dtype} numbers, one per pixel value")
        elif values is not None:
            raise ValueError("values go with uint8 pixels")
        self.n, self.n_inputs = x.shape
        self.literal = literal
        self.labels, self.n_classes = _labels(labels, self.n)
        self.sample_weight, self.weight_total = _weights(sample_weight, self.n)
        if pixels:
            if counts is not None:
                raise ValueError("counts go with floating-point rows")
            ranges = np.empty((self.n, 2))  # of the pixels
            counts = pixel_counts(x, values, literal, n_threads, ranges)
            if x.size:
                # the values of the pixels from the smallest to the largest present (all of
                # them present, where values does not rise with the pixel)
                span = values[int(ranges[:, 0].min()):int(ranges[:, 1].max()) + 1]
                if np.any(np.diff(span) < 0):
                    span = values[np.bincount(x.ravel(), minlength=256) > 0]
                self.minimum, self.maximum = float(span.min()), float(span.max())
                self.root_mean_square = float(np.abs(span).max())  # at most
        elif counts is not None:
            if literal:
                raise ValueError("literal rows keep every entry: they take no counts")
            counts = given_counts(counts, self.n, self.n_inputs)
            self.minimum = self.maximum = self.root_mean_square = np.nan  # not measured
        else:
            ranges = np.empty((self.n, 3))  # smallest, largest, sum of squares
            counts = row_counts(x, literal, n_threads, ranges)
            if x.size:
                self.minimum, self.maximum = float(ranges[:, 0].min()), float(ranges[:, 1].max())
                self.root_mean_square = float(np.sqrt(ranges[:, 2].sum() / x.size))
        if not x.size:
            self.minimum = self.maximum = self.root_mean_square = np.nan
        entries = int(counts.sum())
        self.density = entries / x.size if x.size else 0.0
        if layout == "auto":
            dense = DENSE_FROM is not None and self.density >= DENSE_FROM and not literal
            layout = "dense" if dense else "sparse"
        self.layout = layout
        arrays = {"labels": self.labels, "weights": self.sample_weight}
        kept = np.empty(256, dtype=np.uint8)
        zero_pixel_only = False
        if pixels:
            zero_pixel_only = bool(np.array_equal(values != 0, np.arange(256) != 0))
            kept[...] = values != 0
        if layout == "dense":
            arrays.update(pixels=x, table=values, kept=kept) if pixels else arrays.update(dense=x)
            self.longest_row = self.n_inputs
        else:
            if reuse is not None:
                if not isinstance(reuse, Dataset):
                    raise TypeError(f"reuse must be a Dataset, got {type(reuse).__name__}")
                self.storage = (<Dataset> reuse).hand_over(entries, self.dtype,
                                                           column_dtype(self.n_inputs))
            data, indices, indptr = (
                sparse_pixels(x, values, literal, n_threads, counts, self.storage) if pixels
                else sparse_rows(x, literal, n_threads, counts, self.storage))
            if self.storage is None:
                self.storage = (data, indices)
            arrays.update(data=data, indptr=indptr)
            arrays["columns16" if indices.dtype == np.uint16 else "columns32"] = indices
            self.longest_row = int(counts.max()) if self.n else 0
        self._bind(arrays, zero_pixel_only)

    @classmethod
    def from_rows(cls, data, indices, indptr, Py_ssize_t n_inputs, labels=None, *,
                  bint literal=False, sample_weight=None, int n_threads=1):
        """A SPARSE Dataset over sparse rows made elsewhere (data, indices, indptr as
        sparse_rows returns them), every entry checked."""
        cdef Dataset self = cls.__new__(cls)
        data, indptr = np.asarray(data), np.asarray(indptr)
        indices = np.asarray(indices)
        if data.dtype not in (np.float32, np.float64) or data.ndim != 1:
            raise TypeError("data must be a 1-D float32 or float64 array")
        if indices.dtype not in (np.uint16, np.int32) or indices.ndim != 1:
            raise TypeError("indices must be a 1-D uint16 or int32 array")
        if indptr.dtype != np.int64 or indptr.ndim != 1 or indptr.shape[0] < 1:
            raise TypeError("indptr must be a 1-D int64 array of at least one entry")
        if n_threads < 1:
            raise ValueError(f"n_threads must be >= 1, got {n_threads}")
        if n_inputs < 1:
            raise ValueError(f"n_inputs must be >= 1, got {n_inputs}")
        data, indices, indptr = (np.ascontiguousarray(a) for a in (data, indices, indptr))
        if indices.dtype == np.uint16:
            check_rows[uint16_t](indices, indptr, data.shape[0], n_inputs, n_threads)
        else:
            check_rows[int32_t](indices, indptr, data.shape[0], n_inputs, n_threads)
        self.dtype, self.layout, self.literal = data.dtype, "sparse", literal
        self.n, self.n_inputs = indptr.shape[0] - 1, n_inputs
        self.labels, self.n_classes = _labels(labels, self.n)
        self.sample_weight, self.weight_total = _weights(sample_weight, self.n)
        self.density = data.shape[0] / (self.n * n_inputs) if self.n else 0.0
        self.minimum = float(min(data.min(), 0)) if data.size else (0.0 if self.n else np.nan)
        self.maximum = float(max(data.max(), 0)) if data.size else (0.0 if self.n else np.nan)
        self.root_mean_square = (float(np.sqrt(np.sum(data.astype(np.float64) ** 2)
                                               / (self.n * n_inputs))) if self.n else np.nan)
        self.longest_row = int(np.diff(indptr).max()) if self.n else 0
        arrays = {"labels": self.labels, "weights": self.sample_weight, "data": data,
                  "indptr": indptr,
                  ("columns16" if indices.dtype == np.uint16 else "columns32"): indices}
        self._bind(arrays, False)
        return self

    cdef check_own(self):
        """A ValueError where another Dataset took over this one's storage."""
        if self.taken:
            raise ValueError("this Dataset's storage was taken over by another (reuse): its "
                             "rows are no longer its own")

    cdef object hand_over(self, Py_ssize_t entries, dtype, columns):
        """Storage for another Dataset's sparse rows of entries: this one's, where it has
        room (this one is then taken), else new, with a sixteenth more room."""
        self.check_own()
        if self.storage is not None:
            data, indices = self.storage
            if (data.dtype == dtype and indices.dtype == columns
                    and data.shape[0] >= max(entries, 1)):
                self.taken = True
                return self.storage
        room = max(entries + entries // 16, 1)
        return np.empty(room, dtype=dtype), np.empty(room, dtype=columns)

    def _bind(self, dict arrays, bint zero_pixel_only):
        self.arrays = arrays
        layout = DENSE if self.layout == "dense" else SPARSE
        if self.dtype == np.float32:
            bind_rows_32(&self.rows32, layout, self.n, self.n_inputs, arrays, zero_pixel_only)
        else:
            bind_rows_64(&self.rows64, layout, self.n, self.n_inputs, arrays, zero_pixel_only)

    def __repr__(self):
        return (f"Dataset({self.n} x {self.n_inputs}, {self.dtype.name}, {self.layout}, "
                f"density {self.density:.3f})")

    def stored(self):
        """What the kernels read: (data, indices, indptr) of SPARSE rows, or the DENSE rows
        (floating point, or pixels) as given."""
        self.check_own()
        if self.layout == "dense":
            return self.arrays.get("dense", self.arrays.get("pixels"))
        columns = self.arrays.get("columns16", self.arrays.get("columns32"))
        return self.arrays["data"], columns, self.arrays["indptr"]


cdef class Workspace:
    """One fit's scratch and settings, built once, for training its Dataset epoch by epoch.

    ``Workspace(data, weights_0_1, bias_1, weights_1_2, bias_2, batch_size=..., ...)``
    checks the network against the data (shapes, classes, the options) in constant time
    (the Dataset was checked when made), allocates every buffer an epoch needs, and
    ``train_epoch(order)`` then trains one epoch in place, allocating nothing. ``alpha`` may
    change between epochs. The arrays are the network's own (and, with momentum, its four
    velocities): the Workspace keeps references, and they must not be reallocated while it is
    used.

    The regularizers (default mode only): ``weight_decay`` (the step takes alpha *
    weight_decay * weights off the weights, not the biases), ``momentum`` and ``nesterov``
    (scikit-learn's SGDOptimizer), ``max_norm`` (each unit's incoming weights rescaled to that
    norm at most after every step; 0: none), ``input_keep`` (the share of inputs kept by
    input dropout, with its ``input_generator``) and the Dataset's sample weights.
    """
    cdef Fit32 fit32
    cdef Fit64 fit64
    cdef bint wide
    cdef dict scratch
    cdef readonly Dataset data
    cdef readonly object parameters, velocities
    cdef object bit_generator, input_generator
    cdef readonly Py_ssize_t batch_size
    #: the last epoch's hidden units active (after dropout), summed over its examples: 0 when
    #: no unit is active for any example (the network can no longer learn)
    cdef readonly Py_ssize_t active_units

    def __init__(self, Dataset data not None, weights_0_1, bias_1, weights_1_2, bias_2, *,
                 double alpha=0.001, Py_ssize_t batch_size=1, bint book=False,
                 double keep=1.0, object bit_generator=None, int loss=SQUARED_ERROR,
                 bint train_bias=False, int n_threads=1, double weight_decay=0,
                 double momentum=0, bint nesterov=False, double max_norm=0,
                 double input_keep=1.0, object input_generator=None, velocities=None):
        cdef Rules rules
        if n_threads < 1:
            raise ValueError(f"n_threads must be >= 1, got {n_threads}")
        data.check_own()
        dtype = _parameters(weights_0_1, bias_1, weights_1_2, bias_2, loss)
        if dtype != data.dtype:
            raise TypeError(f"the network is {dtype}, the data {data.dtype}")
        n_inputs, width = weights_0_1.shape
        n_hidden, n_outputs = weights_1_2.shape
        if data.n_inputs != n_inputs:
            raise ValueError(f"the data have {data.n_inputs} inputs, the network {n_inputs}")
        if data.labels is None:
            raise ValueError("training needs labels")
        if data.n_classes > n_outputs:
            raise ValueError(f"labels go up to {data.n_classes - 1}, outside the network's "
                             f"{n_outputs} outputs")
        if not (0 < keep <= 1):
            raise ValueError(f"keep must be in (0, 1], got {keep}")
        if not (0 < input_keep <= 1):
            raise ValueError(f"input_keep must be in (0, 1], got {input_keep}")
        if batch_size < 1 or batch_size > max(data.n, 1):
            raise ValueError(f"batch_size must be in 1..{max(data.n, 1)} (the examples), got "
                             f"{batch_size}")
        for name, value in (("weight_decay", weight_decay), ("max_norm", max_norm)):
            if not (isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value}")
        if not (0 <= momentum < 1):
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if book and (loss != SQUARED_ERROR or train_bias):
            raise ValueError("the book's network has squared error and no biases")
        if book and (weight_decay or momentum or nesterov or max_norm or input_keep < 1
                     or data.sample_weight is not None):
            raise ValueError("the book's network has no weight decay, momentum, max-norm, "
                             "input dropout or sample weights")
        rules.book, rules.train_bias, rules.loss, rules.literal = book, train_bias, loss, data.literal
        rules.dropout.active = keep < 1
        rules.dropout.book = book
        rules.dropout.keep = keep
        rules.dropout.rng = NULL
        if rules.dropout.active:
            if book and keep != 0.5:
                raise ValueError("the book's dropout keeps half the units (keep = 0.5)")
            rules.dropout.rng = bitgen_of(bit_generator)
        rules.input_dropout.active = input_keep < 1
        rules.input_dropout.book = False
        rules.input_dropout.keep = input_keep
        rules.input_dropout.rng = NULL
        if rules.input_dropout.active:
            rules.input_dropout.rng = bitgen_of(input_generator)
            if input_generator is not bit_generator and rules.dropout.active:
                raise ValueError("input_generator must be bit_generator (one lock, one stream)")
        rules.weight_decay, rules.momentum, rules.nesterov = weight_decay, momentum, nesterov
        rules.max_norm = max_norm
        rules.stepped = weight_decay != 0 or momentum != 0
        self.parameters = (weights_0_1, bias_1, weights_1_2, bias_2)
        self.velocities = None
        if momentum:
            if velocities is None or len(velocities) != 4:
                raise ValueError("momentum needs the four velocities")
            velocities = tuple(velocities)
            for velocity, parameter in zip(velocities, self.parameters):
                velocity = np.asarray(velocity)
                if (velocity.shape != parameter.shape or velocity.dtype != dtype
                        or not velocity.flags.c_contiguous):
                    raise ValueError("each velocity must be a C-contiguous array like its "
                                     "parameter")
            self.velocities = velocities
        self.data, self.batch_size = data, batch_size
        self.bit_generator, self.input_generator = bit_generator, input_generator
        self.wide = dtype == np.float64
        self.scratch = self._allocate(
            dtype, n_inputs, width, n_hidden, n_outputs, batch_size, n_threads, book,
            rules.input_dropout.active, rules.stepped,
            batch_size == 1 and weight_decay != 0 and momentum == 0)
        self.scratch["velocities"] = self.velocities
        if self.wide:
            bind_net_64(&self.fit64.net, weights_0_1, bias_1, weights_1_2, bias_2)
            self.fit64.rows = data.rows64
            self.fit64.rules = rules
            self.fit64.batch_size, self.fit64.capacity = batch_size, batch_size
            self.fit64.n_threads = n_threads
            bind_fit_64(&self.fit64, self.scratch)
        else:
            bind_net_32(&self.fit32.net, weights_0_1, bias_1, weights_1_2, bias_2)
            self.fit32.rows = data.rows32
            self.fit32.rules = rules
            self.fit32.batch_size, self.fit32.capacity = batch_size, batch_size
            self.fit32.n_threads = n_threads
            bind_fit_32(&self.fit32, self.scratch)
        self.alpha = alpha

    def _allocate(self, dtype, n_inputs, width, n_hidden, n_outputs, capacity, n_threads,
                  book, thinned, stepped, lazy):
        """Every buffer an epoch reads or writes besides the network and the data, by name
        (those a fit does not use hold one element). thinned: input dropout; stepped: weight
        decay or momentum; lazy: per-example weight decay without momentum, which keeps
        weights_0_1's step sparse (sgd_epoch)."""
        batches, dense = capacity > 1, self.data.layout == "dense"
        literal = self.data.literal
        n_parts = n_threads if batches else 1
        by_columns = batches and not literal
        # a gathered batch's sparse rows, and the batch regrouped by input: room for its
        # largest possible size
        entries = capacity * self.data.longest_row if by_columns and not dense else 1
        columns = self.data.arrays.get("columns16", self.data.arrays.get("columns32"))
        # rows as wide as weights_0_1's where they meet it, read and written in whole vectors:
        # aligned as its rows are; delta_1's padding stays 0, so that the padding of
        # weights_0_1 stays 0 too
        return dict(
            batches=np.zeros(n_parts * (sizeof(Batch64) if self.wide else sizeof(Batch32)),
                             dtype=np.uint8),
            h=aligned_empty((capacity, width), dtype),
            gate=np.empty((capacity, n_hidden), dtype),
            mask=np.empty((capacity, n_hidden), dtype),
            drift=np.empty((capacity, n_hidden) if book and batches else 1, dtype),
            delta_1=aligned_zeros((capacity, width), dtype),
            delta_2=np.empty((capacity, n_outputs), dtype),
            active_values=np.empty((capacity, n_hidden), dtype),
            active_units=np.empty((capacity, n_hidden), np.int32),
            active_begin=np.arange(capacity, dtype=np.int64) * n_hidden,
            active_end=np.empty(capacity, np.int64),
            positions=np.arange(capacity, dtype=np.int64),
            example_error=np.empty(capacity, np.float64),
            example_hit=np.empty(capacity, np.float64),
            grad_1_2=np.empty((n_hidden, n_outputs), dtype),
            half_grads=np.empty((BATCH_HALVES * n_hidden, n_outputs), dtype),
            transposed=aligned_empty((n_parts * n_outputs, n_hidden), dtype),
            output_units=np.arange(n_outputs, dtype=np.int32),
            run_sums=aligned_empty((INPUT_RUNS * capacity if by_columns else 1, width), dtype),
            sums_0_1=aligned_empty((n_inputs if literal and book and batches else 1, width),
                                   dtype),
            input_counts=np.empty((n_parts, n_inputs), np.int64),
            input_starts=np.empty((n_parts, n_inputs + 1), np.int64),
            input_fill=np.empty((n_parts, n_inputs), np.int64),
            input_entries=np.empty((entries, 2), dtype),
            unit_counts=np.empty((BATCH_HALVES, n_hidden), np.int64),
            unit_starts=np.empty((BATCH_HALVES, n_hidden + 1), np.int64),
            unit_fill=np.empty((BATCH_HALVES, n_hidden), np.int64),
            unit_entries=np.empty((capacity * n_hidden if by_columns else 1, 2), dtype),
            batch_data=np.empty(entries, dtype),
            **{("batch_columns16" if columns is not None and columns.dtype == np.uint16
                else "batch_columns32"):
               np.empty(entries, columns.dtype if columns is not None else np.int32)},
            batch_indptr=np.empty(capacity + 1, np.int64),
            packed=np.empty((n_inputs, capacity) if dense and by_columns else 1, dtype),
            listed=np.empty((n_parts, n_inputs) if dense else 1, np.int32),
            inputs=np.arange(n_inputs, dtype=np.int32),
            tally=np.empty((n_parts, n_inputs) if dense else 1, np.int32),
            steps=np.empty((tile_slots(n_parts, capacity), n_inputs) if dense and by_columns
                           else 1, np.int32),
            step_counts=np.empty((INPUT_RUNS, tile_slots(n_parts, capacity)), np.intp),
            examples=np.empty((n_parts, capacity) if dense and by_columns else 1, np.int32),
            row_data=np.empty(n_inputs + 1 if (dense or thinned) and not batches else 1, dtype),
            row_columns=np.empty(n_inputs + 1 if (dense or thinned) and not batches else 1,
                                 np.int32),
            row_columns16=np.empty(n_inputs + 1 if thinned and not batches else 1, np.uint16),
            scaled_row=np.empty(n_inputs + 1 if lazy else 1, dtype),
            batch_ends=np.empty(capacity if thinned and batches else 1, np.int64),
            input_mask=np.empty((capacity, n_inputs) if thinned and dense and batches else 1,
                                dtype),
            step_0_1=aligned_empty((n_inputs, width) if stepped and not lazy else 1, dtype),
            step_b1=np.empty(width if stepped else 1, dtype),
            step_1_2=np.empty((n_hidden, n_outputs) if stepped else 1, dtype),
            step_b2=np.empty(n_outputs if stepped else 1, dtype),
            norms=np.empty(width + n_outputs, np.float64),
            factors=np.empty(width + n_outputs, dtype),
        )

    @property
    def alpha(self):
        """The learning rate of the next epoch."""
        return self.fit64.alpha if self.wide else self.fit32.alpha

    @alpha.setter
    def alpha(self, double value):
        if not isfinite(value):
            raise ValueError(f"alpha must be finite, got {value}")
        if self.wide:
            self.fit64.alpha = value
        else:
            self.fit32.alpha = <float> value

    def train_epoch(self, order, phases=None, waits=None):
        """Train one epoch in place, the examples in order (int64 indices); returns (summed
        loss, n_correct, n_seen, finite), each example counting for its sample weight (the
        sums are of weights, and floats).

        finite is False when the loss or any parameter stopped being finite (divergence).
        Book mode drops a last partial batch (n_seen counts those trained). In a timing build
        (TIMING), phases (len(PHASES) seconds) accumulates the time of each phase of a
        mini-batch epoch as thread 0 sees it, and waits (n_threads seconds) each thread's time
        spent at the barriers between a batch's steps, for bench/phases.py.
        """
        cdef int64_t[::1] examples = np.ascontiguousarray(order, dtype=np.int64)
        cdef Py_ssize_t t, n = self.data.n, n_threads
        cdef double error = 0, n_correct = 0, n_seen = 0
        cdef double[::1] phase_seconds, wait_seconds
        self.data.check_own()
        for t in range(examples.shape[0]):
            if examples[t] < 0 or examples[t] >= n:
                raise ValueError(f"order[{t}] = {examples[t]} is outside 0..{n - 1}")
        n_threads = self.fit64.n_threads if self.wide else self.fit32.n_threads
        if (phases is not None or waits is not None) and not TIMED:
            raise ValueError("phases and waits need a timing build of the kernels "
                             "(GROKREG_TIMING=1 pip install ..., see setup.py)")
        if phases is not None:
            phase_seconds = phases
            if phase_seconds.shape[0] != len(PHASES):
                raise ValueError(f"phases must have {len(PHASES)} entries, one per phase in "
                                 f"PHASES")
        if waits is not None:
            wait_seconds = waits
            if wait_seconds.shape[0] != n_threads:
                raise ValueError(f"waits must have n_threads = {n_threads} entries, got "
                                 f"{wait_seconds.shape[0]}")
        rules = self.fit64.rules if self.wide else self.fit32.rules
        generator = (self.bit_generator if rules.dropout.active else
                     self.input_generator if rules.input_dropout.active else None)
        lock = generator.lock if generator is not None else nullcontext()
        with lock:
            if self.wide:
                error = self._run64(examples, phases, waits)
                n_correct, n_seen = self.fit64.n_correct, self.fit64.n_seen
                self.active_units = self.fit64.n_active
            else:
                error = self._run32(examples, phases, waits)
                n_correct, n_seen = self.fit32.n_correct, self.fit32.n_seen
                self.active_units = self.fit32.n_active
        finite = isfinite(error) and all(np.isfinite(p).all() for p in self.parameters)
        return error, n_correct, n_seen, bool(finite)

    def _run32(self, int64_t[::1] examples, phases, waits):
        cdef Fit32 *fit = &self.fit32
        cdef double error
        cdef double[::1] seconds
        fit.order = &examples[0] if examples.shape[0] else NULL
        fit.n_order = examples.shape[0]
        fit.phases = fit.waits = NULL
        if phases is not None:
            seconds = phases
            fit.phases = &seconds[0]
        if waits is not None:
            seconds = waits
            fit.waits = &seconds[0]
        with nogil:
            error = train_epoch_32(fit)
        fit.phases = fit.waits = NULL
        return error

    def _run64(self, int64_t[::1] examples, phases, waits):
        cdef Fit64 *fit = &self.fit64
        cdef double error
        cdef double[::1] seconds
        fit.order = &examples[0] if examples.shape[0] else NULL
        fit.n_order = examples.shape[0]
        fit.phases = fit.waits = NULL
        if phases is not None:
            seconds = phases
            fit.phases = &seconds[0]
        if waits is not None:
            seconds = waits
            fit.waits = &seconds[0]
        with nogil:
            error = train_epoch_64(fit)
        fit.phases = fit.waits = NULL
        return error



def evaluate(Dataset data not None, weights_0_1, bias_1, weights_1_2, bias_2,
             int loss=SQUARED_ERROR, predictions=None, outputs=None, bint literal=False,
             int n_threads=1):
    """Forward pass without dropout over data's examples.

    Returns (summed loss, n_correct) against data's labels (both 0 without labels), each
    example counting for its sample weight (floats); writes each example's predicted class
    into predictions (int64) and its output layer into outputs when given. literal: the book's ReLU, nothing skipped (book mode after a
    divergence, over literal rows). n_threads share out the examples; the losses are added
    up in example order, so the result does not depend on it.
    """
    cdef Net32 net32
    cdef Net64 net64
    cdef Py_ssize_t i, n = data.n
    cdef double error = 0, n_correct = 0
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    data.check_own()
    dtype = _parameters(weights_0_1, bias_1, weights_1_2, bias_2, loss)
    if dtype != data.dtype:
        raise TypeError(f"the network is {dtype}, the data {data.dtype}")
    n_inputs, width = weights_0_1.shape
    n_hidden, n_outputs = weights_1_2.shape
    if data.n_inputs != n_inputs:
        raise ValueError(f"the data have {data.n_inputs} inputs, the network {n_inputs}")
    if data.n_classes > n_outputs:
        raise ValueError(f"labels go up to {data.n_classes - 1}, outside the network's "
                         f"{n_outputs} outputs")
    if predictions is not None and (predictions.dtype != np.int64 or predictions.shape != (n,)
                                    or not predictions.flags.c_contiguous):
        raise ValueError(f"predictions must be a C-contiguous int64 array of {n} entries")
    if outputs is not None and (outputs.dtype != dtype or outputs.shape != (n, n_outputs)
                                or not outputs.flags.c_contiguous):
        raise ValueError(f"outputs must be a C-contiguous {dtype} array of shape "
                         f"({n}, {n_outputs})")
    has_labels = data.labels is not None
    # per thread: a block's sums and one example's rest; per example: its loss and hit
    scratch = dict(
        h=aligned_empty((n_threads * EVALUATION_BLOCK, width), dtype),
        gate=np.empty((n_threads, n_hidden), dtype), out=np.empty((n_threads, n_outputs), dtype),
        active_values=np.empty((n_threads, n_hidden), dtype),
        active_units=np.empty((n_threads, n_hidden), np.int32),
        packed=np.empty((n_threads, n_inputs * EVALUATION_BLOCK) if data.layout == "dense"
                        else 1, dtype),
        inputs=np.arange(n_inputs, dtype=np.int32),
        tally=np.empty((n_threads, n_inputs), np.int32),
        steps=np.empty((n_threads, tile_slots(1, EVALUATION_BLOCK) * n_inputs)
                       if data.layout == "dense" else 1, np.int32),
        step_counts=np.empty((n_threads, tile_slots(1, EVALUATION_BLOCK)), np.intp),
        examples=np.empty((n_threads, EVALUATION_BLOCK), np.int64),
        example_error=np.zeros(n if has_labels else 1, np.float64),
        example_hit=np.zeros(n if has_labels else 1, np.float64))
    if n == 0:
        return 0.0, 0.0
    if dtype == np.float64:
        bind_net_64(&net64, weights_0_1, bias_1, weights_1_2, bias_2)
        evaluate_with_64(&net64, &data.rows64, loss, literal, n_threads, scratch, has_labels,
                         predictions, outputs)
    else:
        bind_net_32(&net32, weights_0_1, bias_1, weights_1_2, bias_2)
        evaluate_with_32(&net32, &data.rows32, loss, literal, n_threads, scratch, has_labels,
                         predictions, outputs)
    cdef double[::1] example_error = scratch["example_error"]
    cdef double[::1] example_hit = scratch["example_hit"]
    cdef double[::1] weights
    if has_labels and data.sample_weight is not None:
        weights = data.sample_weight
        for i in range(n):
            error += example_error[i] * weights[i]
            n_correct += example_hit[i] * weights[i]
        return error, n_correct
    if has_labels:
        for i in range(n):
            error += example_error[i]
            n_correct += example_hit[i]
    return error, n_correct
