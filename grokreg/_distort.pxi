# Distortions of images (grokreg.distortions): a displacement field per image, affine and
# elastic (Simard, Steinkraus and Platt 2003), applied with bilinear interpolation. Written
# for _kernels.pyx (included there).
#
# Each image's random numbers are SplitMix64's stream from one key (a 64-bit draw from the
# network's generator per epoch, or from apply's seed) at the image's own place in it, as the
# dropout masks are: any thread distorts any image and gets the same numbers. Per image,
# DRAWS_BEFORE_FIELD outputs for the affine parameters, then one output per pixel whose low
# and high 32 bits are the elastic field's two components there.

cdef enum:
    DRAWS_BEFORE_FIELD = 3  # six 32-bit uniforms: rotation, scale x, scale y, shear, shift x, y


ctypedef fused pixels:
    uint8_t
    float
    double


cdef struct Warp:
    Py_ssize_t height, width
    # affine: the largest rotation (radians), relative scaling, shear and shift (pixels)
    bint affine
    double rotation, scale, shear, translation
    # elastic: the field's scale (pixels) and its smoothing: a banded (height, height) matrix
    # of the Gaussian's weights with its reach in rows (radius), and the (width, width) one
    # transposed, its rows padded with zeros to the fields' stride
    bint elastic
    double alpha
    const double *smooth_rows
    const double *smooth_columns
    # the fields' rows: the width rounded up to 8 (whole vectors); the Gaussian's reach
    Py_ssize_t stride, radius


cdef inline double uniform32(uint32_t bits) noexcept nogil:
    """A uniform number in (-1, 1) from 32 random bits (never an end: bits + 0.5)."""
    return (<double> bits + 0.5) * (2.0 / 4294967296.0) - 1.0


cdef inline uint64_t image_draw(uint64_t key, Py_ssize_t image, Py_ssize_t n_pixels,
                                Py_ssize_t k) noexcept nogil:
    """Output k of the image's stretch of the stream from key."""
    cdef uint64_t place = <uint64_t> image * <uint64_t> (n_pixels + DRAWS_BEFORE_FIELD) + k + 1
    return mix64(key + place * 0x9E3779B97F4A7C15ULL)


