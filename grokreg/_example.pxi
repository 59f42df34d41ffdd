# One example, for grokreg/_kernels.pyx (included there): dropout masks, the ReLU and its gate,
# the loss and the deltas of both layers (the forward pass that strings them together is in
# _fit.pxi, per dtype).

cdef inline void draw_book_mask(Dropout *dropout, floating *mask,
                                Py_ssize_t n) noexcept nogil:
    """The book's n dropout factors (one per hidden unit, example after example), in stream
    order: np.random.randint(2) * 2, one raw 32-bit draw & 1 each, as numpy draws the book's
    mask. Drawn before the examples they serve are computed, so that examples can run in
    parallel and still consume the stream in the same order.
    """
    cdef Py_ssize_t j
    # the factor looked up by the random bit: no branch on it (mispredicted half the time)
    # and no int-to-float conversion (a dependency chain through its register)
    cdef floating factor[2]
    factor[0] = 0
    factor[1] = 2
    for j in range(n):
        mask[j] = factor[dropout.rng.next_uint32(dropout.rng.state) & 1]


cdef inline uint64_t mix64(uint64_t z) noexcept nogil:
    """SplitMix64's output function (Steele, Lea and Flood 2014): a bijection whose outputs
    over the counter z = key + k * golden gamma form the SplitMix64 stream."""
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline void keyed_mask(uint64_t key, Py_ssize_t example, double keep, floating *mask,
                            Py_ssize_t n) noexcept nogil:
    """Default mode's n dropout factors for one example of a batch: 0 drops the unit, 1 / keep
    keeps it (inverted dropout).

    The bits are SplitMix64's stream from key (one draw from the network's generator per
    batch), at the example's own place in it: any thread can draw any example's mask, in
    any order, and get the same bits. A unit is kept when its 32 bits, as an integer, are
    below keep * 2**32 (exact for keep = 0.5); two units per 64-bit output.
    """
    cdef Py_ssize_t j, pairs = (n + 1) // 2
    cdef uint64_t bits, threshold = <uint64_t> (keep * 4294967296.0)
    cdef uint64_t counter = key + <uint64_t> (example * pairs) * 0x9E3779B97F4A7C15ULL
    cdef floating kept = <floating> (1.0 / keep)
    for j in range(0, n - 1, 2):  # a select, which vectorises (a lookup did not)
        counter = counter + 0x9E3779B97F4A7C15ULL
        bits = mix64(counter)
        mask[j] = kept if <uint64_t> (<uint32_t> bits) < threshold else 0
        mask[j + 1] = kept if (bits >> 32) < threshold else 0
    if n % 2:
        bits = mix64(counter + 0x9E3779B97F4A7C15ULL)
        mask[n - 1] = kept if <uint64_t> (<uint32_t> bits) < threshold else 0


