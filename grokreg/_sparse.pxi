# Data sets as compressed sparse rows, for grokreg/_kernels.pyx (included there): the kernels
# read only an example's non-zero inputs. (Dataset counts each row's entries first, to choose
# the layout; the conversions take those counts.)

cdef int64_t[::1] row_starts(const int64_t[::1] counts):
    """indptr from per-row counts: indptr[i] is where row i starts, indptr[n] the total."""
    cdef Py_ssize_t i, n = counts.shape[0]
    cdef int64_t[::1] indptr = np.empty(n + 1, dtype=np.int64)
    indptr[0] = 0
    for i in range(n):
        indptr[i + 1] = indptr[i] + counts[i]
    return indptr


def column_dtype(Py_ssize_t n_inputs):
    """The sparse rows' column type for n_inputs: uint16 where every column fits, else int32."""
    if n_inputs > 2**31 - 1:
        raise ValueError("x has too many columns for 32-bit indices")
    return np.dtype(np.uint16 if n_inputs <= 65536 else np.int32)


cdef inline void place_row(floating *data, index_int *indices, const floating *row_values,
                           const int32_t *row_columns, Py_ssize_t count) noexcept nogil:
    """Copy a row gathered in scratch space to its place in the sparse rows."""
    cdef Py_ssize_t t
    memcpy(data, row_values, count * sizeof(floating))
    for t in range(count):
        indices[t] = <index_int> row_columns[t]


cdef inline Py_ssize_t compact_row(const floating *row, Py_ssize_t n, bint keep_zeros,
                                   floating *values, int32_t *columns) noexcept nogil:
    """A row's entries to keep (its non-zeros, or all of them) listed with their columns in
    scratch space of n entries; returns how many."""
    cdef Py_ssize_t k
    if not keep_zeros:
        return compact(row, n, values, columns)
    for k in range(n):
        values[k] = row[k]
        columns[k] = <int32_t> k
    return n


cdef inline Py_ssize_t compact_pixels(const uint8_t *row, Py_ssize_t n,
                                      const floating *table, const uint8_t *kept,
                                      bint kept_if_nonzero, floating *values,
                                      int32_t *columns) noexcept nogil:
    """compact_row of the pixels table[row], keeping those that kept marks."""
    cdef Py_ssize_t k, t, count = 0
    if kept_if_nonzero:  # the usual table: the columns of the non-zero bytes, then their values
        count = nonzero_bytes(row, n, columns)
        for t in range(count):
            values[t] = table[row[columns[t]]]
        return count
    # every entry written at the next free place and only a kept one advancing it (no branch
    # on the values, which mispredicts on every stroke's edge)
    for k in range(n):
        values[count] = table[row[k]]
        columns[count] = <int32_t> k
        count = count + kept[row[k]]
    return count


cdef Py_ssize_t place_rows(const floating[:, ::1] x, bint keep_zeros,
                           const int64_t[::1] indptr, floating[::1] data,
                           index_int[::1] indices, floating[:, ::1] scratch_values,
                           int32_t[:, ::1] scratch_columns, int n_threads) noexcept nogil:
    """Fill (data, indices) with the rows of x: each row is compacted into its thread's scratch
    row first (the compaction writes past the row's end), then copied to its place. A row
    whose entries are not as many as indptr leaves them is not placed (counts from elsewhere
    never write beyond a row): returns how many such rows."""
    cdef Py_ssize_t i, count, thread = 0  # set by each thread; initialised for the compiler
    cdef Py_ssize_t mismatches = 0
    with parallel(num_threads=n_threads):
        thread = threadid()
        for i in prange(x.shape[0], schedule="static"):
            count = compact_row(&x[i, 0], x.shape[1], keep_zeros, &scratch_values[thread, 0],
                                &scratch_columns[thread, 0])
            if count != indptr[i + 1] - indptr[i]:
                mismatches += 1
            else:
                place_row(&data[0] + indptr[i], &indices[0] + indptr[i],
                          &scratch_values[thread, 0], &scratch_columns[thread, 0], count)
    return mismatches


