# The dense layout, for grokreg/_kernels.pyx (included there): data sets whose inputs are mostly
# non-zero, kept as the caller's rows (floating point, or uint8 pixels read through their table)
# and computed in register tiles (_tiles.h), as a matrix product is.
#
# A mini-batch is packed first, transposed: packed[k * ld + b] is input k of the batch's example
# b, read once from memory, its inputs counted on the way. Both first-layer products then read
# it, in tiles that skip what is zero for the whole tile (exact zeros, which the sparse layout
# never stores): the forward sums of a tile of examples walk the inputs where one of them is
# non-zero, loading each weights row once for the tile; the update of a tile of inputs walks
# the examples where one of them is non-zero.

cdef extern from "_tiles.h":
    # a tile of accumulators: up to TILE_ROWS rows (examples, or inputs) of TILE_VECTORS vectors
    const Py_ssize_t TILE_ROWS "GROKREG_TILE_ROWS"
    const Py_ssize_t TILE_VECTORS "GROKREG_TILE_VECTORS"
    void tile_sums_f32 "grokreg_tile_sums_f32"(
        int mr, int nv, const float *a, Py_ssize_t a_r, Py_ssize_t a_t, const float *w,
        Py_ssize_t ldw, const int32_t *rows, const int32_t *steps, Py_ssize_t count,
        const float *start, float *out, Py_ssize_t ldo) noexcept nogil
    void tile_sums_f64 "grokreg_tile_sums_f64"(
        int mr, int nv, const double *a, Py_ssize_t a_r, Py_ssize_t a_t, const double *w,
        Py_ssize_t ldw, const int32_t *rows, const int32_t *steps, Py_ssize_t count,
        const double *start, double *out, Py_ssize_t ldo) noexcept nogil
    void tile_update_f32 "grokreg_tile_update_f32"(
        int mr, int nv, const float *const *inputs, const float *d, Py_ssize_t ldd,
        const int32_t *steps, Py_ssize_t count, float alpha, float *w, Py_ssize_t ldw,
        const int32_t *rows) noexcept nogil
    void tile_update_f64 "grokreg_tile_update_f64"(
        int mr, int nv, const double *const *inputs, const double *d, Py_ssize_t ldd,
        const int32_t *steps, Py_ssize_t count, double alpha, double *w, Py_ssize_t ldw,
        const int32_t *rows) noexcept nogil


    # a batch's rows side by side: packed[k * ld + b] = values[examples[b] * n_inputs + k]
    void pack_rows_f32 "grokreg_pack_rows_f32"(
        const float *values, const int64_t *examples, Py_ssize_t n, Py_ssize_t n_inputs,
        Py_ssize_t low, Py_ssize_t high, float *packed, Py_ssize_t ld) noexcept nogil
    void pack_rows_f64 "grokreg_pack_rows_f64"(
        const double *values, const int64_t *examples, Py_ssize_t n, Py_ssize_t n_inputs,
        Py_ssize_t low, Py_ssize_t high, double *packed, Py_ssize_t ld) noexcept nogil

    # a row's last 32 bytes of columns for ev vectors of examples, vectors over the examples
    void block_sums_f32 "grokreg_block_sums_f32"(
        int ev, const float *a, Py_ssize_t a_t, const float *w, Py_ssize_t ldw,
        const int32_t *rows, const int32_t *steps, Py_ssize_t count, const float *start,
        float *out, Py_ssize_t ldo) noexcept nogil
    void block_sums_f64 "grokreg_block_sums_f64"(
        int ev, const double *a, Py_ssize_t a_t, const double *w, Py_ssize_t ldw,
        const int32_t *rows, const int32_t *steps, Py_ssize_t count, const double *start,
        double *out, Py_ssize_t ldo) noexcept nogil
    const int BLOCK_VECTORS "GROKREG_BLOCK_MAX_VECTORS"

    # the same, one 32-byte block wide: a row's last columns past its whole 64-byte vectors
    void tile_sums_half_f32 "grokreg_tile_sums_half_f32"(
        int mr, int nv, const float *a, Py_ssize_t a_r, Py_ssize_t a_t, const float *w,
        Py_ssize_t ldw, const int32_t *rows, const int32_t *steps, Py_ssize_t count,
        const float *start, float *out, Py_ssize_t ldo) noexcept nogil
    void tile_sums_half_f64 "grokreg_tile_sums_half_f64"(
        int mr, int nv, const double *a, Py_ssize_t a_r, Py_ssize_t a_t, const double *w,
        Py_ssize_t ldw, const int32_t *rows, const int32_t *steps, Py_ssize_t count,
        const double *start, double *out, Py_ssize_t ldo) noexcept nogil
    void tile_update_half_f32 "grokreg_tile_update_half_f32"(
        int mr, int nv, const float *const *inputs, const float *d, Py_ssize_t ldd,
        const int32_t *steps, Py_ssize_t count, float alpha, float *w, Py_ssize_t ldw,
        const int32_t *rows) noexcept nogil
    void tile_update_half_f64 "grokreg_tile_update_half_f64"(
        int mr, int nv, const double *const *inputs, const double *d, Py_ssize_t ldd,
        const int32_t *steps, Py_ssize_t count, double alpha, double *w, Py_ssize_t ldw,
        const int32_t *rows) noexcept nogil


