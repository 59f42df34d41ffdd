# The dense layout, for grokreg/_kernels.pyx (included there): data sets whose inputs are mostly
# non-zero, kept as the caller's rows (floating point, or uint8 pixels read through their table)
# and computed in register tiles (_tiles.h), as a matrix product is.
#
# A mini-batch is packed first, transposed: packed[t * ld + b] is input listed[t] of the batch's
# example b, for the inputs that are non-zero in at least one of its examples (the others add
# exact zeros, as in the sparse layout they are never stored). Both layers' products then read
# it: the forward sums of a tile of examples walk the listed inputs, loading each weights row
# once for the tile; the first layer's update of a tile of inputs walks the batch.

cdef extern from "_tiles.h":
    # a tile of accumulators: up to TILE_ROWS rows (examples, or inputs) of TILE_VECTORS vectors
    const Py_ssize_t TILE_ROWS "GROKREG_TILE_ROWS"
    const Py_ssize_t TILE_VECTORS "GROKREG_TILE_VECTORS"
    void tile_sums_f32 "grokreg_tile_sums_f32"(
        int mr, int nv, const float *a, Py_ssize_t a_r, Py_ssize_t a_t, const float *w,
        Py_ssize_t ldw, const int32_t *rows, Py_ssize_t count, const float *start, float *out,
        Py_ssize_t ldo) noexcept nogil
    void tile_sums_f64 "grokreg_tile_sums_f64"(
        int mr, int nv, const double *a, Py_ssize_t a_r, Py_ssize_t a_t, const double *w,
        Py_ssize_t ldw, const int32_t *rows, Py_ssize_t count, const double *start,
        double *out, Py_ssize_t ldo) noexcept nogil
    void tile_update_f32 "grokreg_tile_update_f32"(
        int mr, int nv, const float *a, Py_ssize_t a_r, Py_ssize_t a_t, const float *d,
        Py_ssize_t ldd, Py_ssize_t count, float alpha, float *w, Py_ssize_t ldw,
        const int32_t *rows) noexcept nogil
    void tile_update_f64 "grokreg_tile_update_f64"(
        int mr, int nv, const double *a, Py_ssize_t a_r, Py_ssize_t a_t, const double *d,
        Py_ssize_t ldd, Py_ssize_t count, double alpha, double *w, Py_ssize_t ldw,
        const int32_t *rows) noexcept nogil