cdef inline bint keyed_bit(uint64_t key, Py_ssize_t example, Py_ssize_t n, Py_ssize_t j,
                           uint64_t threshold) noexcept nogil:
    """Whether unit j of n survives in keyed_mask(key, example, ...) (threshold = keep *
    2**32), computed alone: the input dropout of a sparse row's entries, without the mask of
    the zeros around them."""
    cdef uint64_t pairs = (n + 1) // 2
    cdef uint64_t bits = mix64(key + (<uint64_t> (example * pairs + j // 2) + 1)
                               * 0x9E3779B97F4A7C15ULL)
    if j % 2:
        bits = bits >> 32
    return (bits & 0xFFFFFFFFULL) < threshold


cdef extern from *:
    """
    /* The compaction of a row's non-zero entries (the active hidden units here, a data set's
       inputs in _sparse.pxi): with AVX2, eight float32 or four float64 at a time, moved into
       place by a permutation looked up from the mask of non-zeros; in a scalar loop each
       entry's place depends on the count so far (a chain through it, ~1.5 cycles an entry).
       The same values and units either way. */
    #include <stdint.h>
    #ifdef __AVX2__
    #include <immintrin.h>
    /* for each mask of 8 (4) lanes: the indices of its set lanes, packed, a byte each (for
       float64 two int32 halves per lane); and how many are set */
    static uint64_t grokreg_pack8[256], grokreg_pack4[16];
    static uint8_t grokreg_set_bits[256];
    static void grokreg_init_packing(void) {
        for (int m = 0; m < 256; m++) {
            uint64_t packed = 0;
            int k = 0;
            for (int b = 0; b < 8; b++)
                if (m >> b & 1) packed |= (uint64_t) b << (8 * k++);
            grokreg_pack8[m] = packed;
            grokreg_set_bits[m] = (uint8_t) k;
        }
        for (int m = 0; m < 16; m++) {
            uint64_t packed = 0;
            int k = 0;
            for (int b = 0; b < 4; b++)
                if (m >> b & 1) {
                    packed |= (uint64_t) (2 * b) << (8 * k) | (uint64_t) (2 * b + 1) << (8 * k + 8);
                    k += 2;
                }
            grokreg_pack4[m] = packed;
        }
    }
    #else
    static void grokreg_init_packing(void) {}
    #endif

    static Py_ssize_t grokreg_compact_float(const float *h, Py_ssize_t n, float *values,
                                            int32_t *units) {
        Py_ssize_t j = 0, count = 0;
    #ifdef __AVX2__
        for (; j + 8 <= n; j += 8) {  /* stores stay in the row: count <= j */
            __m256 v = _mm256_loadu_ps(h + j);
            int m = _mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NEQ_UQ));
            __m256i lanes = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long) grokreg_pack8[m]));
            _mm256_storeu_ps(values + count, _mm256_permutevar8x32_ps(v, lanes));
            _mm256_storeu_si256((__m256i *) (units + count),
                                _mm256_add_epi32(lanes, _mm256_set1_epi32((int) j)));
            count += grokreg_set_bits[m];
        }
    #endif
        for (; j < n; j++) {
            values[count] = h[j];
            units[count] = (int32_t) j;
            count += h[j] != 0;
        }
        return count;
    }

    /* the columns of a row's non-zero bytes (uint8 pixels), 32 at a time: an all-zero
       stretch (an image's margins) is skipped at once */
    static Py_ssize_t grokreg_nonzero_bytes(const uint8_t *x, Py_ssize_t n, int32_t *columns) {
        Py_ssize_t j = 0, count = 0;
    #ifdef __AVX2__
        for (; j + 32 <= n; j += 32) {  /* stores stay in the row: count <= j */
            __m256i v = _mm256_loadu_si256((const __m256i *) (x + j));
            uint32_t m = ~(uint32_t) _mm256_movemask_epi8(
                _mm256_cmpeq_epi8(v, _mm256_setzero_si256()));
            for (int part = 0; m != 0; part += 8, m >>= 8) {
                __m256i lanes = _mm256_cvtepu8_epi32(
                    _mm_cvtsi64_si128((long long) grokreg_pack8[m & 255]));
                _mm256_storeu_si256((__m256i *) (columns + count),
                                    _mm256_add_epi32(lanes, _mm256_set1_epi32((int) (j + part))));
                count += grokreg_set_bits[m & 255];
            }
        }
    #endif
        for (; j < n; j++) {
            columns[count] = (int32_t) j;
            count += x[j] != 0;
        }
        return count;
    }

    static Py_ssize_t grokreg_compact_double(const double *h, Py_ssize_t n, double *values,
                                             int32_t *units) {
        Py_ssize_t j = 0, count = 0;
    #ifdef __AVX2__
        for (; j + 4 <= n; j += 4) {
            __m256d v = _mm256_loadu_pd(h + j);
            int m = _mm256_movemask_pd(_mm256_cmp_pd(v, _mm256_setzero_pd(), _CMP_NEQ_UQ));
            __m256i halves = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long) grokreg_pack4[m]));
            _mm256_storeu_pd(values + count, _mm256_castps_pd(
                _mm256_permutevar8x32_ps(_mm256_castpd_ps(v), halves)));
            /* the units: the even halves' indices / 2, the first four of eight int32 */
            __m256i index = _mm256_srli_epi32(halves, 1);
            __m128i four = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(
                index, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7)));
            _mm_storeu_si128((__m128i *) (units + count),
                             _mm_add_epi32(four, _mm_set1_epi32((int) j)));
            count += grokreg_set_bits[m];
        }
    #endif
        for (; j < n; j++) {
            values[count] = h[j];
            units[count] = (int32_t) j;
            count += h[j] != 0;
        }
        return count;
    }
    """
    void init_packing "grokreg_init_packing"() noexcept nogil
    Py_ssize_t compact_float "grokreg_compact_float"(const float *h, Py_ssize_t n,
                                                     float *values,
                                                     int32_t *units) noexcept nogil
    Py_ssize_t compact_double "grokreg_compact_double"(const double *h, Py_ssize_t n,
                                                       double *values,
                                                       int32_t *units) noexcept nogil
    Py_ssize_t nonzero_bytes "grokreg_nonzero_bytes"(const uint8_t *x, Py_ssize_t n,
                                                     int32_t *columns) noexcept nogil

init_packing()


cdef inline Py_ssize_t compact(const floating *row, Py_ssize_t n, floating *values,
                               int32_t *columns) noexcept nogil:
    """Lists row's non-zero entries in values, with their columns; returns how many. Writes
    up to n entries (the stores past the count are scratch)."""
    if floating is float:
        return compact_float(row, n, values, columns)
    else:
        return compact_double(row, n, values, columns)


cdef void book_relu(floating *h, floating *gate, Py_ssize_t n_hidden,
                    const floating *mask) noexcept nogil:
    """activate's book mode: relu(z) = (z >= 0) * z, masked by multiplying (inf * 0 is NaN,
    as in NumPy), and the derivative relu2deriv(layer_1) = layer_1 >= 0 of the masked layer,
    in gate (times mask != 0).

    Three passes of selects and products, which the compiler vectorises: in one loop GCC
    branched on each unit (a multiply by a selected 0 or 1 is control flow to it), 5% of a
    book step. A function of its own, not inlined into every forward pass: the inlined
    loops' size changed how GCC inlined the mini-batch epoch's other calls (2% slower).
    """
    cdef Py_ssize_t j
    for j in range(n_hidden):
        gate[j] = 1 if h[j] >= 0 else 0
    if mask != NULL:
        for j in range(n_hidden):
            h[j] = gate[j] * h[j] * mask[j]
        for j in range(n_hidden):
            gate[j] = 1 if (mask[j] != 0) & (h[j] >= 0) else 0
    else:
        for j in range(n_hidden):
            h[j] = gate[j] * h[j]
        for j in range(n_hidden):
            gate[j] = 1 if h[j] >= 0 else 0


cdef inline Py_ssize_t activate(floating *h, floating *gate, Py_ssize_t n_hidden, bint book,
                                const floating *mask, bint literal, floating *active_values,
                                int32_t *active_units) noexcept nogil:
    """ReLU and dropout (mask, from draw_book_mask or keyed_mask, or NULL for none), in
    place: h holds z on entry, the layer's output on exit. Returns the number of active units
    (h[j] != 0, or every unit when literal), listed in order in active_units with their values
    in active_values: the output layer reads only their rows.

    gate[j] is what the hidden delta is multiplied by: the ReLU derivative times the dropout
    factor. The book's derivative is taken of the layer's *output* (always >= 0, so 1) and is
    computed literally, as are its relu (z >= 0) * z and its masking, so that NaN and inf
    behave as in NumPy.
    """
    cdef Py_ssize_t j
    cdef floating z, y, g, m
    if book:
        book_relu(h, gate, n_hidden, mask)
    elif mask != NULL:
        # selects only, in a loop of their own: the compiler vectorises it (a multiply inside
        # a select, or the compaction below in the same loop, made it a branch on random data)
        for j in range(n_hidden):
            z = h[j]
            m = mask[j]
            y = z if z > 0 else 0
            g = m if z > 0 else 0
            h[j] = y * m
            gate[j] = g
    else:
        for j in range(n_hidden):
            z = h[j]
            y = z if z > 0 else 0
            g = 1 if z > 0 else 0
            h[j] = y
            gate[j] = g
    if not literal:
        return compact(h, n_hidden, active_values, active_units)
    for j in range(n_hidden):
        active_values[j] = h[j]
        active_units[j] = <int32_t> j
    return n_hidden


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
                                 int loss, double *n_correct) noexcept nogil:
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
                              floating weight, floating divisor) noexcept nogil:
    """In place: out becomes (target - prediction) * weight / divisor, the book's
    (labels - layer_2) / B with weight 1 (a product by 1 changes no bit), the example's share
    of a weighted batch's mean with its sample weight and the batch's total.

    The prediction is the output itself for squared error, its softmax for cross-entropy.
    """
    cdef Py_ssize_t c
    cdef double largest, normaliser
    if loss == SOFTMAX_CROSS_ENTROPY:
        normaliser = log_sum_exp(out, n_outputs, &largest)
        for c in range(n_outputs):
            out[c] = <floating> exp(out[c] - largest - normaliser)
    for c in range(n_outputs):
        out[c] = (((<floating> 1 if c == label else <floating> 0) - out[c]) * weight) / divisor


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
