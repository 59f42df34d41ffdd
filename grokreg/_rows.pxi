# Row primitives of grokreg/_kernels.pyx (included there): sums over an example's listed rows of a
# weight matrix in blocks of vector registers, and updates of listed rows.


# sum_rows, the products of every layer, works in blocks of columns held in a local array,
# which the compiler keeps in vector registers across the loop over rows (a loop over z in
# memory would reload and store z for every row). A block is up to WIDEST vector registers
# wide, so that few passes over an example's inputs read each weights row (up to 56 float64 or
# 112 float32 units per pass with AVX2, 28 and 56 with SSE2): every pass waits on the cache for
# the rows again. Widths are literal constants at each call (whole vectors, then 4, 2, 1 for
# what is left), so that each inlined call is specialised to its width. Each z[j] is still
# summed in input order. The per-example update (add_outer_rows) is blocked the same way.
cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define GROKREG_OPAQUE() __asm__ __volatile__("")
    #else
    #define GROKREG_OPAQUE() ((void) 0)
    #endif
    #if defined(__AVX512F__)
    #define GROKREG_VECTOR_BYTES 64
    #elif defined(__AVX__)
    #define GROKREG_VECTOR_BYTES 32
    #else
    #define GROKREG_VECTOR_BYTES 16
    #endif
    """
    # an empty statement the compiler must keep, once per row of the row loops: GCC would
    # otherwise vectorise a loop across its rows, with gathers (5x slower). The rows come
    # from L2 and are not prefetched: out-of-order execution covers their latency (prefetching
    # each row eight inputs ahead cost 10-18% in the update's sums, nothing in the forward)
    void opaque "GROKREG_OPAQUE"() noexcept nogil
    const Py_ssize_t VECTOR_BYTES "GROKREG_VECTOR_BYTES"

cdef enum:
    WIDEST = 14        # vector registers of accumulators (16 exist on x86-64 and more on arm64)
    BLOCK = 224        # WIDEST 64-byte vectors of float32: room for any block


cdef inline void sum_rows_block(const floating *values, const index_int *columns,
                                Py_ssize_t value_step, Py_ssize_t column_step,
                                Py_ssize_t count, const floating *weights, Py_ssize_t n_cols,
                                Py_ssize_t width, const floating *start_values,
                                floating *out, bint scaled, floating alpha,
                                floating *acc) noexcept nogil:
    """With s = start_values[:width] + x . weights[:, :width] (start 0 if NULL): out[:width]
    = s, or if scaled out[:width] += alpha * s (weights offset to the block's first column,
    out and start_values to its place)."""
    # width is a constant in each inlined copy, so that setting and storing acc are whole-vector
    # moves too (at a width known only at run time, or turned into memset/memcpy by GCC, which
    # setup.py stops, they were rep stos/movs, whose start-up cost as much as a row)
    cdef Py_ssize_t t, j
    cdef floating xk
    cdef const floating *row
    for j in range(width):
        acc[j] = start_values[j] if start_values != NULL else 0
    for t in range(count):
        opaque()
        xk = values[t * value_step]
        row = weights + columns[t * column_step] * n_cols
        for j in range(width):
            acc[j] += xk * row[j]
    if scaled:
        for j in range(width):
            out[j] += alpha * acc[j]
    else:
        for j in range(width):
            out[j] = acc[j]


cdef inline Py_ssize_t block_width(Py_ssize_t remaining, Py_ssize_t item_bytes) noexcept nogil:
    """The width of the block that sum_rows_blocks and add_rows_blocks take from the remaining
    columns: the widest run of whole vectors up to WIDEST, else 4, 2 or 1 columns."""
    cdef Py_ssize_t lanes = VECTOR_BYTES // item_bytes
    cdef Py_ssize_t vectors = min(remaining // lanes, <Py_ssize_t> WIDEST)
    if vectors > 0:
        return vectors * lanes
    return 4 if remaining >= 4 else 2 if remaining >= 2 else 1


cdef inline Py_ssize_t sum_rows_blocks(const floating *values, const index_int *columns,
                                       Py_ssize_t value_step, Py_ssize_t column_step,
                                       Py_ssize_t count, const floating *weights,
                                       Py_ssize_t n_cols, Py_ssize_t remaining,
                                       const floating *start_values, floating *out,
                                       bint scaled, floating alpha,
                                       floating *acc) noexcept nogil:
    """sum_rows_block for the widest block that fits in the remaining columns; its width."""
    cdef Py_ssize_t lanes = VECTOR_BYTES // sizeof(floating)
    cdef Py_ssize_t width = block_width(remaining, sizeof(floating))
    if width == 14 * lanes:
        sum_rows_block(values, columns, value_step, column_step, count, weights, n_cols,
                       14 * lanes, start_values, out, scaled, alpha, acc)
    elif width == 13 * lanes:
        sum_rows_block(values, columns, value_step, column_step, count, weights, n_cols,
                       13 * lanes, start_values, out, scaled, alpha, acc)
    elif width == 12 * lanes:
        sum_rows_block(values, columns, value_step, column_step, count, weights, n_cols,
                       12 * lanes, start_values, out, scaled, alpha, acc)
    elif width == 11 * lanes:
        sum_rows_block(values, columns, value_step, column_step, count, weights, n_cols,
                       11 * lanes, start_values, out, scaled, alpha, acc)
    elif width == 10 * lanes:
        sum_rows_block(values, columns, value_step, column_step, count, weights, n_cols,
                       10 * lanes, start_values, out, scaled, alpha, acc)
    elif width == 9 * lanes:
        sum_rows_block(values, columns, value_step, column_step, count, weights, n_cols,
                       9 * lanes, start_values, out, scaled, alpha, acc)
    elif width == 8 * lanes:
        sum_rows_block(values, columns, value_step, column_step, count, weights, n_cols,
                       8 * lanes, start_values, out, scaled, alpha, acc)
    elif width == 7 * lanes:
        sum_rows_block(values, columns, value_step, column_step, count, weights, n_cols,
                       7 * lanes, start_values, out, scaled, alpha, acc)
    elif width == 6 * lanes:
        sum_rows_block(values, columns, value_step, column_step, count, weights, n_cols,
                       6 * lanes, start_values, out, scaled, alpha, acc)
    elif width == 5 * lanes:
        sum_rows_block(values, columns, value_step, column_step, count, weights, n_cols,
                       5 * lanes, start_values, out, scaled, alpha, acc)
    elif width == 4 * lanes:
        sum_rows_block(values, columns, value_step, column_step, count, weights, n_cols,
                       4 * lanes, start_values, out, scaled, alpha, acc)
    elif width == 3 * lanes:
        sum_rows_block(values, columns, value_step, column_step, count, weights, n_cols,
                       3 * lanes, start_values, out, scaled, alpha, acc)
    elif width == 2 * lanes:
        sum_rows_block(values, columns, value_step, column_step, count, weights, n_cols,
                       2 * lanes, start_values, out, scaled, alpha, acc)
    elif width == lanes:
        sum_rows_block(values, columns, value_step, column_step, count, weights, n_cols,
                       lanes, start_values, out, scaled, alpha, acc)
    elif width == 4:
        sum_rows_block(values, columns, value_step, column_step, count, weights, n_cols,
                       4, start_values, out, scaled, alpha, acc)
    elif width == 2:
        sum_rows_block(values, columns, value_step, column_step, count, weights, n_cols,
                       2, start_values, out, scaled, alpha, acc)
    else:
        sum_rows_block(values, columns, value_step, column_step, count, weights, n_cols,
                       1, start_values, out, scaled, alpha, acc)
    return width


cdef void sum_rows_into(const floating *values, const index_int *rows, Py_ssize_t value_step,
                        Py_ssize_t row_step, Py_ssize_t count, const floating *weights,
                        Py_ssize_t n_cols, const floating *start_values, floating *out,
                        bint scaled, floating alpha) noexcept nogil:
    """out = start_values + s, or if scaled out += alpha * s, where s = sum over t of
    values[t * value_step] * weights[rows[t * row_step]] (start 0 if NULL); each s[j] summed
    in the order of t. The steps let the values and rows interleave in one array of entries
    (update_inputs, which adds its sums to the weights' rows as they leave the
    registers)."""
    # the accumulators live here: in each inlined block's frame they would stop the compiler
    # inlining so many blocks; it still keeps them in registers
    cdef floating acc[BLOCK]
    cdef Py_ssize_t start = 0
    while start < n_cols:
        start += sum_rows_blocks(values, rows, value_step, row_step, count, weights + start,
                                 n_cols, n_cols - start,
                                 start_values + start if start_values != NULL else NULL,
                                 out + start, scaled, alpha, acc)


cdef void add_scaled_row_sums(const floating *values, const index_int *rows,
                              Py_ssize_t value_step, Py_ssize_t row_step, Py_ssize_t count,
                              const floating *weights, Py_ssize_t n_cols, floating alpha,
                              floating *target) noexcept nogil:
    """target += alpha * (sum over t of values[t * value_step] * weights[rows[t * row_step]]),
    the same bits as the sum stored and then added with add_scaled."""
    sum_rows_into(values, rows, value_step, row_step, count, weights, n_cols, NULL, target,
                  True, alpha)


cdef inline void sum_rows(const floating *values, const index_int *rows, Py_ssize_t count,
                          const floating *weights, Py_ssize_t n_cols,
                          const floating *start_values, floating *out) noexcept nogil:
    """out = start_values + sum over t of values[t] * weights[rows[t], :] (start 0 if NULL).

    The first layer's z = bias_1 + x . weights_0_1 from x's non-zero values and their
    columns; likewise the output layer from the active hidden units, and the hidden delta from
    the outputs' deltas and weights_1_2.T. Each out[j] is summed in the order of t.
    """
    sum_rows_into(values, rows, 1, 1, count, weights, n_cols, start_values, out, False, 0)


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
                                const floating *values, const index_int *rows, Py_ssize_t count,
                                Py_ssize_t width, const floating *v) noexcept nogil:
    """weights[rows[t], :width] += alpha * (values[t] * v[:width]) (weights offset as above)."""
    cdef Py_ssize_t t, c, last = count - 1
    cdef floating xr
    cdef floating *row
    for t in range(count):
        opaque()
        # the rows last to first (add_outer_rows), counted upwards: GCC left the loop scalar
        # at some widths when it counted down
        xr = values[last - t]
        row = weights + rows[last - t] * n_cols
        for c in range(width):
            row[c] = row[c] + alpha * (xr * v[c])


cdef inline Py_ssize_t add_rows_blocks(floating *weights, Py_ssize_t n_cols, floating alpha,
                                       const floating *values, const index_int *rows,
                                       Py_ssize_t count, Py_ssize_t remaining,
                                       const floating *v_in) noexcept nogil:
    """add_rows_block for the widest block that fits in the remaining columns; its width.

    The block of v is copied into a local array first, here, beside the blocks that read it:
    the compiler then knows that the rows cannot overlap it (with v read in place, the update
    came out scalar), wherever it inlines this function or not.
    """
    cdef floating v[BLOCK]
    cdef Py_ssize_t lanes = VECTOR_BYTES // sizeof(floating)
    cdef Py_ssize_t width = block_width(remaining, sizeof(floating)), c
    for c in range(width):  # at most WIDEST vectors: BLOCK holds them
        v[c] = v_in[c]
    if width == 14 * lanes:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 14 * lanes, v)
    elif width == 13 * lanes:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 13 * lanes, v)
    elif width == 12 * lanes:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 12 * lanes, v)
    elif width == 11 * lanes:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 11 * lanes, v)
    elif width == 10 * lanes:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 10 * lanes, v)
    elif width == 9 * lanes:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 9 * lanes, v)
    elif width == 8 * lanes:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 8 * lanes, v)
    elif width == 7 * lanes:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 7 * lanes, v)
    elif width == 6 * lanes:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 6 * lanes, v)
    elif width == 5 * lanes:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 5 * lanes, v)
    elif width == 4 * lanes:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 4 * lanes, v)
    elif width == 3 * lanes:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 3 * lanes, v)
    elif width == 2 * lanes:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 2 * lanes, v)
    elif width == lanes:
        add_rows_block(weights, n_cols, alpha, values, rows, count, lanes, v)
    elif width == 4:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 4, v)
    elif width == 2:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 2, v)
    else:
        add_rows_block(weights, n_cols, alpha, values, rows, count, 1, v)
    return width


cdef void add_outer_rows(floating *weights, Py_ssize_t n_cols, floating alpha,
                         const floating *values, const index_int *rows, Py_ssize_t count,
                         const floating *v) noexcept nogil:
    """weights[rows[t], :] += alpha * (values[t] * v): the sparse first-layer update (rows
    distinct, so that their order changes no bit).

    Blocks as in sum_rows, with v's block in registers (add_rows_blocks).

    The blocks go last to first, and each block's rows last to first: an example's rows of
    weights_0_1 (148 on average in MNIST, 47 KB at 40 float64 units) outgrow the 32 KB L1
    cache, and the forward pass that read them just before, first block to last and rows
    first to last, left the last ones in it (bench/step_order.c: 1-10% a step at 40 units,
    8-10% at 100).
    """
    cdef Py_ssize_t end = n_cols, width
    while end > 0:
        width = block_width(end, sizeof(floating))
        add_rows_blocks(weights + end - width, n_cols, alpha, values, rows, count, width,
                        v + end - width)
        end -= width
