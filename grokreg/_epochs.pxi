# One epoch, for grokreg/_kernels.pyx (included there): per-example gradient descent, and
# mini-batches (default mode's batch-mean update, the book's loop in closed form or literally).

cdef double sgd_epoch(const floating *data, const index_int *indices, const int64_t *indptr,
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
        if example_mask != NULL and rules.book:
            draw_book_mask(&rules.dropout, example_mask, n_hidden)
        elif example_mask != NULL:
            keyed_mask(rules.dropout.rng.next_uint64(rules.dropout.rng.state), 0,
                       rules.dropout.keep, example_mask, n_hidden)
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


cdef void book_batch_literally(const floating *data, const index_int *indices,
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


cdef inline void count_inputs(const index_int *indices, const int64_t *row_begin,
                              const int64_t *row_end, const int64_t *batch, Py_ssize_t first,
                              Py_ssize_t last, Py_ssize_t n_inputs,
                              int64_t *counts) noexcept nogil:
    """counts[k] = how many of rows batch[first:last] have input k."""
    cdef Py_ssize_t b, k, t
    for k in range(n_inputs):
        counts[k] = 0
    for b in range(first, last):
        for t in range(row_begin[batch[b]], row_end[batch[b]]):
            counts[indices[t]] += 1


cdef inline void place_entries(const floating *data, const index_int *indices,
                               const int64_t *row_begin, const int64_t *row_end,
                               const int64_t *batch, Py_ssize_t first, Py_ssize_t last,
                               int64_t *fill, floating *values, int32_t *examples,
                               Py_ssize_t example_step) noexcept nogil:
    """Each non-zero of rows batch[first:last] to entry fill[its input], which moves on: its
    value to values[2 * entry], its place in the batch to examples[example_step * entry]."""
    cdef Py_ssize_t b, t, entry
    for b in range(first, last):
        for t in range(row_begin[batch[b]], row_end[batch[b]]):
            entry = fill[indices[t]]
            fill[indices[t]] = entry + 1
            examples[entry * example_step] = <int32_t> b
            values[2 * entry] = data[t]


cdef void update_by_columns(const floating *data, const index_int *indices,
                            const int64_t *row_begin, const int64_t *row_end,
                            const int64_t *batch, Py_ssize_t size, floating[:, ::1] weights,
                            floating alpha, const floating[:, ::1] delta,
                            int64_t[::1] column_start, int64_t[:, ::1] part_fill,
                            floating[:, ::1] entries, int n_threads) noexcept nogil:
    """weights += alpha * (x_batch.T . delta), one row of weights at a time, where x_batch's
    row b is the sparse row batch[b] of (data, indices): its entries row_begin[batch[b]] up
    to row_end[batch[b]].

    Both layers' updates: the first layer's from the batch's sparse inputs (a CSR data set,
    row_end = row_begin + 1), the second's from the hidden units each example left active.
    Adding each example's outer product in turn reads and writes a weights row once per
    example that has that input (~19 times per MNIST batch of 100 in the first layer, a
    branch on random data for every unit and example in the second); here the batch's
    sparse rows are regrouped by input (a counting sort), each row's sum over the batch is
    taken in registers (add_scaled_row_sums, with delta in the role of the weights), and each
    row is updated once from them, as a matrix product would. An entry of the regrouped
    batch is a row of entries: its example (an int32 in the first column's bytes) beside its
    value, so that the sort writes one place per entry (two arrays took twice the time).

    Threads share out the work at every step without changing its result. The sort runs on
    parts of the batch (part_fill's rows: contiguous runs of examples, counted and placed in
    parallel), each part's entries of an input placed after those of the parts before it, so
    every input's entries stay in example order. Then the rows of weights.
    """
    cdef Py_ssize_t n_inputs = weights.shape[0], n_cols = weights.shape[1]
    cdef Py_ssize_t n_parts = part_fill.shape[0]
    cdef Py_ssize_t k, part, position, count
    # entries' int32 examples, every example_step int32s
    cdef int32_t *examples = <int32_t *> &entries[0, 0]
    cdef Py_ssize_t example_step = 2 * sizeof(floating) // sizeof(int32_t)
    for part in prange(n_parts, num_threads=n_threads, schedule="static"):
        count_inputs(indices, row_begin, row_end, batch, size * part // n_parts,
                     size * (part + 1) // n_parts, n_inputs, &part_fill[part, 0])
    # each part's count of each input becomes the place of its first entry there
    position = 0
    for k in range(n_inputs):
        column_start[k] = position
        for part in range(n_parts):
            count = part_fill[part, k]
            part_fill[part, k] = position
            position = position + count
    column_start[n_inputs] = position
    for part in prange(n_parts, num_threads=n_threads, schedule="static"):
        place_entries(data, indices, row_begin, row_end, batch, size * part // n_parts,
                      size * (part + 1) // n_parts, &part_fill[part, 0], &entries[0, 1],
                      examples, example_step)
    for k in prange(n_inputs, num_threads=n_threads, schedule="guided"):
        if column_start[k + 1] > column_start[k]:
            add_scaled_row_sums(&entries[column_start[k], 1],
                                examples + column_start[k] * example_step, 2, example_step,
                                column_start[k + 1] - column_start[k], &delta[0, 0],
                                n_cols, alpha, &weights[k, 0])


cdef void add_outer_batch(floating[:, ::1] weights, floating alpha, floating[:, ::1] h,
                          floating[:, ::1] delta, Py_ssize_t size, bint dense,
                          int n_threads) noexcept nogil:
    """weights += alpha * (h[b] outer delta[b]) for b < size, in b's order for every entry.

    The same sums as add_outer_rows called for each example in turn, computed row by row so
    that threads can share out the rows: the dense updates (book mode's replay of a diverging
    epoch), where every unit counts.
    """
    cdef Py_ssize_t j, b, c, n_cols = weights.shape[1]
    cdef floating hj
    for j in prange(weights.shape[0], num_threads=n_threads, schedule="static"):
        for b in range(size):
            hj = h[b, j]
            if hj != 0 or dense:
                for c in range(n_cols):
                    weights[j, c] += alpha * (hj * delta[b, c])


cdef bint gather_batch(const floating *data, const index_int *indices, const int64_t *indptr,
                       const int64_t *batch, Py_ssize_t size, floating *batch_data,
                       index_int *batch_indices, int64_t *batch_indptr,
                       int n_threads) noexcept nogil:
    """Copy the sparse rows batch[:size] into one stretch (batch_indptr: its size + 1 row
    starts) unless they are one already; returns whether it did. In a shuffled order each row
    is anywhere in memory, and the forward pass, which reads a row's columns to find the
    weights rows to fetch, waits on each from DRAM (forward 96-103 instead of 58 ms per
    full-MNIST epoch); copying them first costs less (forward and copy 78 ms)."""
    cdef Py_ssize_t b, first, count
    for b in range(1, size):
        if batch[b] != batch[b - 1] + 1:
            break
    else:
        return False
    batch_indptr[0] = 0
    for b in range(size):
        batch_indptr[b + 1] = batch_indptr[b] + indptr[batch[b] + 1] - indptr[batch[b]]
    for b in prange(size, num_threads=n_threads, schedule="static"):
        first = indptr[batch[b]]
        count = batch_indptr[b + 1] - batch_indptr[b]
        memcpy(batch_data + batch_indptr[b], data + first, count * sizeof(floating))
        memcpy(batch_indices + batch_indptr[b], indices + first, count * sizeof(index_int))
    return True


cdef double batch_epoch(const floating *data, const index_int *indices, const int64_t *indptr,
                        const int64_t[::1] labels, const int64_t[::1] order,
                        floating[:, ::1] weights_0_1, floating[::1] bias_1,
                        floating[:, ::1] weights_1_2, floating[::1] bias_2, floating alpha,
                        Py_ssize_t batch_size, Rules *rules, floating[:, ::1] h,
                        floating[:, ::1] gate, floating[:, ::1] active_values,
                        int32_t[:, ::1] active_units, floating[:, ::1] delta_2,
                        floating[:, ::1] delta_1, floating[:, ::1] grad_1_2,
                        floating[:, ::1] drift, floating[:, ::1] sums_0_1,
                        floating[:, ::1] mask, double[::1] example_error,
                        Py_ssize_t[::1] example_hit, int64_t[::1] active_begin,
                        int64_t[::1] active_end, const int64_t[::1] positions,
                        int64_t[::1] column_start, int64_t[:, ::1] part_fill,
                        floating[:, ::1] entries, floating[:, ::1] transposed,
                        const int32_t[::1] output_units, floating *batch_data,
                        index_int *batch_indices, int64_t *batch_indptr,
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
    alpha * x.T . (B * A + alpha * B(B-1)/2 * C). (Book mode has no biases.) In both modes
    each layer's sum over the batch is taken row by row of its weights (update_by_columns),
    from the batch's inputs for the first, the units each example left active for the second;
    rows that keep their zeros (dense) are updated example by example, as NumPy would.

    With n_threads > 1 the examples of a batch (forward and deltas) and the rows of each update
    are shared out among threads. Every sum is still taken in one fixed order (each example's
    mask comes from its own place in the random stream, the losses are added up in example
    order, each weight's sum over the batch in example order), so the result is the same, bit
    for bit, whatever the number of threads.
    """
    cdef Py_ssize_t n = order.shape[0]
    cdef Py_ssize_t n_hidden = weights_1_2.shape[0], n_outputs = delta_2.shape[1]
    cdef Py_ssize_t start = 0, size, b, i, row, j, c, repeat
    cdef double error = 0
    cdef floating triangle
    cdef floating *example_mask
    cdef uint64_t key = 0
    cdef bint book = rules.book, masked = rules.dropout.active
    # the batch's sparse rows, where they are read from: in place, or gathered
    cdef const floating *rows_data
    cdef const index_int *rows_indices
    cdef const int64_t *rows_indptr
    cdef const int64_t *rows
    cdef Py_ssize_t stop = (n // batch_size) * batch_size if book else n
    cdef double mark = now() if phases != NULL else 0
    n_seen[0] = stop
    while start < stop:
        size = min(batch_size, stop - start)
        if masked and book:  # the batch's masks at once: its rows are contiguous
            draw_book_mask(&rules.dropout, &mask[0, 0], size * n_hidden)
        elif masked:  # each example's mask is drawn with its forward pass, from this key
            key = rules.dropout.rng.next_uint64(rules.dropout.rng.state)
        lap(phases, 0, &mark)
        if data != NULL and not rules.dense and gather_batch(
                data, indices, indptr, &order[start], size, batch_data, batch_indices,
                batch_indptr, n_threads):
            rows_data, rows_indices, rows_indptr = batch_data, batch_indices, batch_indptr
            rows = &positions[0]
        else:
            rows_data, rows_indices, rows_indptr = data, indices, indptr
            rows = &order[start]
        for b in prange(size, num_threads=n_threads, schedule="static"):
            i = order[start + b]
            row = rows[b]
            example_mask = &mask[b, 0] if masked else NULL
            if masked and not book:
                keyed_mask(key, b, rules.dropout.keep, example_mask, n_hidden)
            active_end[b] = active_begin[b] + forward_example(
                rows_data, rows_indices, rows_indptr, row, weights_0_1, bias_1, weights_1_2,
                bias_2, &h[b, 0],
                &gate[b, 0], &active_values[b, 0], &active_units[b, 0], &delta_2[b, 0], book,
                example_mask, rules.dense)
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
            # 0 + 1 * sum: the sum itself, from the units each example left active
            update_by_columns(&active_values[0, 0], &active_units[0, 0], &active_begin[0],
                              &active_end[0], &positions[0], size, grad_1_2, 1, delta_2,
                              column_start, part_fill, entries, n_threads)
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
        elif rules.dense:
            add_outer_batch(weights_1_2, alpha, h, delta_2, size, True, n_threads)
        else:  # from the units each example left active
            update_by_columns(&active_values[0, 0], &active_units[0, 0], &active_begin[0],
                              &active_end[0], &positions[0], size, weights_1_2, alpha,
                              delta_2, column_start, part_fill, entries, n_threads)
        lap(phases, 3, &mark)
        if rules.dense:
            for b in range(size):
                i = order[start + b]
                add_outer_rows(&weights_0_1[0, 0], weights_0_1.shape[1], alpha,
                               data + indptr[i], indices + indptr[i], indptr[i + 1] - indptr[i],
                               &delta_1[b, 0])
        else:
            update_by_columns(rows_data, rows_indices, rows_indptr, rows_indptr + 1, rows, size,
                              weights_0_1, alpha, delta_1, column_start, part_fill, entries,
                              n_threads)
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