cdef extern from *:
    """
    #include <stddef.h>
    /* The row pass of an elastic field's smoothing, out = g . in for both components (g:
       rows x rows, banded within radius; in, out: rows of `stride` numbers, the first
       `width` of them the field's): each output row is summed in local arrays of WIDTH
       numbers, which the compiler keeps in vector registers when WIDTH is a constant. */
    #define GROKREG_SMOOTH_ROWS(NAME, WIDTH)                                                 \
    static void NAME(const double *restrict g, const double *restrict in_x,                  \
                     const double *restrict in_y, double *restrict out_x,                    \
                     double *restrict out_y, ptrdiff_t rows, ptrdiff_t width,                \
                     ptrdiff_t stride, ptrdiff_t radius) {                                    \
        for (ptrdiff_t r = 0; r < rows; r++) {                                               \
            double sum_x[WIDTH], sum_y[WIDTH];                                               \
            for (ptrdiff_t c = 0; c < WIDTH; c++) { sum_x[c] = 0; sum_y[c] = 0; }           \
            ptrdiff_t first = r > radius ? r - radius : 0;                                   \
            ptrdiff_t last = r + radius < rows ? r + radius : rows - 1;                      \
            for (ptrdiff_t k = first; k <= last; k++) {                                      \
                double weight = g[r * rows + k];                                             \
                for (ptrdiff_t c = 0; c < WIDTH; c++) {                                      \
                    sum_x[c] += weight * in_x[k * stride + c];                               \
                    sum_y[c] += weight * in_y[k * stride + c];                               \
                }                                                                             \
            }                                                                                 \
            for (ptrdiff_t c = 0; c < WIDTH; c++) {                                          \
                out_x[r * stride + c] = sum_x[c];                                            \
                out_y[r * stride + c] = sum_y[c];                                            \
            }                                                                                 \
        }                                                                                     \
    }

    /* The column pass, out = in . g^T for both components (g: width x width, given here
       transposed as g_t, its rows `stride` numbers apart): each output row r is the sum
       over k of in[r, k] times g_t's row k, WIDTH columns at a time, without transposing
       the field. Its terms outside the Gaussian's band are products with zero weights,
       which leave every sum as it was (a sum starts at +0, and +0 + -0 is +0): the banded
       filter's sums, in the same order. */
    #define GROKREG_SMOOTH_COLUMNS(NAME, WIDTH)                                              \
    static void NAME(const double *restrict g_t, const double *restrict in_x,                \
                     const double *restrict in_y, double *restrict out_x,                    \
                     double *restrict out_y, ptrdiff_t rows, ptrdiff_t width,                \
                     ptrdiff_t stride) {                                                      \
        for (ptrdiff_t r = 0; r < rows; r++) {                                               \
            double sum_x[WIDTH], sum_y[WIDTH];                                               \
            for (ptrdiff_t c = 0; c < WIDTH; c++) { sum_x[c] = 0; sum_y[c] = 0; }           \
            for (ptrdiff_t k = 0; k < WIDTH; k++) {                                          \
                double value_x = in_x[r * stride + k], value_y = in_y[r * stride + k];       \
                for (ptrdiff_t c = 0; c < WIDTH; c++) {                                      \
                    sum_x[c] += g_t[k * stride + c] * value_x;                               \
                    sum_y[c] += g_t[k * stride + c] * value_y;                               \
                }                                                                             \
            }                                                                                 \
            for (ptrdiff_t c = 0; c < WIDTH; c++) {                                          \
                out_x[r * stride + c] = sum_x[c];                                            \
                out_y[r * stride + c] = sum_y[c];                                            \
            }                                                                                 \
        }                                                                                     \
    }
    /* MNIST's width as a constant, and any width */
    GROKREG_SMOOTH_ROWS(grokreg_smooth_rows_28, 28)
    GROKREG_SMOOTH_ROWS(grokreg_smooth_rows_any, width)
    GROKREG_SMOOTH_COLUMNS(grokreg_smooth_columns_28, 28)
    GROKREG_SMOOTH_COLUMNS(grokreg_smooth_columns_any, width)

    /* Both components of an elastic field smoothed, field = G_rows . field . G_columns^T,
       the row pass into `through` and the column pass back into `field`. */
    static void grokreg_smooth_fields(const double *restrict g_rows,
                                      const double *restrict g_columns_t,
                                      double *restrict field_x, double *restrict field_y,
                                      double *restrict through_x, double *restrict through_y,
                                      ptrdiff_t height, ptrdiff_t width, ptrdiff_t stride,
                                      ptrdiff_t radius) {
        if (width == 28) {
            grokreg_smooth_rows_28(g_rows, field_x, field_y, through_x, through_y, height,
                                   width, stride, radius);
            grokreg_smooth_columns_28(g_columns_t, through_x, through_y, field_x, field_y,
                                      height, width, stride);
        } else {
            grokreg_smooth_rows_any(g_rows, field_x, field_y, through_x, through_y, height,
                                    width, stride, radius);
            grokreg_smooth_columns_any(g_columns_t, through_x, through_y, field_x, field_y,
                                       height, width, stride);
        }
    }

    /* Bilinear sampling of the image `padded` (a border of zeros: rows -1 to height + 1 and
       columns -1 to width + 1 at (row + 1) * (width + 3) + column + 1) at each pixel's source,
       the affine map m (m00, m01, m10, m11, shift x, shift y) of its offset from the image's
       centre plus alpha times the elastic field there (field_x NULL: none). A row's pixels
       are independent: the loop over them vectorises, gathers included (one loop with the
       field and one without: a load under a condition would not). It runs over whole
       vectors, the field's stride (zeros beyond the width), into `line`, of which the
       width is copied out: a remainder loop would cost as much as the vectors. */
    #define GROKREG_SAMPLE_ROW(T, FIELD_TERM_X, FIELD_TERM_Y)                                \
        for (int c = 0; c < (int) field_stride; c++) {                                       \
            double x = (double) c - centre_c;                                                \
            double source_x = centre_c + m00 * x + m01 * y + shift_x FIELD_TERM_X;          \
            double source_y = centre_r + m10 * x + m11 * y + shift_y FIELD_TERM_Y;          \
            /* beyond the border every neighbour is zero: the clamped point reads it */      \
            source_x = source_x < -1.0 ? -1.0 : source_x;                                    \
            source_x = source_x > right ? right : source_x;                                  \
            source_y = source_y < -1.0 ? -1.0 : source_y;                                    \
            source_y = source_y > bottom ? bottom : source_y;                                \
            /* floor as truncation, one less below zero: vectorises where floor() does    \
               not, and is exact */                                                          \
            int column = (int) source_x, row = (int) source_y;                               \
            column -= source_x < (double) column;                                            \
            row -= source_y < (double) row;                                                  \
            double fx = source_x - (double) column, fy = source_y - (double) row;            \
            int at = (row + 1) * stride + column + 1;                                        \
            line[c] = (T) ((1 - fy) * ((1 - fx) * padded[at] + fx * padded[at + 1])          \
                           + fy * ((1 - fx) * padded[at + stride]                            \
                                   + fx * padded[at + stride + 1]));                         \
        }                                                                                     \
        for (ptrdiff_t c = 0; c < width; c++) {                                              \
            out[r * width + c] = line[c];                                                    \
        }
    #define GROKREG_SAMPLE(NAME, T)                                                          \
    static void NAME(const double *restrict padded, ptrdiff_t height, ptrdiff_t width,      \
                     const double *restrict m, double alpha,                                 \
                     const double *restrict field_x, const double *restrict field_y,         \
                     ptrdiff_t field_stride, T *restrict line, T *restrict out) {             \
        const int stride = (int) width + 3;                                                  \
        const double centre_r = (height - 1) * 0.5, centre_c = (width - 1) * 0.5;           \
        const double m00 = m[0], m01 = m[1], m10 = m[2], m11 = m[3];                        \
        const double shift_x = m[4], shift_y = m[5];                                         \
        const double right = (double) width, bottom = (double) height;                      \
        for (ptrdiff_t r = 0; r < height; r++) {                                             \
            const double y = (double) r - centre_r;                                          \
            const double *restrict row_x = field_x ? field_x + r * field_stride : NULL;     \
            const double *restrict row_y = field_y + r * field_stride;                      \
            if (row_x) {                                                                     \
                GROKREG_SAMPLE_ROW(T, + alpha * row_x[c], + alpha * row_y[c])               \
            } else {                                                                         \
                GROKREG_SAMPLE_ROW(T, , )                                                    \
            }                                                                                 \
        }                                                                                     \
    }
    GROKREG_SAMPLE(grokreg_sample_f32, float)
    GROKREG_SAMPLE(grokreg_sample_f64, double)
    """
    void smooth_fields "grokreg_smooth_fields"(
        const double *g_rows, const double *g_columns_t, double *field_x,
        double *field_y, double *through_x, double *through_y, Py_ssize_t height,
        Py_ssize_t width, Py_ssize_t stride, Py_ssize_t radius) noexcept nogil
    void sample_f32 "grokreg_sample_f32"(
        const double *padded, Py_ssize_t height, Py_ssize_t width, const double *m,
        double alpha, const double *field_x, const double *field_y, Py_ssize_t field_stride,
        float *line, float *out) noexcept nogil
    void sample_f64 "grokreg_sample_f64"(
        const double *padded, Py_ssize_t height, Py_ssize_t width, const double *m,
        double alpha, const double *field_x, const double *field_y, Py_ssize_t field_stride,
        double *line, double *out) noexcept nogil