cdef Py_ssize_t place_pixels(const uint8_t[:, ::1] x, const floating[::1] table,
                             const uint8_t *kept, bint kept_if_nonzero,
                             const int64_t[::1] indptr, floating[::1] data,
                             index_int[::1] indices, floating[:, ::1] scratch_values,
                             int32_t[:, ::1] scratch_columns, int n_threads) noexcept nogil:
    """place_rows for the pixels table[x], keeping those that kept marks."""
    cdef Py_ssize_t i, count, thread = 0
    cdef Py_ssize_t mismatches = 0
    with parallel(num_threads=n_threads):
        thread = threadid()
        for i in prange(x.shape[0], schedule="static"):
            count = compact_pixels(&x[i, 0], x.shape[1], &table[0], kept, kept_if_nonzero,
                                   &scratch_values[thread, 0], &scratch_columns[thread, 0])
            if count != indptr[i + 1] - indptr[i]:
                mismatches += 1
            else:
                place_row(&data[0] + indptr[i], &indices[0] + indptr[i],
                          &scratch_values[thread, 0], &scratch_columns[thread, 0], count)
    return mismatches


cdef extern from *:
    """
    /* The smallest and largest of a row, its sum of squares, and whether it holds a NaN, in
       vectors: GCC keeps a select on a comparison scalar where NaN could order differently
       (a NaN is found by its own count here, and the range is then NaN). */
    #include <stddef.h>
    #if defined(__GNUC__) || defined(__clang__)
    #define GROKREG_RANGE(T, I, SUFFIX)                                                       \
    typedef T grokreg_rv_##SUFFIX __attribute__((vector_size(32), aligned(sizeof(T)), may_alias)); \
    typedef I grokreg_ri_##SUFFIX __attribute__((vector_size(32)));                          \
    static int grokreg_range_##SUFFIX(const T *x, ptrdiff_t n, T *smallest, T *largest,    \
                                      double *squares) {                                   \
        const ptrdiff_t lanes = 32 / sizeof(T);                                             \
        ptrdiff_t k = 0;                                                                     \
        T lo = x[0], hi = x[0];                                                              \
        double sum = 0;                                                                      \
        int nan = 0;                                                                         \
        if (n >= lanes) {                                                                    \
            grokreg_rv_##SUFFIX vlo = *(const grokreg_rv_##SUFFIX *) x, vhi = vlo;          \
            grokreg_rv_##SUFFIX vsum = vlo * vlo;                                            \
            grokreg_ri_##SUFFIX vnan = vlo != vlo;                                          \
            for (k = lanes; k + lanes <= n; k += lanes) {                                    \
                grokreg_rv_##SUFFIX v = *(const grokreg_rv_##SUFFIX *) (x + k);             \
                vsum += v * v;                                                               \
                grokreg_ri_##SUFFIX below = v < vlo, above = v > vhi;                       \
                vlo = (grokreg_rv_##SUFFIX) (((grokreg_ri_##SUFFIX) v & below)               \
                                              | ((grokreg_ri_##SUFFIX) vlo & ~below));      \
                vhi = (grokreg_rv_##SUFFIX) (((grokreg_ri_##SUFFIX) v & above)               \
                                              | ((grokreg_ri_##SUFFIX) vhi & ~above));      \
                vnan |= v != v;                                                              \
            }                                                                                \
            lo = vlo[0]; hi = vhi[0];                                                        \
            for (ptrdiff_t l = 0; l < lanes; l++) {                                         \
                lo = vlo[l] < lo ? vlo[l] : lo;                                              \
                hi = vhi[l] > hi ? vhi[l] : hi;                                              \
                sum += vsum[l];                                                              \
                nan |= vnan[l] != 0;                                                         \
            }                                                                                \
        }                                                                                    \
        for (; k < n; k++) {                                                                 \
            lo = x[k] < lo ? x[k] : lo;                                                      \
            hi = x[k] > hi ? x[k] : hi;                                                      \
            sum += (double) x[k] * x[k];                                                     \
            nan |= x[k] != x[k];                                                             \
        }                                                                                    \
        *smallest = lo; *largest = hi; *squares = sum;                                       \
        return nan;                                                                          \
    }
    GROKREG_RANGE(float, int, f32)
    GROKREG_RANGE(double, long long, f64)
    #else
    #define GROKREG_RANGE(T, SUFFIX)                                                         \
    static int grokreg_range_##SUFFIX(const T *x, ptrdiff_t n, T *smallest, T *largest,    \
                                      double *squares) {                                   \
        T lo = x[0], hi = x[0];                                                              \
        double sum = 0;                                                                      \
        int nan = 0;                                                                         \
        for (ptrdiff_t k = 0; k < n; k++) {                                                  \
            lo = x[k] < lo ? x[k] : lo;                                                      \
            hi = x[k] > hi ? x[k] : hi;                                                      \
            sum += (double) x[k] * x[k];                                                     \
            nan |= x[k] != x[k];                                                             \
        }                                                                                    \
        *smallest = lo; *largest = hi; *squares = sum;                                       \
        return nan;                                                                          \
    }
    GROKREG_RANGE(float, f32)
    GROKREG_RANGE(double, f64)
    #endif
    """
    bint range_f32 "grokreg_range_f32"(const float *x, Py_ssize_t n, float *smallest,
                                       float *largest, double *squares) noexcept nogil
    bint range_f64 "grokreg_range_f64"(const double *x, Py_ssize_t n, double *smallest,
                                       double *largest, double *squares) noexcept nogil