cdef inline Py_ssize_t tile_columns(Py_ssize_t remaining, Py_ssize_t lanes,
                                    Py_ssize_t *nv) noexcept nogil:
    """The next tile's columns across remaining ones (whole 32-byte blocks): up to
    TILE_VECTORS whole vectors (their number in nv), else one 32-byte block (nv = 0)."""
    nv[0] = min(TILE_VECTORS, remaining // lanes)
    return nv[0] * lanes if nv[0] > 0 else 32 // (VECTOR_BYTES // lanes)


cdef inline Py_ssize_t tile_slot(Py_ssize_t part, Py_ssize_t example) noexcept nogil:
    """The row of a tile's steps (pack_part) for the tile of a batch's part that starts at
    example: distinct for every tile of every part (parts ascend and never share an example)."""
    return part + example // TILE_ROWS


cdef inline Py_ssize_t tile_slots(Py_ssize_t n_parts, Py_ssize_t capacity) noexcept nogil:
    """How many tile_slot rows a batch of capacity examples in n_parts parts may use."""
    return n_parts + capacity // TILE_ROWS + 1


cdef inline Py_ssize_t count_below(const int32_t *ascending, Py_ssize_t count,
                                   Py_ssize_t k) noexcept nogil:
    """How many of ascending[:count] are below k: where k would go (a count the compiler
    vectorises, as first_at_least)."""
    cdef Py_ssize_t t, below = 0
    for t in range(count):
        below += ascending[t] < k
    return below


cdef void count_dense_inputs(const floating *values, const uint8_t *pixels,
                             const floating *table, bint zero_pixel_only, Py_ssize_t n_inputs,
                             const int64_t *batch, Py_ssize_t first, Py_ssize_t last,
                             const floating *mask, int32_t *tally,
                             int64_t *counts) noexcept nogil:
    """counts[k] = how many of the examples batch[first:last] have input k non-zero (the rows
    as floating point values, or pixels through table; times the batch's input dropout
    factors, mask[b * n_inputs + k], if not NULL), counted in vectors of int32 in tally
    (n_inputs of scratch). The batch's one read from memory: the rows stay in cache for
    pack_inputs. zero_pixel_only: only pixel 0 stands for 0 in table, so that the pixels
    themselves tell (compared in vectors; a lookup in table is one load per pixel)."""
    cdef Py_ssize_t b, k
    cdef const floating *row
    cdef const uint8_t *pixel_row
    cdef const floating *factors
    for k in range(n_inputs):
        tally[k] = 0
    for b in range(first, last):
        factors = mask + b * n_inputs if mask != NULL else NULL
        if values != NULL:
            row = values + batch[b] * n_inputs
            if factors != NULL:
                for k in range(n_inputs):
                    tally[k] += row[k] * factors[k] != 0
            else:
                for k in range(n_inputs):  # a comparison, which vectorises
                    tally[k] += row[k] != 0
        else:
            pixel_row = pixels + batch[b] * n_inputs
            if factors != NULL:
                for k in range(n_inputs):
                    tally[k] += table[pixel_row[k]] * factors[k] != 0
            elif zero_pixel_only:
                for k in range(n_inputs):
                    tally[k] += pixel_row[k] != 0
            else:
                for k in range(n_inputs):
                    tally[k] += table[pixel_row[k]] != 0
    for k in range(n_inputs):
        counts[k] = tally[k]


cdef void pack_inputs(const floating *values, const uint8_t *pixels, const floating *table,
                      bint zero_pixel_only, Py_ssize_t n_inputs, const int64_t *batch,
                      Py_ssize_t first,
                      Py_ssize_t last, const floating *mask, Py_ssize_t low, Py_ssize_t high,
                      floating *packed, Py_ssize_t ld, int32_t *tally, int32_t *steps,
                      Py_ssize_t stride, Py_ssize_t *step_counts,
                      Py_ssize_t part) noexcept nogil:
    """Inputs low..high - 1 of the examples batch[first:last] packed: packed[k * ld + b] =
    input k of example batch[b] (transposed; pixels looked up in table; times the input
    dropout factor mask[b * n_inputs + k], if not NULL); and for each tile of TILE_ROWS
    examples from first, the inputs where one of them is non-zero, in order, from
    steps[slot * stride] on, their number in step_counts[slot] (slot = tile_slot(part, the
    tile's first example); tally: n_inputs int32 of scratch). zero_pixel_only as for
    count_dense_inputs."""
    cdef Py_ssize_t b, k, r, mr, n, slot
    cdef const floating *rows[16]
    cdef const uint8_t *pixel_rows[16]
    cdef floating *column
    cdef int32_t *tile_steps
    if values != NULL:  # transposed in registers
        if floating is float:
            pack_rows_f32(values, batch + first, last - first, n_inputs, low, high,
                          packed + first, ld)
        else:
            pack_rows_f64(values, batch + first, last - first, n_inputs, low, high,
                          packed + first, ld)
    b = first
    while b < last:
        mr = min(TILE_ROWS, last - b)
        for r in range(mr):
            if values != NULL:
                rows[r] = values + batch[b + r] * n_inputs
            else:
                pixel_rows[r] = pixels + batch[b + r] * n_inputs
        # pixels: the tile's rows down the columns, looked up (a whole tile's rows a constant
        # number, so that the loop over them unrolls without a test per row)
        if values == NULL:
            for k in range(low, high):
                column = packed + k * ld + b
                if mr == TILE_ROWS:
                    for r in range(TILE_ROWS):
                        column[r] = table[pixel_rows[r][k]]
                else:
                    for r in range(mr):
                        column[r] = table[pixel_rows[r][k]]
        for k in range(low, high):
            tally[k] = 0
        if mask != NULL:  # the factors applied, and the survivors counted where they are
            for k in range(low, high):
                for r in range(mr):
                    packed[k * ld + b + r] *= mask[(b + r) * n_inputs + k]
                    tally[k] += packed[k * ld + b + r] != 0
        else:  # the inputs where the tile has a non-zero one, a row at a time: vectorised
            for r in range(mr):
                if values != NULL:
                    for k in range(low, high):
                        tally[k] += rows[r][k] != 0
                elif zero_pixel_only:
                    for k in range(low, high):
                        tally[k] += pixel_rows[r][k] != 0
                else:
                    for k in range(low, high):
                        tally[k] += table[pixel_rows[r][k]] != 0
        slot = tile_slot(part, b)
        tile_steps = steps + slot * stride
        n = 0
        for k in range(low, high):
            tile_steps[n] = <int32_t> k  # listed without a branch
            n += tally[k] > 0
        step_counts[slot] = n
        b += mr


cdef void dense_sums(const floating *packed, Py_ssize_t ld, const int32_t *steps,
                     Py_ssize_t stride, const Py_ssize_t *step_counts,
                     const int32_t *inputs, Py_ssize_t low, Py_ssize_t high, Py_ssize_t part,
                     Py_ssize_t first, Py_ssize_t last, const floating *weights,
                     Py_ssize_t width, const floating *start, floating *out,
                     Py_ssize_t ldo) noexcept nogil:
    """out[b] = start + sum over inputs k of packed[k * ld + b] * weights[k] for the examples b
    in first..last - 1 of a packed part (start 0 if NULL; out's rows ldo apart), each sum in
    input order: sum_rows of each example's inputs, a tile of TILE_ROWS examples at a time,
    over the inputs where one of them is non-zero (pack_inputs' steps, rows stride apart;
    inputs: 0 .. n_inputs - 1, the weights rows of the steps; the steps are of inputs
    low..high - 1).

    width (weights' columns) is whole vectors. A panel of columns at a time (its weights stay
    in L2 while every tile of examples reads them: 784 x 800 float32 weights do not). A
    row's last 32 bytes past its whole 64-byte vectors go by blocks of examples (block_sums,
    over every input of low..high - 1: the added products of zero inputs are +-0), the
    examples past the last whole vector of them by tiles.
    """
    cdef Py_ssize_t lanes = VECTOR_BYTES // sizeof(floating), j = 0, b, mr, nv, columns, slot
    cdef Py_ssize_t ev
    nv = 0
    while j < width:
        columns = tile_columns(width - j, lanes, &nv)
        b = first
        while nv == 0 and last - b >= lanes:
            ev = min(BLOCK_VECTORS, (last - b) // lanes, 32 // lanes)
            if floating is float:
                block_sums_f32(ev, packed + b, ld, weights + j, width, inputs, inputs + low,
                               high - low, start + j if start != NULL else NULL,
                               out + b * ldo + j, ldo)
            else:
                block_sums_f64(ev, packed + b, ld, weights + j, width, inputs, inputs + low,
                               high - low, start + j if start != NULL else NULL,
                               out + b * ldo + j, ldo)
            b += ev * lanes
        while b < last:
            mr = min(TILE_ROWS, last - b)
            slot = tile_slot(part, b)
            if floating is float:
                (tile_sums_f32 if nv else tile_sums_half_f32)(
                    mr, nv, packed + b, 1, ld, weights + j, width, inputs,
                    steps + slot * stride, step_counts[slot],
                    start + j if start != NULL else NULL, out + b * ldo + j, ldo)
            else:
                (tile_sums_f64 if nv else tile_sums_half_f64)(
                    mr, nv, packed + b, 1, ld, weights + j, width, inputs,
                    steps + slot * stride, step_counts[slot],
                    start + j if start != NULL else NULL, out + b * ldo + j, ldo)
            b += mr
        j += columns


cdef Py_ssize_t nonzero_examples(const floating *const *rows, Py_ssize_t count,
                                 Py_ssize_t size, int32_t *examples) noexcept nogil:
    """The examples b < size where one of the packed rows rows[:count] is non-zero, in
    order, in examples; how many."""
    cdef Py_ssize_t b, r, n = 0
    cdef int32_t flag
    cdef const floating *row
    # flagged in examples itself, as int32 (whole vectors of comparisons; bytes took
    # packing), then listed in place: examples[n] is written once flag n <= b was read
    for b in range(size):
        examples[b] = 0
    for r in range(count):
        row = rows[r]
        for b in range(size):
            examples[b] |= row[b] != 0
    for b in range(size):  # listed without a branch on the flags
        flag = examples[b]
        examples[n] = <int32_t> b
        n += flag
    return n


cdef void dense_update(const floating *packed, Py_ssize_t ld, const int32_t *listed,
                       Py_ssize_t first, Py_ssize_t last, Py_ssize_t size,
                       const floating *delta, Py_ssize_t width, floating alpha,
                       floating *weights, int32_t *examples) noexcept nogil:
    """weights[k] += alpha * (sum over b < size of packed[k * ld + b] * delta[b]) for the
    inputs k = listed[t], t in first..last - 1 (delta's rows width apart), each sum in
    example order: the rows update_inputs updates from the same batch, a tile of TILE_ROWS
    inputs at a time, over the examples where one of them is non-zero (scratch: examples,
    size int32)."""
    cdef Py_ssize_t lanes = VECTOR_BYTES // sizeof(floating), j, t, r, mr, nv, count, columns
    cdef const floating *inputs[16]
    nv = 0
    t = first
    while t < last:
        mr = min(TILE_ROWS, last - t)
        for r in range(mr):
            inputs[r] = packed + listed[t + r] * ld
        count = nonzero_examples(inputs, mr, size, examples)
        j = 0
        while j < width:
            columns = tile_columns(width - j, lanes, &nv)
            if floating is float:
                (tile_update_f32 if nv else tile_update_half_f32)(
                    mr, nv, inputs, delta + j, width, examples, count, alpha, weights + j,
                    width, listed + t)
            else:
                (tile_update_f64 if nv else tile_update_half_f64)(
                    mr, nv, inputs, delta + j, width, examples, count, alpha, weights + j,
                    width, listed + t)
            j += columns
        t += mr


cdef Py_ssize_t list_inputs(const int64_t *column_start, Py_ssize_t low, Py_ssize_t high,
                            int32_t *listed) noexcept nogil:
    """The inputs low..high - 1 with at least one entry in the batch, in order; how many."""
    cdef Py_ssize_t k, count = 0
    for k in range(low, high):
        listed[count] = <int32_t> k
        count += column_start[k + 1] > column_start[k]
    return count