cdef void distort_one(const Warp *warp, const pixels *image, const double *values,
                      floating *out, uint64_t key, Py_ssize_t index,
                      double *scratch) noexcept nogil:
    """One image distorted into out (height * width): each pixel takes the bilinear
    interpolation of the image at its source, zero outside the image; the source is the
    affine map of the pixel about the image's centre, plus the elastic field there."""
    cdef Py_ssize_t height = warp.height, width = warp.width, n = height * width
    cdef Py_ssize_t field_stride = warp.stride, size = height * field_stride
    cdef Py_ssize_t r, c, p, stride = width + 3
    cdef double *field_x = scratch
    cdef double *field_y = scratch + size
    # the image with a border of zeros: rows -1 to height + 1, columns -1 to width + 1, so
    # that interpolation reads zeros outside the image without a test
    cdef double *padded = scratch + 4 * size
    cdef uint64_t bits
    cdef double u[6]
    # M = rotation . shear . scaling, mapping a pixel's offset from the centre to its
    # source's: x (columns) first, as image coordinates are written; then the shift
    cdef double m[6]
    cdef double cosine, sine
    m[0], m[1], m[2], m[3], m[4], m[5] = 1, 0, 0, 1, 0, 0
    for c in range(stride):
        padded[c] = 0
        padded[(height + 1) * stride + c] = 0
        padded[(height + 2) * stride + c] = 0
    for r in range(height):
        padded[(r + 1) * stride] = 0
        padded[(r + 1) * stride + width + 1] = 0
        padded[(r + 1) * stride + width + 2] = 0
        for c in range(width):
            if pixels is uint8_t:
                padded[(r + 1) * stride + c + 1] = values[image[r * width + c]]
            else:
                padded[(r + 1) * stride + c + 1] = image[r * width + c]
    if warp.affine:
        for p in range(3):
            bits = image_draw(key, index, n, p)
            u[2 * p] = uniform32(<uint32_t> bits)
            u[2 * p + 1] = uniform32(<uint32_t> (bits >> 32))
        cosine = cos(warp.rotation * u[0])
        sine = sin(warp.rotation * u[0])
        m[0] = cosine * (1 + warp.scale * u[1])
        m[1] = (cosine * warp.shear * u[3] - sine) * (1 + warp.scale * u[2])
        m[2] = sine * (1 + warp.scale * u[1])
        m[3] = (sine * warp.shear * u[3] + cosine) * (1 + warp.scale * u[2])
        m[4] = warp.translation * u[4]
        m[5] = warp.translation * u[5]
    if warp.elastic:
        for r in range(height):
            for c in range(width):
                bits = image_draw(key, index, n, DRAWS_BEFORE_FIELD + r * width + c)
                field_x[r * field_stride + c] = uniform32(<uint32_t> bits)
                field_y[r * field_stride + c] = uniform32(<uint32_t> (bits >> 32))
            for c in range(width, field_stride):  # sampled beyond the width, never used
                field_x[r * field_stride + c] = 0
                field_y[r * field_stride + c] = 0
        smooth_fields(warp.smooth_rows, warp.smooth_columns, field_x, field_y,
                      scratch + 2 * size, scratch + 3 * size, height, width, field_stride,
                      warp.radius)
    # one row of the sampling, whole vectors
    cdef floating *line = <floating *> (padded + (height + 3) * stride)
    if floating is float:
        sample_f32(padded, height, width, m, warp.alpha, field_x if warp.elastic else NULL,
                   field_y, field_stride, line, out)
    else:
        sample_f64(padded, height, width, m, warp.alpha, field_x if warp.elastic else NULL,
                   field_y, field_stride, line, out)