def row_counts(const floating[:, ::1] x not None, bint keep_zeros=False, int n_threads=1,
               double[:, ::1] ranges=None):
    """The number of entries each row of x keeps as sparse rows: its non-zeros (or all). With
    ranges (n, 3), each row's smallest and largest value (NaN where the row holds a NaN) and
    its sum of squares go there too, in the same pass: a data set's one read for counting
    and checking."""
    cdef Py_ssize_t n = x.shape[0], n_inputs = x.shape[1], i, k
    cdef int64_t row_count
    cdef floating smallest, largest
    cdef double squares
    cdef bint nans
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    if ranges is not None and (ranges.shape[0] != n or ranges.shape[1] != 3):
        raise ValueError(f"ranges must have shape ({n}, 3)")
    cdef bint ranged = ranges is not None
    cdef int64_t[::1] counts = np.empty(n, dtype=np.int64)
    with nogil:
        for i in prange(n, num_threads=n_threads, schedule="static"):
            row_count = 0
            for k in range(n_inputs):  # a comparison, which vectorises
                row_count = row_count + ((x[i, k] != 0) | keep_zeros)
            counts[i] = row_count
            if ranged and n_inputs > 0:
                # assigned here so that prange makes them private to each thread (written
                # only through pointers, they would be shared)
                smallest = 0
                largest = 0
                squares = 0
                if floating is float:
                    nans = range_f32(&x[i, 0], n_inputs, &smallest, &largest, &squares)
                else:
                    nans = range_f64(&x[i, 0], n_inputs, &smallest, &largest, &squares)
                ranges[i, 0] = smallest if nans == 0 else NAN
                ranges[i, 1] = largest if nans == 0 else NAN
                ranges[i, 2] = squares
    return np.asarray(counts)


