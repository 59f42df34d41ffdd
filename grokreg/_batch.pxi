# A mini-batch regrouped, for grokreg/_kernels.pyx (included there): the counting sort that
# groups a batch's entries by input (or by hidden unit), the runs of inputs and halves of the
# batch that fix each sum's order whatever the number of threads, and the row sums of the
# regrouped entries that update a layer. Both layouts use them: the sparse layout for its
# rows, the dense layout for the runs of inputs, and both for the second layer.


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
    # cores (split by examples, every row the batch touched would be read by both cores and
    # written by one, each batch: a third slower at 2 threads).
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


cdef void add_outer_batch(floating *weights, Py_ssize_t n_rows, Py_ssize_t n_cols,
                          floating alpha, const floating *h, Py_ssize_t h_step,
                          const floating *delta, Py_ssize_t size) noexcept nogil:
    """weights += alpha * (h[b] outer delta[b]) for b < size (h's rows h_step apart, delta's
    n_cols), every unit (zeros too), in b's order for every entry: the dense updates of book
    mode's replay of a diverging epoch."""
    cdef Py_ssize_t j, b, c
    cdef floating hj
    for j in range(n_rows):
        for b in range(size):
            hj = h[b * h_step + j]
            for c in range(n_cols):
                weights[j * n_cols + c] += alpha * (hj * delta[b * n_cols + c])


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
