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
    add_outer_batch(grad_1_2, 1, h, delta_2, size)
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


cdef struct ByInput:
    # A batch regrouped by input (a counting sort), for one layer's update. Each thread counts
    # the inputs of its parts of the batch (runs of examples); each works out from all the
    # counts where every input's entries go (its own row of starts), then takes runs of inputs
    # (its share of the rows to update), places their entries (scanning the whole batch, in
    # example order) and updates their rows: no thread writes a line of entries another
    # thread writes or reads (a sort split by examples wrote every input's stretch from both
    # threads: no faster at 2 threads than at 1), and nothing waits between the sort and the
    # update. (The second layer's, by_unit, is sorted a half of the batch at a time, each
    # half by one thread from its own counts: part_starts.) An entry is a row of two: its
    # example (an int32 in the first column's bytes) beside its value, so that the sort writes
    # one place per entry.
    Py_ssize_t n_inputs
    Py_ssize_t n_parts
    int64_t *counts        # (n_parts, n_inputs): each part's count of each input
    int64_t *starts        # (n_parts, n_inputs + 1): thread m's row, each input's first entry
    int64_t *fill          # (n_parts, n_inputs): thread m's row, where its inputs' next entry goes


cdef enum:
    # The first layer's sums of a mini-batch are taken in this many runs of inputs, each
    # holding about as many of the batch's entries, then added up in order: z = bias_1 + (sum
    # over the first run) + (sum over the second)... With 2 threads each reads and updates
    # the weights_0_1 rows of its own runs, for every example: no row crosses between the
    # cores (split by examples, every row the batch touched was read by both cores and
    # written by one, each batch: bench/layouts.c, 2 threads 33.7-36.5 against 23.1-23.5 ms).
    # The same runs whatever the number of threads, so that the sums are the same bits.
    INPUT_RUNS = 2


cdef enum:
    # The second layer's sum over a mini-batch is taken in this many halves of the batch's
    # examples, then added up in order: grad_1_2 = (sum over the first half) + (sum over the
    # second). With 2 threads each sums the half whose forward pass it ran, from the active
    # units it found there, still in its cache: summed by unit over the whole batch, each
    # thread read every example's active units, half of them from the other core (5.3-5.6 ms
    # an epoch at 2 threads against 1.1-1.2 at 1, full MNIST). The same halves whatever the
    # number of threads, so that the sums are the same bits.
    BATCH_HALVES = 2


cdef inline void count_inputs(const index_int *indices, const int64_t *row_begin,
                              const int64_t *row_end, const int64_t *batch, Py_ssize_t first,
                              Py_ssize_t last, ByInput *view, Py_ssize_t part) noexcept nogil:
    """Count each input of rows batch[first:last], the batch's part `part`."""
    cdef Py_ssize_t b, k, t
    cdef int64_t *counts = view.counts + part * view.n_inputs
    for k in range(view.n_inputs):
        counts[k] = 0
    for b in range(first, last):
        for t in range(row_begin[batch[b]], row_end[batch[b]]):
            counts[indices[t]] += 1


cdef int64_t *input_starts(ByInput *view, int member) noexcept nogil:
    """Once every part is counted: member's row of starts, each input's first entry in the
    regrouped batch (then the total), worked out from all the parts' counts."""
    cdef Py_ssize_t n_inputs = view.n_inputs, k, q
    cdef int64_t position = 0
    cdef int64_t *column_start = view.starts + member * (n_inputs + 1)
    for k in range(n_inputs):
        column_start[k] = position
        for q in range(view.n_parts):
            position += view.counts[q * n_inputs + k]
    column_start[n_inputs] = position
    return column_start


cdef int64_t *part_starts(ByInput *view, Py_ssize_t part) noexcept nogil:
    """Once part `part` is counted: its own row of starts, each input's first entry among the
    part's alone (then the part's total)."""
    cdef Py_ssize_t k
    cdef int64_t position = 0
    cdef int64_t *column_start = view.starts + part * (view.n_inputs + 1)
    cdef const int64_t *counts = view.counts + part * view.n_inputs
    for k in range(view.n_inputs):
        column_start[k] = position
        position += counts[k]
    column_start[view.n_inputs] = position
    return column_start