def pixel_counts(const uint8_t[:, ::1] x not None, const floating[::1] values not None,
                 bint keep_zeros=False, int n_threads=1, double[:, ::1] ranges=None):
    """row_counts of the images values[x]; with ranges (n, 2), each row's smallest and
    largest pixel (not value) go there too."""
    cdef Py_ssize_t n = x.shape[0], n_inputs = x.shape[1], i, k
    cdef int64_t row_count
    cdef uint8_t kept[256]
    cdef uint8_t pixel, smallest, largest
    if values.shape[0] != 256:
        raise ValueError(f"values must have 256 entries, one per pixel value, got {values.shape[0]}")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    if ranges is not None and (ranges.shape[0] != n or ranges.shape[1] != 2):
        raise ValueError(f"ranges must have shape ({n}, 2)")
    cdef bint ranged = ranges is not None
    cdef bint kept_if_nonzero = kept_pixels(&values[0], keep_zeros, kept)
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
            if ranged and n_inputs > 0:
                smallest = largest = x[i, 0]
                for k in range(n_inputs):
                    pixel = x[i, k]
                    smallest = pixel if pixel < smallest else smallest
                    largest = pixel if pixel > largest else largest
                ranges[i, 0] = smallest
                ranges[i, 1] = largest
    return np.asarray(counts)


cdef bint kept_pixels(const floating *values, bint keep_zeros, uint8_t *kept) noexcept nogil:
    """kept[p]: whether pixel p is an entry of the sparse rows (values[p] != 0, or all with
    keep_zeros); returns whether those are exactly the non-zero pixels (the usual table)."""
    cdef bint kept_if_nonzero = True
    cdef int p
    for p in range(256):
        kept[p] = values[p] != 0 or keep_zeros
        kept_if_nonzero = kept_if_nonzero and kept[p] == (p != 0)
    return kept_if_nonzero


def sparse_rows(const floating[:, ::1] x not None, bint keep_zeros=False, int n_threads=1,
                counts=None, storage=None):
    """x in compressed sparse row form: (data, indices, indptr), as scipy.sparse.csr_matrix.

    Row i's non-zero values are data[indptr[i]:indptr[i + 1]], in its columns
    indices[indptr[i]:indptr[i + 1]] (increasing; of column_dtype(x.shape[1])). keep_zeros
    lists every entry, zeros too: the kernels then compute as densely as NumPy (where 0 * inf
    is NaN). n_threads share out the rows (the result does not depend on it). counts, if
    given, is row_counts(x, keep_zeros) (a ValueError if not: rows are checked as placed).
    storage, if given, is a (data, indices) pair of 1-D arrays of those types with room for
    every entry: the rows are written at their start, and views of them returned.
    """
    cdef Py_ssize_t n = x.shape[0], n_inputs = x.shape[1]
    cdef uint16_t[::1] narrow  # indices, as the type of its columns
    cdef int32_t[::1] wide
    cdef Py_ssize_t mismatches
    columns = column_dtype(n_inputs)
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    counts = (row_counts(x, keep_zeros, n_threads) if counts is None
              else given_counts(counts, n, n_inputs))
    dtype = np.float32 if floating is float else np.float64
    cdef int64_t[::1] indptr = row_starts(counts)
    cdef floating[::1] data
    data, indices = rows_storage(storage, indptr[n], dtype, columns)
    cdef floating[:, ::1] scratch_values = np.empty((n_threads, n_inputs + 1), dtype=dtype)
    cdef int32_t[:, ::1] scratch_columns = np.empty((n_threads, n_inputs + 1), dtype=np.int32)
    if columns == np.uint16:
        narrow = indices
        mismatches = place_rows(x, keep_zeros, indptr, data, narrow, scratch_values,
                                scratch_columns, n_threads)
    else:
        wide = indices
        mismatches = place_rows(x, keep_zeros, indptr, data, wide, scratch_values,
                                scratch_columns, n_threads)
    return placed(data, indices, indptr, mismatches)


