"""The compiled kernels against plain NumPy, in float64 and float32, and against finite differences."""
import io
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import grokreg
import numpy_model as model
from grokreg._dispatch import kernels as _kernels  # the build this CPU runs (see test_dispatch)
from grokreg.network import padded_width

TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}
DTYPES = [np.float64, np.float32]
MSE, CE = _kernels.Loss.SQUARED_ERROR, _kernels.Loss.SOFTMAX_CROSS_ENTROPY
LOSS_CODES = {"mse": MSE, "softmax_cross_entropy": CE}


def rows(x):
    """x as sparse rows (data, indices, indptr): the kernels' first three arguments."""
    return _kernels.sparse_rows(np.ascontiguousarray(x))


def with_biases(w01, w12, b1=None, b2=None):
    """The kernels' four parameter arrays (zero biases unless given)."""
    b1 = np.zeros(w01.shape[1], w01.dtype) if b1 is None else b1
    b2 = np.zeros(w12.shape[1], w12.dtype) if b2 is None else b2
    return w01, b1, w12, b2


def outputs_of(x, w01, w12, b1=None, b2=None):
    outputs = np.empty((len(x), w12.shape[1]), dtype=w12.dtype)
    _kernels.evaluate(*rows(x.astype(w12.dtype)), None, *with_biases(w01, w12, b1, b2), MSE,
                      None, outputs)
    return outputs