cdef Py_ssize_t first_input_from(const int64_t *column_start, Py_ssize_t low,
                                 Py_ssize_t high, int64_t entry) noexcept nogil:
    """The first input in low..high - 1 whose entries start at or after entry (high if none)."""
    cdef Py_ssize_t middle
    while low < high:
        middle = (low + high) // 2
        if column_start[middle] >= entry:
            high = middle
        else:
            low = middle + 1
    return low


cdef inline void split_inputs(const int64_t *column_start, Py_ssize_t low, Py_ssize_t high,
                              Py_ssize_t part, Py_ssize_t parts, Py_ssize_t *first,
                              Py_ssize_t *last) noexcept nogil:
    """Inputs first..last - 1: the part-th of `parts` consecutive runs of inputs low..high - 1,
    each holding about as many entries."""
    cdef int64_t begin = column_start[low], entries = column_start[high] - column_start[low]
    first[0] = low if part == 0 else first_input_from(column_start, low, high,
                                                      begin + entries * part // parts)
    last[0] = high if part == parts - 1 else first_input_from(
        column_start, low, high, begin + entries * (part + 1) // parts)


cdef Py_ssize_t first_input_of(const int64_t *column_start, Py_ssize_t n_inputs,
                               Py_ssize_t unit, Py_ssize_t run_parts) noexcept nogil:
    """The first input whose weights_0_1 row unit updates (n_inputs for unit INPUT_RUNS *
    run_parts): the units take the rows in input order, each a run_parts-th (by entries) of
    a run of inputs (INPUT_RUNS)."""
    cdef Py_ssize_t low, high, first, last
    if unit >= INPUT_RUNS * run_parts:
        return n_inputs
    split_inputs(column_start, 0, n_inputs, unit // run_parts, INPUT_RUNS, &low, &high)
    split_inputs(column_start, low, high, unit % run_parts, run_parts, &first, &last)
    return first


cdef inline Py_ssize_t first_at_least(const index_int *indices, Py_ssize_t low,
                                      Py_ssize_t high, Py_ssize_t k) noexcept nogil:
    """The first t in low..high - 1 with indices[t] >= k (high if none), indices ascending:
    low + how many are below k, a count the compiler vectorises (a bisection's branches,
    mispredicted half the time, cost ~5 ms a full-MNIST epoch at 1 thread)."""
    cdef Py_ssize_t t, below = 0
    for t in range(low, high):
        below += indices[t] < k
    return low + below


cdef inline void run_of_row(const index_int *indices, const int64_t *row_begin,
                            const int64_t *row_end, Py_ssize_t row, Py_ssize_t low,
                            Py_ssize_t high, Py_ssize_t n_inputs, Py_ssize_t *first,
                            Py_ssize_t *last) noexcept nogil:
    """Entries first..last - 1 of sparse row `row`: those of inputs low..high - 1 (a row's
    inputs ascend, so they are one run of it)."""
    first[0] = row_begin[row]
    last[0] = row_end[row]
    if low > 0:
        first[0] = first_at_least(indices, first[0], last[0], low)
    if high < n_inputs:
        last[0] = first_at_least(indices, first[0], last[0], high)


cdef void regroup_inputs(const floating *data, const index_int *indices,
                         const int64_t *row_begin, const int64_t *row_end,
                         const int64_t *batch, Py_ssize_t size, ByInput *view, int member,
                         const int64_t *column_start, Py_ssize_t low, Py_ssize_t high,
                         floating *entries) noexcept nogil:
    """The entries of inputs low..high - 1 placed, from the sparse rows batch[:size] in order."""
    cdef Py_ssize_t k, b, t, end
    cdef int64_t entry
    cdef int64_t *fill = view.fill + member * view.n_inputs
    cdef int32_t *examples = <int32_t *> entries
    cdef Py_ssize_t example_step = 2 * sizeof(floating) // sizeof(int32_t)
    for k in range(low, high):
        fill[k] = column_start[k]
    for b in range(size):
        run_of_row(indices, row_begin, row_end, batch[b], low, high, view.n_inputs, &t, &end)
        while t < end:
            entry = fill[indices[t]]
            fill[indices[t]] = entry + 1
            examples[entry * example_step] = <int32_t> b
            entries[2 * entry + 1] = data[t]
            t += 1


cdef void update_inputs(const int64_t *column_start, const floating *entries, Py_ssize_t first,
                        Py_ssize_t last, const floating *delta, Py_ssize_t n_cols,
                        floating alpha, floating *weights) noexcept nogil:
    """weights[k] += alpha * (sum over the batch's entries of input k of value * delta[example])
    for inputs first..last - 1: each row's sum over the batch in registers (add_scaled_row_sums,
    with delta in the role of the weights), each row read and written once, as a matrix
    product would (adding each example's outer product in turn read and wrote a row once per
    example that has that input: ~19 times per MNIST batch of 100 in the first layer)."""
    cdef const int32_t *examples = <const int32_t *> entries
    cdef Py_ssize_t example_step = 2 * sizeof(floating) // sizeof(int32_t), k
    for k in range(first, last):
        if column_start[k + 1] > column_start[k]:
            add_scaled_row_sums(entries + 2 * column_start[k] + 1,
                                examples + column_start[k] * example_step, 2, example_step,
                                column_start[k + 1] - column_start[k], delta, n_cols, alpha,
                                weights + k * n_cols)


cdef inline floating halves_added(const floating *halves, Py_ssize_t n,
                                  Py_ssize_t entry) noexcept nogil:
    """Entry `entry` of the BATCH_HALVES sums (each n entries) added up in order."""
    cdef floating total = halves[entry]
    cdef Py_ssize_t half
    for half in range(1, BATCH_HALVES):
        total = total + halves[half * n + entry]
    return total


cdef void add_outer_batch(floating[:, ::1] weights, floating alpha, floating[:, ::1] h,
                          floating[:, ::1] delta, Py_ssize_t size) noexcept nogil:
    """weights += alpha * (h[b] outer delta[b]) for b < size, every unit (zeros too), in b's
    order for every entry: the dense updates of book mode's replay of a diverging epoch."""
    cdef Py_ssize_t j, b, c, n_cols = weights.shape[1]
    cdef floating hj
    for j in range(weights.shape[0]):
        for b in range(size):
            hj = h[b, j]
            for c in range(n_cols):
                weights[j, c] += alpha * (hj * delta[b, c])


cdef inline bint consecutive(const int64_t *batch, Py_ssize_t size) noexcept nogil:
    """Whether the batch lists consecutive examples (whose rows are one stretch already)."""
    cdef Py_ssize_t b
    for b in range(1, size):
        if batch[b] != batch[b - 1] + 1:
            return False
    return True


cdef void copy_rows(const floating *data, const index_int *indices, const int64_t *indptr,
                    const int64_t *batch, Py_ssize_t first, Py_ssize_t last,
                    floating *batch_data, index_int *batch_indices,
                    const int64_t *batch_indptr) noexcept nogil:
    """Copy the sparse rows batch[first:last] to their places in one stretch (batch_indptr)."""
    cdef Py_ssize_t b, count
    for b in range(first, last):
        count = batch_indptr[b + 1] - batch_indptr[b]
        memcpy(batch_data + batch_indptr[b], data + indptr[batch[b]], count * sizeof(floating))
        memcpy(batch_indices + batch_indptr[b], indices + indptr[batch[b]],
               count * sizeof(index_int))


cdef double batch_epoch(const floating *data, const index_int *indices, const int64_t *indptr,
                        const int64_t[::1] labels, const int64_t[::1] order,
                        floating[:, ::1] weights_0_1, floating[::1] bias_1,
                        floating[:, ::1] weights_1_2, floating[::1] bias_2, floating alpha,
                        Py_ssize_t batch_size, Rules *rules, floating[:, ::1] h,
                        floating[:, ::1] gate, floating[:, ::1] active_values,
                        int32_t[:, ::1] active_units, floating[:, ::1] delta_2,
                        floating[:, ::1] delta_1, floating[:, ::1] grad_1_2,
                        floating[:, ::1] half_grads, floating[:, ::1] drift,
                        floating[:, ::1] sums_0_1, floating[:, ::1] run_sums,
                        floating[:, ::1] mask,
                        double[::1] example_error, Py_ssize_t[::1] example_hit,
                        int64_t[::1] active_begin, int64_t[::1] active_end,
                        const int64_t[::1] positions, ByInput *by_input,
                        floating *input_entries, ByInput *by_unit, floating *unit_entries,
                        floating[:, ::1] transposed, const int32_t[::1] output_units,
                        floating *batch_data, index_int *batch_indices,
                        int64_t *batch_indptr, int n_threads, Py_ssize_t *n_correct,
                        Py_ssize_t *n_seen, double *phases, double *waits) noexcept nogil:
    """Mini-batch gradient descent (phases and waits, if not NULL, accumulate each phase's
    seconds and each thread's at the barriers: train_epoch).

    Default mode: one update per batch with the batch-mean gradient; a last, smaller batch is
    trained too. Book mode: the book's loop, which drops the last partial batch and applies its
    update batch_size times per batch, recomputing delta_1 from the freshly updated
    weights_1_2 each time. Done literally that costs batch_size x the work; it is computed here
    in closed form. weights_1_2 grows by the same alpha * grad_1_2 at each of the B repeats, so at
    repeat k delta_1 = A + k * alpha * C (A from the batch's starting weights, C = delta_2 .
    grad_1_2.T, both masked), and the B updates of weights_0_1 sum to
    alpha * x.T . (B * A + alpha * B(B-1)/2 * C). (Book mode has no biases.) In both modes
    each layer's sum over the batch is taken row by row of its weights (update_inputs), from
    the batch's inputs (by_input) for the first, the units each example left active (by_unit,
    one half of the batch at a time: BATCH_HALVES) for the second; rows that keep their zeros
    (dense) are updated example by example, as NumPy would, and their first layer summed in
    one run.

    The n_threads threads run the whole epoch in one parallel region and meet at a barrier
    between the steps of a batch (4 a batch, one more when its rows are gathered, two more in
    book mode; a region, opened and joined, costs 2-3 times a barrier, and there were 9):
    1. one thread draws the batch's dropout key and lays out its gathered rows;
    2. each thread copies and counts the inputs of its parts of the batch (runs of examples);
    3. each thread sums, for every example, the rows of its runs of inputs (INPUT_RUNS; a run
       split further among threads by examples when there are more threads than runs);
    4. each thread, for its parts of the batch: the runs' sums added up, ReLU and dropout, the
       output layer, the output and hidden deltas (from its own transposed copy of weights_1_2:
       one copy read by both cores crossed between them);
    5. each thread sums the second layer's gradient over its half of the batch (with 2 threads
       the half it ran step 4 for, so that the active units stay in its core's cache), then
       regroups and updates the rows of weights_0_1 it summed in step 3 (likewise); after the
       batch's last barrier each adds the halves' sums to a share of weights_1_2's rows (in
       book mode before the first layer's update, which needs them: two barriers more).
    Every sum is still taken in one fixed order (each example's mask comes from its own place
    in the random stream, the losses are added up in example order, each weight's sum over
    the batch in example order, the first layer's in its runs of inputs and the second's in
    its halves of the batch), so the result is the same, bit for bit, whatever the number of
    threads.
    """
    cdef Py_ssize_t n = order.shape[0], n_parts = by_input.n_parts
    cdef Py_ssize_t n_inputs = weights_0_1.shape[0], n_hidden = weights_1_2.shape[0]
    cdef Py_ssize_t n_outputs = delta_2.shape[1], width = weights_0_1.shape[1]
    cdef Py_ssize_t capacity = h.shape[0]  # run_sums holds INPUT_RUNS blocks of this many rows
    cdef Py_ssize_t start, size, part, first, last, b, i, j, c, repeat, unit, run, low, high
    cdef Py_ssize_t units, run_parts, entry, end, half
    cdef Py_ssize_t stop = (n // batch_size) * batch_size if rules.book else n
    cdef int member, team
    cdef bint book = rules.book, masked = rules.dropout.active, dense = rules.dense
    cdef bint gathered
    cdef floating triangle
    cdef floating *example_mask
    cdef floating *sums
    # the batch's sparse rows, where they are read from: in place, or gathered
    cdef const floating *rows_data
    cdef const index_int *rows_indices
    cdef const int64_t *rows_indptr
    cdef const int64_t *rows
    cdef const int64_t *input_start
    cdef const int64_t *unit_start
    cdef floating *own_transposed
    # written by one thread before a barrier, read by all after it
    cdef uint64_t key[1]
    cdef double error[1]
    cdef double mark[1]
    key[0] = 0
    error[0] = 0
    mark[0] = now() if phases != NULL else 0
    n_seen[0] = stop
    # every thread sets its own of these (Cython copies them in: set for the compiler's sake)
    start = size = part = first = last = b = i = j = c = repeat = unit = run = low = high = 0
    units = run_parts = entry = end = half = member = team = 0
    gathered, triangle, example_mask, sums = False, 0, NULL, NULL
    rows_data, rows_indices, rows_indptr, rows = NULL, NULL, NULL, NULL
    input_start, unit_start, own_transposed = NULL, NULL, NULL
    with parallel(num_threads=n_threads):
        member = threadid()
        team = team_size()
        # Cython makes a variable thread-private only where the block assigns it: these are
        # otherwise written only through pointers (split_inputs, run_of_row)
        first = last = low = high = entry = end = 0
        # the work of step 3: each run of inputs for run_parts runs of examples
        run_parts = (team + INPUT_RUNS - 1) // INPUT_RUNS
        units = INPUT_RUNS * run_parts
        start = 0
        while start < stop:
            size = min(batch_size, stop - start)
            # in a shuffled order each row is anywhere in memory, and the forward pass, which
            # reads a row's columns to find the weights rows to fetch, waits on each from DRAM
            # (forward 96-103 instead of 58 ms per full-MNIST epoch); copying the rows into
            # one stretch first costs less (forward and copy 78 ms)
            gathered = data != NULL and not dense and not consecutive(&order[start], size)
            if member == 0:
                if masked and book:  # the batch's masks at once: its rows are contiguous
                    draw_book_mask(&rules.dropout, &mask[0, 0], size * n_hidden)
                elif masked:  # each example's mask is drawn with its forward pass, from this key
                    key[0] = rules.dropout.rng.next_uint64(rules.dropout.rng.state)
                if gathered:
                    batch_indptr[0] = 0
                    for b in range(size):
                        i = order[start + b]
                        batch_indptr[b + 1] = batch_indptr[b] + indptr[i + 1] - indptr[i]
                lap(phases, 0, mark)
            # thread 0's work above is read in step 3 at the earliest, after the next barrier,
            # unless the rows are gathered (read in step 2) or step 3 is skipped (dense)
            if gathered or dense:
                meet(waits, member)
            if gathered:
                rows_data, rows_indices, rows_indptr = batch_data, batch_indices, batch_indptr
                rows = &positions[0]
            else:
                rows_data, rows_indices, rows_indptr = data, indices, indptr
                rows = &order[start]
            if not dense:
                for part in range(n_parts):
                    if part % team != member:
                        continue
                    first = size * part // n_parts
                    last = size * (part + 1) // n_parts
                    if gathered:
                        copy_rows(data, indices, indptr, &order[start], first, last,
                                  batch_data, batch_indices, batch_indptr)
                    count_inputs(rows_indices, rows_indptr, rows_indptr + 1, rows, first, last,
                                 by_input, part)
                meet(waits, member)
                input_start = input_starts(by_input, member)
                for unit in range(units * member // team, units * (member + 1) // team):
                    run = unit // run_parts
                    part = unit % run_parts
                    split_inputs(input_start, 0, n_inputs, run, INPUT_RUNS, &low, &high)
                    for b in range(size * part // run_parts, size * (part + 1) // run_parts):
                        run_of_row(rows_indices, rows_indptr, rows_indptr + 1, rows[b], low,
                                   high, n_inputs, &entry, &end)
                        sum_rows(rows_data + entry, rows_indices + entry, end - entry,
                                 &weights_0_1[0, 0], width, &bias_1[0] if run == 0 else NULL,
                                 &run_sums[run * capacity + b, 0])
                meet(waits, member)
            # own_transposed: weights_1_2.T, then in book mode grad_1_2.T (see hidden_delta),
            # once every thread has added its rows of the last batch's update
            own_transposed = &transposed[member * n_outputs, 0]
            transpose(&weights_1_2[0, 0], n_hidden, n_outputs, own_transposed)
            for part in range(n_parts):
                if part % team != member:
                    continue
                first = size * part // n_parts
                last = size * (part + 1) // n_parts
                for b in range(first, last):
                    i = order[start + b]
                    example_mask = &mask[b, 0] if masked else NULL
                    if masked and not book:
                        keyed_mask(key[0], b, rules.dropout.keep, example_mask, n_hidden)
                    if dense:
                        active_end[b] = active_begin[b] + forward_example(
                            data, indices, indptr, i, weights_0_1, bias_1, weights_1_2, bias_2,
                            &h[b, 0], &gate[b, 0], &active_values[b, 0], &active_units[b, 0],
                            &delta_2[b, 0], book, example_mask, dense)
                    else:
                        sums = &h[b, 0]
                        for j in range(width):
                            sums[j] = run_sums[b, j]
                        for run in range(1, INPUT_RUNS):
                            for j in range(width):
                                sums[j] += run_sums[run * capacity + b, j]
                        active_end[b] = active_begin[b] + forward_from_sums(
                            weights_1_2, bias_2, sums, &gate[b, 0], &active_values[b, 0],
                            &active_units[b, 0], &delta_2[b, 0], book, example_mask, dense)
                    example_hit[b] = 0
                    example_error[b] = score_example(&delta_2[b, 0], n_outputs, labels[i],
                                                     rules.loss, &example_hit[b])
                    output_delta(&delta_2[b, 0], n_outputs, labels[i], rules.loss,
                                 <floating> size)
                    hidden_delta(&delta_2[b, 0], own_transposed, &output_units[0],
                                 n_outputs, &gate[b, 0], n_hidden, &delta_1[b, 0])
            meet(waits, member)
            if member == 0:
                for b in range(size):
                    error[0] += example_error[b]
                    n_correct[0] += example_hit[b]
                lap(phases, 1, mark)
            if dense:  # the book's replay of a diverging epoch: one thread, nothing skipped
                if member == 0 and book:
                    book_batch_literally(data, indices, indptr, order, start, size,
                                         weights_0_1, weights_1_2, alpha, h, gate, delta_2,
                                         delta_1, grad_1_2, sums_0_1, transposed, output_units)
                elif member == 0:
                    add_outer_batch(weights_1_2, alpha, h, delta_2, size)
                    for b in range(size):
                        i = order[start + b]
                        add_outer_rows(&weights_0_1[0, 0], width, alpha, data + indptr[i],
                                       indices + indptr[i], indptr[i + 1] - indptr[i],
                                       &delta_1[b, 0])
            else:
                # the second layer's sum over each half of the batch (BATCH_HALVES), by unit,
                # from the units its examples left active
                for half in range(BATCH_HALVES):
                    if half % team != member:
                        continue
                    first = size * half // BATCH_HALVES
                    last = size * (half + 1) // BATCH_HALVES
                    count_inputs(&active_units[0, 0], &active_begin[0], &active_end[0],
                                 &positions[0], first, last, by_unit, half)
                    unit_start = part_starts(by_unit, half)
                    regroup_inputs(&active_values[0, 0], &active_units[0, 0], &active_begin[0],
                                   &active_end[0], &positions[first], last - first, by_unit,
                                   half, unit_start, 0, n_hidden,
                                   unit_entries + 2 * first * n_hidden)
                    if member == 0:
                        lap(phases, 2, mark)
                    # the half's sums themselves: 0 + 1 * sum is the sum, bit for bit
                    for entry in range(half * n_hidden * n_outputs,
                                       (half + 1) * n_hidden * n_outputs):
                        (&half_grads[0, 0])[entry] = 0
                    update_inputs(unit_start, unit_entries + 2 * first * n_hidden, 0, n_hidden,
                                  &delta_2[first, 0], n_outputs, 1, &half_grads[half * n_hidden, 0])
                    if member == 0:
                        lap(phases, 3, mark)
                if book:
                    # grad_1_2 = the batch's sum itself, then delta_1 = B * A + alpha * B(B-1)/2 * C
                    meet(waits, member)
                    first = n_hidden * member // team
                    last = n_hidden * (member + 1) // team
                    for entry in range(first * n_outputs, last * n_outputs):
                        (&grad_1_2[0, 0])[entry] = halves_added(&half_grads[0, 0],
                                                                n_hidden * n_outputs, entry)
                    for j in range(first, last):
                        for repeat in range(size):
                            for c in range(n_outputs):
                                weights_1_2[j, c] += alpha * grad_1_2[j, c]
                    meet(waits, member)
                    transpose(&grad_1_2[0, 0], n_hidden, n_outputs, own_transposed)
                    triangle = alpha * <floating> (size * (size - 1) // 2)
                    for part in range(n_parts):
                        if part % team != member:
                            continue
                        for b in range(size * part // n_parts, size * (part + 1) // n_parts):
                            hidden_delta(&delta_2[b, 0], own_transposed, &output_units[0],
                                         n_outputs, &gate[b, 0], n_hidden, &drift[b, 0])
                            for j in range(n_hidden):
                                delta_1[b, j] = size * delta_1[b, j] + triangle * drift[b, j]
                    meet(waits, member)
                if member == 0:
                    lap(phases, 3, mark)
                # the rows of weights_0_1 this thread summed in step 3
                first = first_input_of(input_start, n_inputs, units * member // team, run_parts)
                last = first_input_of(input_start, n_inputs, units * (member + 1) // team,
                                      run_parts)
                regroup_inputs(rows_data, rows_indices, rows_indptr, rows_indptr + 1, rows,
                               size, by_input, member, input_start, first, last, input_entries)
                if member == 0:
                    lap(phases, 2, mark)
                update_inputs(input_start, input_entries, first, last, &delta_1[0, 0], width,
                              alpha, &weights_0_1[0, 0])
            meet(waits, member)
            if member == 0:
                lap(phases, 4, mark)
            if not dense and not book:
                # weights_1_2 += alpha * (the halves' sums added up), each thread a share of the
                # rows: read by the next batch's transposes and output layer, after a barrier
                for entry in range(n_hidden * member // team * n_outputs,
                                   n_hidden * (member + 1) // team * n_outputs):
                    (&weights_1_2[0, 0])[entry] += alpha * halves_added(
                        &half_grads[0, 0], n_hidden * n_outputs, entry)
                if member == 0:
                    lap(phases, 3, mark)
            if member == 0:
                if rules.train_bias:
                    for b in range(size):
                        add_scaled(&bias_2[0], n_outputs, alpha, &delta_2[b, 0])
                        add_scaled(&bias_1[0], n_hidden, alpha, &delta_1[b, 0])
                lap(phases, 5, mark)
            start = start + size
    return error[0]


cdef bint all_finite(const floating *a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if not isfinite(a[i]):
            return False
    return True