def sparse_pixels(const uint8_t[:, ::1] x not None, const floating[::1] values not None,
                  bint keep_zeros=False, int n_threads=1, counts=None, storage=None):
    """sparse_rows of the images values[x], without their dense floating-point copy.

    x holds uint8 pixels; values (256 entries) is what each pixel value stands for, e.g.
    np.divide(np.arange(256, dtype=np.uint8), 255, dtype=...) for the book's x / 255, so that
    the rows hold exactly what sparse_rows(values[x]) would (a quarter of the memory traffic).
    counts, if given, is pixel_counts(x, values, keep_zeros); storage as for sparse_rows.
    """
    cdef Py_ssize_t n = x.shape[0], n_inputs = x.shape[1]
    cdef uint16_t[::1] narrow  # indices, as the type of its columns
    cdef int32_t[::1] wide
    cdef Py_ssize_t mismatches
    counts = (pixel_counts(x, values, keep_zeros, n_threads) if counts is None
              else given_counts(counts, n, n_inputs))
    columns = column_dtype(n_inputs)
    cdef uint8_t kept[256]
    cdef bint kept_if_nonzero = kept_pixels(&values[0], keep_zeros, kept)
    dtype = np.float32 if floating is float else np.float64
    cdef int64_t[::1] indptr = row_starts(counts)
    cdef floating[::1] data
    data, indices = rows_storage(storage, indptr[n], dtype, columns)
    cdef floating[:, ::1] scratch_values = np.empty((n_threads, n_inputs + 1), dtype=dtype)
    cdef int32_t[:, ::1] scratch_columns = np.empty((n_threads, n_inputs + 1), dtype=np.int32)
    if columns == np.uint16:
        narrow = indices
        mismatches = place_pixels(x, values, kept, kept_if_nonzero, indptr, data, narrow,
                                  scratch_values, scratch_columns, n_threads)
    else:
        wide = indices
        mismatches = place_pixels(x, values, kept, kept_if_nonzero, indptr, data, wide,
                                  scratch_values, scratch_columns, n_threads)
    return placed(data, indices, indptr, mismatches)


def given_counts(counts, Py_ssize_t n, Py_ssize_t n_inputs):
    """counts given to sparse_rows or sparse_pixels, checked: n int64 numbers from 0 to
    n_inputs (whether they are each row's entries, placing the rows tells)."""
    counts = np.asarray(counts)
    if counts.dtype != np.int64 or counts.shape != (n,):
        raise ValueError(f"counts must be {n} int64 numbers, one per row, got "
                         f"{counts.dtype} of shape {counts.shape}")
    # (rows after a negative count could start before data)
    if n and (counts.min() < 0 or counts.max() > n_inputs):
        raise ValueError(f"counts must be from 0 to {n_inputs}, the rows' length")
    return counts


def rows_storage(storage, int64_t total, dtype, columns):
    """(data, indices) to place total entries in: storage, checked, or new arrays (of at
    least one entry, so that data[0] exists to point at)."""
    if storage is None:
        return np.empty(max(total, 1), dtype=dtype), np.empty(max(total, 1), dtype=columns)
    data, indices = storage
    for name, array, kind in (("data", data, dtype), ("indices", indices, columns)):
        if (not isinstance(array, np.ndarray) or array.dtype != kind or array.ndim != 1
                or not array.flags.c_contiguous or not array.flags.writeable):
            raise ValueError(f"storage's {name} must be a writeable 1-D {np.dtype(kind)} array")
        if array.shape[0] < max(total, 1):
            raise ValueError(f"storage's {name} holds {array.shape[0]} entries, the rows "
                             f"{total}")
    return data, indices


cdef placed(floating[::1] data, indices, int64_t[::1] indptr, Py_ssize_t mismatches):
    """What sparse_rows returns, or a ValueError where rows were not placed."""
    if mismatches:
        raise ValueError(f"counts does not match the rows: {mismatches} of them have another "
                         f"number of entries")
    cdef int64_t total = indptr[indptr.shape[0] - 1]
    return np.asarray(data)[:total], indices[:total], np.asarray(indptr)