cdef inline Py_ssize_t tile_vectors(Py_ssize_t remaining, Py_ssize_t lanes) noexcept nogil:
    """The vectors of the next tile across remaining columns (a multiple of lanes)."""
    return min(TILE_VECTORS, remaining // lanes)


cdef void dense_sums(const floating *packed, Py_ssize_t ld, const int32_t *listed,
                     Py_ssize_t count, Py_ssize_t first, Py_ssize_t last,
                     const floating *weights, Py_ssize_t width, const floating *start,
                     floating *out, Py_ssize_t ldo) noexcept nogil:
    """out[b] = start + sum over t < count of packed[t * ld + b] * weights[listed[t]] for
    examples b in first..last - 1 (start 0 if NULL; out's rows ldo apart), each sum in the
    order of t: sum_rows of each example's listed inputs, a tile of examples at a time.

    width (weights' columns) is whole vectors. A panel of columns at a time (its weights stay
    in L2 while every tile of examples reads them: 784 x 800 float32 weights do not).
    """
    cdef Py_ssize_t lanes = VECTOR_BYTES // sizeof(floating), j = 0, b, mr, nv
    while j < width:
        nv = tile_vectors(width - j, lanes)
        b = first
        while b < last:
            mr = min(TILE_ROWS, last - b)
            if floating is float:
                tile_sums_f32(mr, nv, packed + b, 1, ld, weights + j, width, listed, count,
                              start + j if start != NULL else NULL, out + b * ldo + j, ldo)
            else:
                tile_sums_f64(mr, nv, packed + b, 1, ld, weights + j, width, listed, count,
                              start + j if start != NULL else NULL, out + b * ldo + j, ldo)
            b += mr
        j += nv * lanes


cdef void dense_update(const floating *packed, Py_ssize_t ld, const int32_t *listed,
                       Py_ssize_t first, Py_ssize_t last, Py_ssize_t size,
                       const floating *delta, Py_ssize_t width, floating alpha,
                       floating *weights) noexcept nogil:
    """weights[listed[t]] += alpha * (sum over b < size of packed[t * ld + b] * delta[b]) for
    t in first..last - 1 (delta's rows width apart), each sum in example order: the rows
    update_inputs updates from the same batch, a tile of inputs at a time."""
    cdef Py_ssize_t lanes = VECTOR_BYTES // sizeof(floating), j = 0, t, mr, nv
    while j < width:
        nv = tile_vectors(width - j, lanes)
        t = first
        while t < last:
            mr = min(TILE_ROWS, last - t)
            if floating is float:
                tile_update_f32(mr, nv, packed + t * ld, ld, 1, delta + j, width, size, alpha,
                                weights + j, width, listed + t)
            else:
                tile_update_f64(mr, nv, packed + t * ld, ld, 1, delta + j, width, size, alpha,
                                weights + j, width, listed + t)
            t += mr
        j += nv * lanes


cdef inline Py_ssize_t count_below(const int32_t *listed, Py_ssize_t count,
                                   Py_ssize_t k) noexcept nogil:
    """How many of the ascending listed[:count] are below k: where input k would be listed
    (a count the compiler vectorises, as first_at_least)."""
    cdef Py_ssize_t t, below = 0
    for t in range(count):
        below += listed[t] < k
    return below


cdef void count_dense_inputs(const floating *values, const uint8_t *pixels,
                             const floating *table, bint zero_pixel_only,
                             Py_ssize_t n_inputs, const int64_t *batch, Py_ssize_t first,
                             Py_ssize_t last, int64_t *counts) noexcept nogil:
    """counts[k] = how many of the examples batch[first:last] have input k non-zero (the rows
    as floating point values, or as pixels through table: zero_pixel_only when only pixel 0
    stands for 0)."""
    cdef Py_ssize_t b, k
    cdef const floating *row
    cdef const uint8_t *pixel_row
    for k in range(n_inputs):
        counts[k] = 0
    for b in range(first, last):
        if values != NULL:
            row = values + batch[b] * n_inputs
            for k in range(n_inputs):  # a comparison, which vectorises
                counts[k] += row[k] != 0
        elif zero_pixel_only:
            pixel_row = pixels + batch[b] * n_inputs
            for k in range(n_inputs):
                counts[k] += pixel_row[k] != 0
        else:
            pixel_row = pixels + batch[b] * n_inputs
            for k in range(n_inputs):
                counts[k] += table[pixel_row[k]] != 0


cdef Py_ssize_t list_inputs(const int64_t *column_start, Py_ssize_t low, Py_ssize_t high,
                            int32_t *listed) noexcept nogil:
    """The inputs low..high - 1 with at least one entry in the batch, in order; how many."""
    cdef Py_ssize_t k, count = 0
    for k in range(low, high):
        listed[count] = <int32_t> k
        count += column_start[k + 1] > column_start[k]
    return count


cdef void pack_inputs(const floating *values, const uint8_t *pixels, const floating *table,
                      Py_ssize_t n_inputs, const int64_t *batch, Py_ssize_t first,
                      Py_ssize_t last, const int32_t *listed, Py_ssize_t count,
                      floating *packed, Py_ssize_t ld) noexcept nogil:
    """packed[t * ld + b] = input listed[t] of example batch[b], for t < count and b in
    first..last - 1: the batch's examples transposed (and pixels looked up), eight examples
    at a time so that each write fills part of a cache line."""
    cdef Py_ssize_t b, block, t, k, end
    cdef const floating *rows[8]
    cdef const uint8_t *pixel_rows[8]
    cdef floating *column
    block = first
    while block < last:
        end = min(block + 8, last)
        for b in range(block, end):
            if values != NULL:
                rows[b - block] = values + batch[b] * n_inputs
            else:
                pixel_rows[b - block] = pixels + batch[b] * n_inputs
        for t in range(count):
            k = listed[t]
            column = packed + t * ld
            if values != NULL:
                for b in range(block, end):
                    column[b] = rows[b - block][k]
            else:
                for b in range(block, end):
                    column[b] = table[pixel_rows[b - block][k]]
        block = end