def distort(const pixels[:, ::1] x not None, floating[:, ::1] out not None, uint64_t key, *,
            Py_ssize_t height, Py_ssize_t width, double rotation=0, double scale=0,
            double shear=0, double translation=0, double alpha=0, smooth_rows=None,
            smooth_columns=None, Py_ssize_t radius=0, values=None, int n_threads=1,
            Py_ssize_t first_index=0, int64_t[::1] counts=None):
    """Distorted copies of x's images (rows of height * width pixels) into out, image i's
    numbers from key at place first_index + i. uint8 pixels stand for values[pixel] (their
    values in the network's dtype, as Dataset's); other inputs are used as given. The affine
    part is on where any of its ranges is non-zero, the elastic where smooth_rows is given
    (Gaussian weight matrices from grokreg.distortions, with their radius). counts, if given,
    receives each distorted image's number of non-zero pixels (for Dataset, which then need
    not read the images again to count them)."""
    cdef Py_ssize_t n = x.shape[0], n_pixels = height * width, i
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be >= 1, got {height} and {width}")
    if x.shape[1] != n_pixels or out.shape[1] != n_pixels:
        raise ValueError(f"x and out must have {n_pixels} columns (height * width), got "
                         f"{x.shape[1]} and {out.shape[1]}")
    if out.shape[0] != n:
        raise ValueError(f"out must have x's {n} rows, got {out.shape[0]}")
    if counts is not None and counts.shape[0] != n:
        raise ValueError(f"counts must have x's {n} entries, got {counts.shape[0]}")
    cdef bint counting = counts is not None
    cdef int64_t[::1] counted = counts if counting else np.empty(1, dtype=np.int64)
    cdef int64_t row_count
    cdef Py_ssize_t k
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    if (height + 3) * (width + 3) > INT32_MAX:  # the sampling's indices are int
        raise ValueError(f"images of {height} x {width} pixels are too large to distort")
    cdef double[::1] table = np.zeros(256)
    if pixels is uint8_t:
        if values is None or len(values) != 256:
            raise ValueError("uint8 pixels need values, the 256 values they stand for")
        table = np.ascontiguousarray(values, dtype=np.float64)
    cdef Warp warp
    warp.height, warp.width = height, width
    warp.rotation, warp.scale, warp.shear, warp.translation = rotation, scale, shear, translation
    warp.affine = rotation != 0 or scale != 0 or shear != 0 or translation != 0
    warp.elastic = smooth_rows is not None
    warp.alpha, warp.radius = alpha, radius
    warp.stride = (width + 7) // 8 * 8
    cdef double[:, ::1] rows_matrix = np.zeros((1, 1))
    cdef double[:, ::1] columns_matrix = np.zeros((1, 1))
    if warp.elastic:
        rows_matrix = np.ascontiguousarray(smooth_rows, dtype=np.float64)
        if (rows_matrix.shape[0] != height or rows_matrix.shape[1] != height
                or np.shape(smooth_columns) != (width, width)):
            raise ValueError(f"smooth_rows and smooth_columns must be ({height}, {height}) "
                             f"and ({width}, {width})")
        padded_columns = np.zeros((width, warp.stride))
        padded_columns[:, :width] = np.transpose(smooth_columns)
        columns_matrix = padded_columns
        if radius < 0:
            raise ValueError(f"radius must be >= 0, got {radius}")
    warp.smooth_rows = &rows_matrix[0, 0]
    warp.smooth_columns = &columns_matrix[0, 0]
    cdef Py_ssize_t offset = first_index
    # per thread: two fields and their two copies in passing, each of height rows of stride
    # numbers; the padded image; a row of the sampling
    cdef double[:, ::1] scratch = np.empty(
        (n_threads, 4 * height * warp.stride + (height + 3) * (width + 3) + warp.stride))
    cdef int thread = 0  # set by each thread; initialised for the compiler
    if n == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        thread = threadid()
        for i in prange(n, schedule="static"):
            distort_one(&warp, &x[i, 0], &table[0], &out[i, 0], key, offset + i,
                        &scratch[thread, 0])
            if counting:  # the row just written, still in the cache
                row_count = 0
                for k in range(n_pixels):
                    row_count = row_count + (out[i, k] != 0)
                counted[i] = row_count


def distortion_draws(uint64_t key, Py_ssize_t index, Py_ssize_t n_pixels):
    """The uniform numbers in (-1, 1) that distort image index from key: the six affine ones
    (rotation, scale x, scale y, shear, shift x, shift y) and the elastic field's x and y
    components (n_pixels each), as distort draws them (for tests and references)."""
    affine = np.empty(6)
    field = np.empty((2, n_pixels))
    cdef Py_ssize_t k
    cdef uint64_t bits
    for k in range(3):
        bits = image_draw(key, index, n_pixels, k)
        affine[2 * k] = uniform32(<uint32_t> bits)
        affine[2 * k + 1] = uniform32(<uint32_t> (bits >> 32))
    for k in range(n_pixels):
        bits = image_draw(key, index, n_pixels, DRAWS_BEFORE_FIELD + k)
        field[0, k] = uniform32(<uint32_t> bits)
        field[1, k] = uniform32(<uint32_t> (bits >> 32))
    return affine, field