def random_weights(n_inputs, n_hidden, n_outputs, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    w01 = (0.2 * rng.random((n_inputs, n_hidden)) - 0.1).astype(dtype)
    w12 = (0.2 * rng.random((n_hidden, n_outputs)) - 0.1).astype(dtype)
    return w01, w12


def test_sparse_rows(sparse_data):
    x, _ = sparse_data
    data, indices, indptr = _kernels.sparse_rows(x)
    row_of, columns = np.nonzero(x)
    assert np.array_equal(indices, columns) and indices.dtype == np.uint16
    assert np.array_equal(data, x[row_of, columns])
    assert np.array_equal(indptr, np.concatenate([[0], np.cumsum(np.bincount(row_of, minlength=len(x)))]))
    assert [len(a) for a in _kernels.sparse_rows(np.zeros((3, 5)))] == [0, 0, 4]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_inputs", [1, 7, 32, 45, 100, 784])  # whole vectors, tails, or both
def test_sparse_conversions_list_exactly_the_nonzeros(dtype, n_inputs):
    """Rows wide enough for the vectorised compaction: NumPy's non-zeros, in order (-0.0 is a
    zero, NaN is not), from floats and from uint8 pixels; all-zero stretches and rows too."""
    rng = np.random.default_rng(n_inputs)
    pixels = rng.integers(1, 256, size=(25, n_inputs)).astype(np.uint8)
    pixels[rng.random(pixels.shape) < 0.7] = 0
    pixels[3] = 0
    pixels[4, : n_inputs // 2] = 0
    pixels[5] = 255
    table = np.divide(np.arange(256, dtype=np.uint8), 255, dtype=dtype)
    x = table[pixels]
    x[6, ::3] = -0.0
    x[7, ::5] = np.nan
    for convert, source in ((_kernels.sparse_rows, x), (_kernels.sparse_pixels, pixels)):
        data, indices, indptr = (convert(source) if convert is _kernels.sparse_rows
                                 else convert(source, table))
        dense = x if convert is _kernels.sparse_rows else table[pixels]
        row_of, columns = np.nonzero(dense)
        assert np.array_equal(indices, columns)
        assert np.array_equal(data, dense[row_of, columns], equal_nan=True)
        assert np.array_equal(indptr, np.searchsorted(row_of, np.arange(len(x) + 1)))


@pytest.mark.parametrize("n_inputs, column_type", [(65_536, np.uint16), (65_537, np.int32)])
def test_sparse_columns_are_16_bit_where_every_column_fits(n_inputs, column_type):
    x = np.zeros((2, n_inputs))
    x[0, -1] = x[1, 3] = 0.5
    assert _kernels.column_dtype(n_inputs) == column_type
    for indices in (_kernels.sparse_rows(x)[1], _kernels.sparse_pixels((2 * x).astype(np.uint8),
                                                                        np.arange(256.0))[1]):
        assert indices.dtype == column_type and list(indices) == [n_inputs - 1, 3]


@pytest.mark.parametrize("shape, dtype", [((784, 104), np.float32), ((3, 40), np.float64),
                                          (10, np.float64), ((0, 5), np.float32)])
def test_aligned_arrays_start_on_a_cache_line(shape, dtype):
    source = np.random.default_rng(0).random(shape)
    made = (_kernels.aligned_empty(shape, dtype), _kernels.aligned_zeros(shape, dtype),
            _kernels.aligned_copy(source, dtype))
    for array in made:
        assert array.size == 0 or array.ctypes.data % _kernels.ALIGNMENT == 0
        assert array.shape == source.shape and array.dtype == dtype
        assert array.flags.c_contiguous and array.flags.writeable
    assert not made[1].any()
    assert np.array_equal(made[2], source.astype(dtype))
    with pytest.raises(ValueError, match="negative dimensions"):
        _kernels.aligned_empty((-1, 5), dtype)


@pytest.mark.parametrize("dtype, batch_size, keep, book", [
    (np.float64, 1, 0.5, True), (np.float64, 10, 1.0, True),  # book mode is float64
    *[(dtype, batch_size, 0.5, False) for dtype in DTYPES for batch_size in (1, 10)]])
def test_16_and_32_bit_columns_compute_the_same_bits(dtype, batch_size, keep, book):
    """The kernels read uint16 columns (up to 65,536 inputs) and int32 ones (wider data) alike."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, size=(60, 50)).astype(np.uint8)
    pixels[pixels < 190] = 0
    labels = rng.integers(0, 10, size=60).astype(np.int64)
    narrow = _kernels.sparse_pixels(pixels, np.divide(np.arange(256), 255, dtype=dtype))
    wide = (narrow[0], narrow[1].astype(np.int32), narrow[2])
    start = [(0.2 * rng.random((50, 8)) - 0.1).astype(dtype), np.zeros(8, dtype),
             (0.2 * rng.random((8, 10)) - 0.1).astype(dtype), np.zeros(10, dtype)]
    results = []
    for rows in (narrow, wide):
        parameters = [p.copy() for p in start]
        bit_generator = np.random.MT19937(1) if book else np.random.PCG64(1)
        epochs = [_kernels.train_epoch(*rows, labels, np.arange(60, dtype=np.int64), *parameters,
                                       0.01, batch_size, book, keep, bit_generator)
                  for _ in range(2)]
        outputs = np.empty((60, 10), dtype)
        evaluation = _kernels.evaluate(*rows, labels, *parameters, outputs=outputs)
        results.append((epochs, evaluation, [p.tobytes() for p in parameters], outputs.tobytes()))
    assert results[0] == results[1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_shuffled_order_trains_as_the_rows_stored_in_that_order(dtype, n_threads):
    """A batch whose rows are scattered is gathered first (copy_rows), one in place is
    read there: either way the same bits as the examples stored in training order."""
    rng = np.random.default_rng(11)
    pixels = rng.integers(0, 256, size=(125, 50)).astype(np.uint8)
    pixels[pixels < 190] = 0
    labels = rng.integers(0, 10, size=125).astype(np.int64)
    order = np.concatenate([np.arange(20, 30), 30 + rng.permutation(95), rng.permutation(20)])
    table = np.divide(np.arange(256), 255, dtype=dtype)
    start = [(0.2 * rng.random((50, 8)) - 0.1).astype(dtype), np.zeros(8, dtype),
             (0.2 * rng.random((8, 10)) - 0.1).astype(dtype), np.zeros(10, dtype)]
    results = []
    for rows, y, visits in ((_kernels.sparse_pixels(pixels, table), labels, order),
                            (_kernels.sparse_pixels(pixels[order], table), labels[order],
                             np.arange(125))):
        parameters = [p.copy() for p in start]
        epoch = _kernels.train_epoch(*rows, y, visits.astype(np.int64), *parameters, 0.05, 10,
                                     False, 0.5, np.random.PCG64(2), n_threads=n_threads)
        results.append((epoch, [p.tobytes() for p in parameters]))
    assert results[0] == results[1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keep_zeros", [False, True])
def test_sparse_pixels_are_the_sparse_rows_of_the_scaled_images(dtype, keep_zeros):
    """uint8 pixels through a 256-entry table give the rows of the dense scaled images, bit for bit."""
    pixels = np.random.default_rng(5).integers(0, 256, size=(30, 20)).astype(np.uint8)
    pixels[pixels < 200] = 0  # MNIST-like sparsity
    table = np.divide(np.arange(256, dtype=np.uint8), 255, dtype=dtype)
    found = _kernels.sparse_pixels(pixels, table, keep_zeros)
    expected = _kernels.sparse_rows(np.divide(pixels, 255, dtype=dtype), keep_zeros)
    assert found[0].dtype == dtype
    for a, b in zip(found, expected):
        assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="256 entries"):
        _kernels.sparse_pixels(pixels, table[:255])


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_matches_numpy(sparse_data, dtype):
    x, _ = sparse_data
    w01, w12 = random_weights(30, 7, 4, dtype=dtype)
    _, _, out = model.forward(x.astype(dtype).astype(np.float64), w01.astype(np.float64),
                              w12.astype(np.float64))
    np.testing.assert_allclose(outputs_of(x, w01, w12), out, rtol=TOLERANCE[dtype],
                               atol=TOLERANCE[dtype])


def test_skipping_zeros_is_bit_identical_to_the_dense_sums(sparse_data):
    """Sparse layers equal dense sums taken in index order, zeros included, to the last bit."""
    x, _ = sparse_data
    w01, w12 = random_weights(30, 37, 4)  # 37 = 16 + 16 + 4 + 1: every block width but 8 and 2
    hidden = np.zeros((len(x), 37))
    for k in range(x.shape[1]):  # every input, zeros included, in order
        hidden += x[:, k:k + 1] * w01[k]
    hidden = np.maximum(hidden, 0)
    out = np.zeros((len(x), 4))
    for j in range(37):
        out += hidden[:, j:j + 1] * w12[j]
    assert np.array_equal(outputs_of(x, w01, w12), out)
    assert np.array_equal(outputs_of(np.zeros((2, 30)), w01, w12), np.zeros((2, 4)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ["mse", "softmax_cross_entropy"])
def test_evaluate_matches_numpy(sparse_data, dtype, loss):
    x, labels = sparse_data
    w01, w12 = random_weights(30, 7, 4, dtype=dtype)
    b1, b2 = (np.linspace(-0.1, 0.1, n).astype(dtype) for n in (7, 4))
    predictions = np.empty(len(x), dtype=np.int64)
    error, correct = _kernels.evaluate(*rows(x.astype(dtype)), labels, w01, b1, w12, b2,
                                       LOSS_CODES[loss], predictions)
    _, _, out = model.forward(x.astype(dtype).astype(np.float64), w01.astype(np.float64),
                              w12.astype(np.float64), b1=b1.astype(np.float64),
                              b2=b2.astype(np.float64))
    assert error == pytest.approx(np.sum(model.example_losses(out, labels, loss)),
                                  rel=TOLERANCE[dtype])
    assert np.array_equal(predictions, out.argmax(axis=1))
    assert correct == int(np.sum(out.argmax(axis=1) == labels))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_size", [1, 8, 40, 15, 13])  # 15, 13: a smaller last batch (of 1)
@pytest.mark.parametrize("keep", [1.0, 0.7])
@pytest.mark.parametrize("loss, bias", [("mse", False), ("mse", True),
                                        ("softmax_cross_entropy", True)])
def test_default_epoch_matches_numpy(sparse_data, dtype, batch_size, keep, loss, bias):
    x, labels = sparse_data
    params = list(with_biases(*random_weights(30, 7, 4, dtype=dtype)))
    reference = [p.astype(np.float64) for p in params]
    for epoch in range(3):
        # epoch 0 in data order, then shuffled orders
        order = np.random.default_rng(epoch).permutation(len(x)) if epoch else np.arange(len(x))
        error, correct, seen, finite = _kernels.train_epoch(
            *rows(x.astype(dtype)), labels, order.astype(np.int64), *params, 0.05, batch_size,
            False, keep, np.random.PCG64(epoch), LOSS_CODES[loss], bias)
        ref_error, ref_correct = model.train_epoch(
            x[order].astype(dtype).astype(np.float64), labels[order], reference, 0.05,
            batch_size, keep, np.random.PCG64(epoch), loss, bias)
        assert (seen, finite, correct) == (len(x), True, ref_correct)
        assert error == pytest.approx(ref_error, rel=10 * TOLERANCE[dtype])
    for found, expected in zip(params, reference):
        np.testing.assert_allclose(found, expected, rtol=10 * TOLERANCE[dtype],
                                   atol=10 * TOLERANCE[dtype])
    assert bias or not (params[1].any() or params[3].any())  # biases stay zero when off


def sgd_in_kernel_order(x, labels, w01, w12, alpha):
    """Per-example steps (default mode, squared error, no dropout or biases) with every sum
    taken in the kernels' order, one product and one sum at a time: the same bits as the
    kernels, whatever order they visit rows and columns in."""
    alpha = w01.dtype.type(alpha)
    for example, label in zip(x, labels):
        inputs = np.flatnonzero(example)
        z = np.zeros(w01.shape[1], w01.dtype)
        for i in inputs:
            z = z + example[i] * w01[i]
        h = np.where(z > 0, z, 0).astype(w01.dtype)
        out = np.zeros(w12.shape[1], w01.dtype)
        for j in np.flatnonzero(h):
            out = out + h[j] * w12[j]
        delta_2 = (np.arange(w12.shape[1]) == label).astype(w01.dtype) - out
        delta_1 = np.zeros(w01.shape[1], w01.dtype)
        for c in range(w12.shape[1]):
            delta_1 = delta_1 + delta_2[c] * w12[:, c]
        delta_1 = delta_1 * (z > 0).astype(w01.dtype)
        for j in np.flatnonzero(h):
            w12[j] = w12[j] + alpha * (h[j] * delta_2)
        for i in inputs:
            w01[i] = w01[i] + alpha * (example[i] * delta_1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_hidden", [40, 100, 37])  # one block; two; vectors and a remainder
def test_per_example_steps_are_bit_identical_to_sums_in_order(dtype, n_hidden):
    """The first-layer update visits its rows and blocks of columns last to first (for the
    cache): as the rows are distinct, no bit may change."""
    rng = np.random.default_rng(7)
    x = (rng.random((60, 200)) * (rng.random((60, 200)) < 0.4)).astype(dtype)
    labels = rng.integers(0, 10, size=60)
    w01, w12 = random_weights(200, n_hidden, 10, seed=3, dtype=dtype)
    initial, expected = w01.copy(), [w01.copy(), w12.copy()]
    params = list(with_biases(w01, w12))
    _kernels.train_epoch(*rows(x), labels, np.arange(60, dtype=np.int64), *params, 0.01, 1,
                         False, 1.0, np.random.PCG64(0), MSE, False)
    sgd_in_kernel_order(x, labels, *expected, 0.01)
    assert not np.array_equal(params[0], initial)
    assert np.array_equal(params[0], expected[0]) and np.array_equal(params[2], expected[1])


@pytest.mark.parametrize("keep", [1.0, 0.6])
@pytest.mark.parametrize("loss", ["mse", "softmax_cross_entropy"])
def test_update_is_the_gradient_by_central_differences(keep, loss):
    """One full-batch step moves every parameter by -alpha * dL/dparameter (L the mean loss)."""
    rng = np.random.default_rng(3)
    x = rng.random((12, 6)) * (rng.random((12, 6)) < 0.6)
    labels = rng.integers(0, 3, size=12)
    w01, w12 = random_weights(6, 5, 3, seed=4)
    w01 *= 5  # larger pre-activations keep ReLU away from its kink under perturbation
    params = [w01, rng.normal(0, 0.1, 5), w12, rng.normal(0, 0.1, 3)]
    mask = model.dropout_masks(np.random.PCG64(9), (12, 5), keep)
    before = [p.copy() for p in params]
    alpha = 1e-3
    _kernels.train_epoch(*rows(x), labels, np.arange(12, dtype=np.int64), *params, alpha, 12,
                         False, keep, np.random.PCG64(9), LOSS_CODES[loss], True)

    def objective(w01, b1, w12, b2):
        return model.batch_loss(x, labels, w01, w12, mask, 1 / keep, b1, b2, loss)

    step = 1e-6
    for index, (updated, original) in enumerate(zip(params, before)):
        numeric = np.zeros_like(original)
        for position in np.ndindex(original.shape):
            plus, minus = [p.copy() for p in before], [p.copy() for p in before]
            plus[index][position] += step
            minus[index][position] -= step
            numeric[position] = (objective(*plus) - objective(*minus)) / (2 * step)
        np.testing.assert_allclose((original - updated) / alpha, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("experiment, hidden, n_train", [
    ("overfit", 12, 60),
    ("dropout", 16, 60),
    ("batch", 16, 250),  # two batches of 100; the book drops the last 50
])
def test_book_epochs_match_the_books_program(reference, mnist, experiment, hidden, n_train):
    """Weights after book-mode epochs equal those of chapter8_numpy.run, to rounding."""
    (x_train, y_train), _ = mnist
    images = x_train[:n_train].reshape(n_train, 784) / 255
    labels = np.eye(10)[y_train[:n_train]]
    config = reference.BOOK[experiment]
    alpha = 2 * config["alpha"]  # not the book's, to try another value
    w01_ref, w12_ref = reference.run(experiment, 5, hidden, alpha, 4, images, labels,
                                     images[:5], labels[:5], 1000, io.StringIO())
    legacy = np.random.RandomState(5)
    w01 = 0.2 * legacy.random_sample((784, hidden)) - 0.1
    w12 = 0.2 * legacy.random_sample((hidden, 10)) - 0.1
    stream = np.random.MT19937()
    stream.state = {"bit_generator": "MT19937", "state": legacy.get_state(legacy=False)["state"]}
    keep = 0.5 if config["dropout"] else 1.0
    for _ in range(4):
        _kernels.train_epoch(*rows(images), y_train[:n_train], np.arange(n_train, dtype=np.int64),
                             *with_biases(w01, w12), alpha, config["batch"], True, keep, stream)
    # the README's "relative differences around 1e-12" (6e-13 seen here, at most): weights
    # near zero differ by far less than an ulp of the larger ones, hence atol
    np.testing.assert_allclose(w01, w01_ref, rtol=2e-12, atol=1e-14)
    np.testing.assert_allclose(w12, w12_ref, rtol=2e-12, atol=1e-14)


@pytest.mark.parametrize("mode, dtype", [("default", np.float32), ("default", np.float64),
                                         ("book", np.float64)])
@pytest.mark.parametrize("shuffled", [True, False])  # rows gathered per batch, or read in place
def test_any_number_of_threads_gives_the_same_bits(mnist, mode, dtype, shuffled):
    """Masks drawn first, every sum in example order: 1, 2 or 3 threads change nothing."""
    (x_train, y_train), (x_test, y_test) = mnist
    x = (x_train[:450].reshape(450, 784) / 255).astype(dtype)  # a last, smaller batch of 50
    x_eval = (x_test[:300].reshape(300, 784) / 255).astype(dtype)
    order = (np.random.default_rng(2).permutation(450) if shuffled else np.arange(450))
    order = order.astype(np.int64)
    book = mode == "book"
    runs = []
    for n_threads in (1, 2, 3):
        params = list(with_biases(*random_weights(784, 24, 10, seed=4, dtype=dtype)))
        stream = np.random.MT19937(9) if book else np.random.PCG64(9)
        alpha = 0.001 if book else 0.05  # the book applies each batch's update 100 times
        epochs = [_kernels.train_epoch(*rows(x), y_train[:450], order, *params, alpha, 100, book,
                                       0.5, stream, n_threads=n_threads) for _ in range(2)]
        predictions = np.empty(300, dtype=np.int64)
        outputs = np.empty((300, 10), dtype=dtype)
        evaluation = _kernels.evaluate(*rows(x_eval), y_test[:300], *params, MSE, predictions,
                                       outputs, n_threads=n_threads)
        runs.append((epochs, evaluation, params, predictions, outputs))
    (epochs, evaluation, params, predictions, outputs), *others = runs
    assert epochs[0][3] and 0.1 < evaluation[1] / 300 < 1  # it trained, and finitely
    for other_epochs, other_evaluation, other_params, other_predictions, other_outputs in others:
        assert other_epochs == epochs and other_evaluation == evaluation
        for found, expected in zip(other_params, params):
            assert np.array_equal(found, expected)
        assert np.array_equal(other_predictions, predictions)
        assert np.array_equal(other_outputs, outputs)


@pytest.mark.parametrize("book", [False, True])
def test_threads_give_the_same_bits_through_rows_that_keep_their_zeros(mnist, book):
    """The dense batch loop (book mode's replay of a diverging epoch) runs in one thread of
    the team: the others must neither touch it nor stall."""
    (x_train, y_train), _ = mnist
    x = x_train[:300].reshape(300, 784) / 255
    order = np.arange(300, dtype=np.int64)
    runs = []
    for n_threads in (1, 3):
        params = list(with_biases(*random_weights(784, 16, 10, seed=3)))
        stream = np.random.MT19937(4) if book else np.random.PCG64(4)
        epoch = _kernels.train_epoch(*_kernels.sparse_rows(x, True), y_train[:300], order,
                                     *params, 0.001, 100, book, 0.5, stream, dense=True,
                                     n_threads=n_threads)
        runs.append((epoch, params))
    assert runs[1][0] == runs[0][0] and runs[0][0][3]
    for found, expected in zip(runs[1][1], runs[0][1]):
        assert np.array_equal(found, expected)


FEWER_THREADS = """
import sys
import numpy as np
from grokreg._dispatch import kernels
n_threads, book = int(sys.argv[1]), sys.argv[2] == "book"
x = np.random.default_rng(0).random((250, 60)) * (np.random.default_rng(1).random((250, 60)) < 0.3)
labels = np.random.default_rng(2).integers(0, 5, 250)
rng = np.random.default_rng(3)
params = [rng.random((60, 8)) - 0.5, np.zeros(8), rng.random((8, 5)) - 0.5, np.zeros(5)]
order = np.arange(250) if book else rng.permutation(250)
stream = np.random.MT19937(4) if book else np.random.PCG64(4)
print(kernels.train_epoch(*kernels.sparse_rows(x), labels, order, *params, 0.01, 50, book, 0.5,
                          stream, n_threads=n_threads))
print(np.concatenate([p.ravel() for p in params]).tobytes().hex())
"""


@pytest.mark.parametrize("mode", ["default", "book"])
def test_the_same_bits_when_openmp_gives_fewer_threads_than_asked(mode, tmp_path):
    """OMP_THREAD_LIMIT=2 and 5 threads asked for: the batch's five parts are shared among
    the two threads there are, and the result is that of one thread."""
    def run(n_threads, limit):
        # started outside the source tree, which has no compiled kernels
        result = subprocess.run([sys.executable, "-c", FEWER_THREADS, str(n_threads), mode],
                                capture_output=True, text=True, cwd=tmp_path,
                                env={**os.environ, "OMP_THREAD_LIMIT": limit})
        assert result.returncode == 0, result.stderr
        return result.stdout
    alone = run(1, "1")
    assert alone == run(5, "2") == run(5, "8")
    assert "True" in alone.splitlines()[0]  # finite


def test_divergence_is_reported(mnist):
    """alpha = 10 overflows in book mode (whose gradient never stops at dead units)."""
    (x_train, y_train), _ = mnist
    x = x_train[:200].reshape(200, 784) / 255
    w01, w12 = random_weights(784, 40, 10)
    order = np.arange(200, dtype=np.int64)
    *_, finite = _kernels.train_epoch(*rows(x), y_train[:200], order, *with_biases(w01, w12), 10.0, 1, True,
                                      1.0, None)
    assert not finite
    *_, finite = _kernels.train_epoch(*rows(x), y_train[:200], order,
                                      *with_biases(*random_weights(784, 40, 10)), 0.005,
                                      1, True, 1.0, None)
    assert finite


@pytest.mark.parametrize("change, message", [
    (dict(labels=np.array([0, 5])), "outside"),
    (dict(labels=np.array([0])), "entries"),
    (dict(order=np.array([0, 2])), "order"),
    (dict(w12=np.zeros((6, 3))), "one row per column"),
    (dict(w01=np.zeros((7, 5))), "indices"),
    (dict(data=np.ones(3)), "sparse rows"),
    (dict(batch_size=0), "batch_size"),
    (dict(keep=0.0), "keep"),
    (dict(alpha=float("nan")), "alpha"),
    (dict(book=True, keep=0.7), "half"),
    (dict(keep=0.5, bit_generator=object()), "BitGenerator"),
    (dict(indices=np.array([0, 8], dtype=np.int32)), "indices"),
    (dict(indices=np.array([0, -1], dtype=np.int32)), "indices"),
    (dict(indices=np.array([0, 8], dtype=np.uint16)), "indices"),
    (dict(indices=np.array([0, 7], dtype=np.int64)), "argument types"),
    (dict(indptr=np.array([0, 3, 2])), "non-decreasing"),
    (dict(indptr=np.array([0, 1, 3])), "sparse rows"),
    (dict(indptr=np.array([0, 2])), "labels"),
    (dict(b1=np.zeros(4)), "bias_1"),
    (dict(b2=np.zeros(4)), "bias_1 and bias_2"),
    (dict(loss=7), "loss"),
    (dict(book=True, loss=CE), "book"),
    (dict(book=True, train_bias=True), "book"),
    (dict(n_threads=0), "n_threads"),
    (dict(phases=np.zeros(2)), "phases must have 6 entries"),
    (dict(waits=np.zeros(2)), r"waits must have n_threads = 1 entries, got 2"),
    # mini-batches find a row's run of inputs by bisection
    (dict(indptr=np.array([0, 2, 2]), batch_size=2, labels=np.array([0, 1]),
          indices=np.array([7, 0], dtype=np.int32)),
     r"row 0's columns must ascend \(indices\[0\] = 7, indices\[1\] = 0\)"),
    (dict(indptr=np.array([0, 2, 2]), batch_size=2, labels=np.array([0, 1]),
          indices=np.array([7, 0], dtype=np.uint16)), "row 0's columns must ascend"),
    (dict(data=np.ones(4), indptr=np.array([0, 1, 4]), batch_size=2, labels=np.array([0, 1]),
          indices=np.array([7, 0, 5, 4], dtype=np.int32)),
     r"row 1's columns must ascend \(indices\[2\] = 5, indices\[3\] = 4\)"),
])
def test_train_epoch_refuses_what_would_break_it(change, message):
    """Called directly, the kernel still checks every shape and index it relies on."""
    args = dict(data=np.ones(2), indices=np.array([0, 7], dtype=np.int32),
                indptr=np.array([0, 1, 2]), labels=np.array([0, 1]), order=np.array([0, 1]),
                w01=np.zeros((8, 5)), b1=np.zeros(5), w12=np.zeros((5, 3)), b2=np.zeros(3),
                alpha=0.1, batch_size=1, book=False, keep=1.0, bit_generator=None, loss=MSE,
                train_bias=False, dense=False, n_threads=1, phases=None, waits=None)
    args.update(change)
    args["labels"] = np.asarray(args["labels"], dtype=np.int64)
    args["order"] = np.asarray(args["order"], dtype=np.int64)
    args["indptr"] = np.asarray(args["indptr"], dtype=np.int64)
    with pytest.raises((ValueError, TypeError), match=message):
        _kernels.train_epoch(*args.values())


def test_a_timed_epoch_accounts_for_its_time_and_trains_the_same_bits(mnist):
    """bench/phases.py's timing: each phase and each thread's waiting at the barriers within
    the epoch's time, and the same weights as an untimed epoch."""
    (x_train, y_train), _ = mnist
    x = (x_train[:450].reshape(450, 784) / 255).astype(np.float32)
    order = np.arange(450, dtype=np.int64)
    trained, phases, waits = [], np.zeros(len(_kernels.PHASES)), np.zeros(2)
    for timing in (None, (phases, waits)):
        params = list(with_biases(*random_weights(784, 24, 10, seed=4, dtype=np.float32)))
        started = time.perf_counter()
        _kernels.train_epoch(*rows(x), y_train[:450], order, *params, 0.05, 100, False, 0.5,
                             np.random.PCG64(9), MSE, False, False, 2, *(timing or ()))
        elapsed = time.perf_counter() - started
        trained.append(params)
    for found, expected in zip(*trained):
        assert np.array_equal(found, expected)
    assert np.all(phases >= 0) and 0 < phases.sum() <= elapsed
    assert np.all(waits >= 0) and np.all(waits <= elapsed)
    if _kernels.OPENMP:  # two threads met at every barrier: someone waited
        assert waits.sum() > 0


def test_mini_batch_rows_may_start_below_where_the_row_before_ends():
    """Only a descent inside a row is refused: each row starts wherever it starts."""
    w01, b1, w12, b2 = np.zeros((8, 5)), np.zeros(5), np.full((5, 3), 0.1), np.zeros(3)
    result = _kernels.train_epoch(np.ones(5), np.array([6, 7, 0, 2, 1], dtype=np.int32),
                                  np.array([0, 2, 2, 4, 5], dtype=np.int64),
                                  np.array([0, 1, 2, 0], dtype=np.int64),
                                  np.arange(4, dtype=np.int64), w01, b1, w12, b2, 0.1, 2, False,
                                  1.0, None, MSE)
    assert result[3]


@pytest.mark.parametrize("change, message", [
    (dict(labels=np.array([0, 3])), r"labels\[1\] = 3 is outside 0..2"),
    (dict(labels=np.array([0])), "labels has 1 entries for 2 examples"),
    (dict(indices=np.array([0, 8], dtype=np.int32)), r"indices\[1\] = 8 is outside 0..7"),
    (dict(indices=np.array([0, 8], dtype=np.uint16)), r"indices\[1\] = 8 is outside 0..7"),
    (dict(indptr=np.array([0, 3, 2])), "indptr must be non-decreasing"),
    (dict(data=np.ones(3)), "data, indices and indptr do not describe sparse rows"),
    (dict(w12=np.zeros((6, 3))), "weights_1_2 must have one row per column of weights_0_1"),
    (dict(predictions=np.zeros(3, dtype=np.int64)), "predictions has 3 entries for 2 examples"),
    (dict(outputs=np.zeros((2, 4))), r"outputs must have shape \(2, 3\)"),
    (dict(loss=7), "unknown loss code 7"),
    (dict(n_threads=0), "n_threads must be >= 1, got 0"),
])
def test_evaluate_refuses_what_would_break_it(change, message):
    args = dict(data=np.ones(2), indices=np.array([0, 7], dtype=np.int32),
                indptr=np.array([0, 1, 2], dtype=np.int64), labels=np.array([0, 1]),
                w01=np.zeros((8, 5)), b1=np.zeros(5), w12=np.zeros((5, 3)), b2=np.zeros(3),
                loss=MSE, predictions=None, outputs=None, dense=False, n_threads=1)
    args.update(change)
    args["labels"] = np.asarray(args["labels"], dtype=np.int64)
    with pytest.raises(ValueError, match=message):
        _kernels.evaluate(*args.values())


def test_sparse_conversions_refuse_what_would_break_them():
    with pytest.raises(ValueError, match="values must have 256 entries, one per pixel value, got 255"):
        _kernels.sparse_pixels(np.zeros((2, 3), np.uint8), np.zeros(255))
    # Cython's own refusals of arrays that fit no signature: private entry points, whose
    # callers (grokreg.network) pass checked arrays; what matters is that nothing is touched
    for wrong in (np.zeros(3), None):
        with pytest.raises(TypeError, match="No matching signature found"):
            _kernels.sparse_rows(wrong)
    with pytest.raises(TypeError, match="No matching signature found"):
        _kernels.sparse_pixels(np.zeros((2, 3), np.uint8), None)
    with pytest.raises(ValueError, match="Buffer dtype mismatch, expected 'const uint8_t'"):
        _kernels.sparse_pixels(np.zeros((2, 3), np.int16), np.zeros(256))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_size, keep, book", [(1, 1.0, False), (1, 0.5, True),
                                                     (8, 0.7, False), (8, 0.5, True)])
def test_padded_rows_change_nothing_and_stay_zero(sparse_data, dtype, batch_size, keep, book):
    """weights_0_1 and bias_1 padded with zero columns (as grokreg.network gives them): the
    same bits in the real columns, zeros in the padding, for training and evaluation."""
    if book and dtype == np.float32:
        pytest.skip("book mode is float64")
    x, labels = sparse_data
    w01, w12 = random_weights(30, 7, 4, dtype=dtype)
    plain = list(with_biases(w01.copy(), w12.copy()))
    padded = list(with_biases(np.zeros((30, 16), dtype), w12.copy(), np.zeros(16, dtype)))
    padded[0][:, :7] = w01
    order = np.arange(len(x), dtype=np.int64)
    for params in (plain, padded):
        for _ in range(2):
            _kernels.train_epoch(*rows(x.astype(dtype)), labels, order, *params, 0.05,
                                 batch_size, book, keep, np.random.PCG64(1), MSE, not book)
    assert np.array_equal(padded[0][:, :7], plain[0]) and not padded[0][:, 7:].any()
    assert np.array_equal(padded[1][:7], plain[1]) and not padded[1][7:].any()
    assert np.array_equal(padded[2], plain[2]) and np.array_equal(padded[3], plain[3])
    outputs = [np.empty((len(x), 4), dtype) for _ in range(2)]
    for params, out in zip((plain, padded), outputs):
        _kernels.evaluate(*rows(x.astype(dtype)), None, *params, MSE, None, out)
    assert np.array_equal(outputs[0], outputs[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", [1, 3, 40, 100, 131])
def test_networks_pad_rows_to_whole_vectors(dtype, hidden):
    """The padding the kernels rely on: whole vectors of the build in use, and of AVX2's 32
    bytes (the same layout whichever shipped build runs), never a vector more than needed."""
    width = padded_width(hidden, dtype)
    vector = max(32, _kernels.VECTOR_WIDTH) // np.dtype(dtype).itemsize
    assert width % vector == 0 and hidden <= width < hidden + vector
    net = grokreg.Network(hidden, dtype=dtype)
    assert net._parameters[0].shape == (784, width) and net._parameters[1].shape == (width,)


@pytest.mark.parametrize("n_threads", [2, 3])
@pytest.mark.parametrize("keep_zeros", [False, True])
def test_sparse_conversions_share_rows_among_threads_exactly(sparse_data, n_threads, keep_zeros):
    x, _ = sparse_data
    pixels = (x * 255).astype(np.uint8)
    table = np.divide(np.arange(256, dtype=np.uint8), 255, dtype=np.float64)
    for convert, args in ((_kernels.sparse_rows, (x,)), (_kernels.sparse_pixels, (pixels, table))):
        alone = convert(*args, keep_zeros, 1)
        shared = convert(*args, keep_zeros, n_threads)
        for a, b in zip(alone, shared):
            assert a.dtype == b.dtype and np.array_equal(a, b)
    data, indices, indptr = _kernels.sparse_rows(x, keep_zeros, n_threads)
    assert len(data) == (x.size if keep_zeros else np.count_nonzero(x))
