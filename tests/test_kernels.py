"""The compiled kernels against plain NumPy, in float64 and float32, and against finite differences."""
import io
import os
import subprocess
import sys
import time
from fractions import Fraction

import numpy as np
import pytest

import grokreg
import numpy_model as model
from numpy_model import fused_multiply_add as fma
from grokreg._dispatch import kernels as _kernels  # the build this CPU runs (see test_dispatch)
from grokreg.network import padded_width

TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}
DTYPES = [np.float64, np.float32]
MSE, CE = _kernels.Loss.SQUARED_ERROR, _kernels.Loss.SOFTMAX_CROSS_ENTROPY
LOSS_CODES = {"mse": MSE, "softmax_cross_entropy": CE}


def padded(w01, w12, b1=None, b2=None):
    """The kernels' four parameter arrays from unpadded weights (zero biases unless given):
    weights_0_1 and bias_1 padded with zero columns to whole vectors, as Network pads them."""
    dtype = w01.dtype
    width = padded_width(w01.shape[1], dtype)
    weights_0_1 = _kernels.aligned_zeros((w01.shape[0], width), dtype)
    weights_0_1[:, :w01.shape[1]] = w01
    bias_1 = _kernels.aligned_zeros(width, dtype)
    if b1 is not None:
        bias_1[:w01.shape[1]] = b1
    bias_2 = np.zeros(w12.shape[1], dtype) if b2 is None else np.array(b2, dtype)
    return [weights_0_1, bias_1, _kernels.aligned_copy(w12), bias_2]


def unpadded(params):
    """The parameters as a network shows them (padding cut off)."""
    hidden = params[2].shape[0]
    return [params[0][:, :hidden], params[1][:hidden], params[2], params[3]]


def dataset(x, labels=None, layout="auto", **options):
    """x (float, or uint8 pixels with options' dtype) as the kernels' Dataset."""
    labels = None if labels is None else np.ascontiguousarray(labels, dtype=np.int64)
    return _kernels.Dataset(np.ascontiguousarray(x), labels, layout=layout, **options)


def train(data, params, alpha, batch_size, *, book=False, keep=1.0, bit_generator=None,
          loss=MSE, bias=False, n_threads=1, order=None, epochs=1):
    """epochs of the kernels in place; the last epoch's (loss, n_correct, n_seen, finite)."""
    work = _kernels.Workspace(data, *params, alpha=alpha, batch_size=batch_size, book=book,
                              keep=keep, bit_generator=bit_generator, loss=loss,
                              train_bias=bias, n_threads=n_threads)
    order = np.arange(data.n) if order is None else order
    return [work.train_epoch(order) for _ in range(epochs)][-1]


def outputs_of(x, w01, w12, b1=None, b2=None, layout="auto"):
    outputs = np.empty((len(x), w12.shape[1]), dtype=w12.dtype)
    _kernels.evaluate(dataset(x.astype(w12.dtype), layout=layout), *padded(w01, w12, b1, b2),
                      MSE, None, outputs)
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
    start = padded(*random_weights(50, 8, 10, seed=1, dtype=dtype))
    results = []
    for rows in (narrow, wide):
        data = _kernels.Dataset.from_rows(*rows, 50, labels)
        parameters = [p.copy() for p in start]
        bit_generator = np.random.MT19937(1) if book else np.random.PCG64(1)
        epoch = train(data, parameters, 0.01, batch_size, book=book, keep=keep,
                      bit_generator=bit_generator, epochs=2)
        outputs = np.empty((60, 10), dtype)
        evaluation = _kernels.evaluate(data, *parameters, outputs=outputs)
        results.append((epoch, evaluation, [p.tobytes() for p in parameters], outputs.tobytes()))
    assert results[0] == results[1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("layout", ["sparse", "dense"])
def test_a_shuffled_order_trains_as_the_rows_stored_in_that_order(dtype, n_threads, layout):
    """A batch whose sparse rows are scattered is gathered first (copy_rows), one in place is
    read there; dense rows are packed either way: always the same bits as the examples
    stored in training order."""
    rng = np.random.default_rng(11)
    pixels = rng.integers(0, 256, size=(125, 50)).astype(np.uint8)
    pixels[pixels < 190] = 0
    labels = rng.integers(0, 10, size=125).astype(np.int64)
    order = np.concatenate([np.arange(20, 30), 30 + rng.permutation(95), rng.permutation(20)])
    start = padded(*random_weights(50, 8, 10, seed=2, dtype=dtype))
    results = []
    for data, visits in ((dataset(pixels, labels, layout, dtype=dtype), order),
                         (dataset(pixels[order], labels[order], layout, dtype=dtype),
                          np.arange(125))):
        parameters = [p.copy() for p in start]
        epoch = train(data, parameters, 0.05, 10, keep=0.5, bit_generator=np.random.PCG64(2),
                      n_threads=n_threads, order=visits)
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
@pytest.mark.parametrize("layout", ["sparse", "dense"])
def test_forward_matches_numpy(sparse_data, dtype, layout):
    x, _ = sparse_data
    w01, w12 = random_weights(30, 7, 4, dtype=dtype)
    _, _, out = model.forward(x.astype(dtype).astype(np.float64), w01.astype(np.float64),
                              w12.astype(np.float64))
    np.testing.assert_allclose(outputs_of(x, w01, w12, layout=layout), out,
                               rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


def test_the_reference_fused_multiply_add_rounds_once():
    """The models' fma, checked where rounding twice would go wrong: (1 + 2**-12)**2 is
    halfway between two float32 and the addend 2**-60 tips it up, a tip float64 loses."""
    a, tip = 1 + 2**-12, 2**-60  # exact in float32
    for sign in (1, -1):
        found = fma(np.array([a], np.float32), np.array([sign * a], np.float32),
                    np.array([sign * tip], np.float32))
        assert found.dtype == np.float32
        assert found[0] == np.float32(sign * (1 + 2**-11 + 2**-23))
        assert np.float32(a * (sign * a) + sign * tip) != found[0]  # rounded twice
    exact = fma(np.array([0.1, 3.0]), np.array([0.7, 1 / 3]), np.array([-0.07, -1.0]))
    assert exact[0] == float(Fraction(0.1) * Fraction(0.7) + Fraction(-0.07))
    assert exact[1] == float(Fraction(3.0) * Fraction(1 / 3) - 1)


@pytest.mark.parametrize("layout", ["sparse", "dense"])
def test_skipping_zeros_is_bit_identical_to_the_dense_sums(sparse_data, layout):
    """Layers equal dense sums taken in index order, zeros included, a fused multiply-add a
    term, to the last bit: the sparse rows skip the zeros, the dense tiles add them."""
    x, _ = sparse_data
    w01, w12 = random_weights(30, 37, 4)  # 37 = 16 + 16 + 4 + 1: every block width but 8 and 2
    hidden = np.zeros((len(x), 37))
    for k in range(x.shape[1]):  # every input, zeros included, in order
        hidden = fma(x[:, k:k + 1], w01[k], hidden)
    hidden = np.maximum(hidden, 0)
    out = np.zeros((len(x), 4))
    for j in range(37):
        out = fma(hidden[:, j:j + 1], w12[j], out)
    assert np.array_equal(outputs_of(x, w01, w12, layout=layout), out)
    assert np.array_equal(outputs_of(np.zeros((2, 30)), w01, w12, layout=layout), np.zeros((2, 4)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ["mse", "softmax_cross_entropy"])
@pytest.mark.parametrize("layout", ["sparse", "dense"])
def test_evaluate_matches_numpy(sparse_data, dtype, loss, layout):
    x, labels = sparse_data
    w01, w12 = random_weights(30, 7, 4, dtype=dtype)
    b1, b2 = (np.linspace(-0.1, 0.1, n).astype(dtype) for n in (7, 4))
    predictions = np.empty(len(x), dtype=np.int64)
    error, correct = _kernels.evaluate(dataset(x.astype(dtype), labels, layout),
                                       *padded(w01, w12, b1, b2), LOSS_CODES[loss], predictions)
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
@pytest.mark.parametrize("layout", ["sparse", "dense"])
def test_default_epoch_matches_numpy(sparse_data, dtype, batch_size, keep, loss, bias, layout):
    x, labels = sparse_data
    w01, w12 = random_weights(30, 7, 4, dtype=dtype)
    params = padded(w01, w12)
    reference = [w01.astype(np.float64), np.zeros(7), w12.astype(np.float64), np.zeros(4)]
    data = dataset(x.astype(dtype), labels, layout)
    for epoch in range(3):
        # epoch 0 in data order, then shuffled orders
        order = np.random.default_rng(epoch).permutation(len(x)) if epoch else np.arange(len(x))
        work = _kernels.Workspace(data, *params, alpha=0.05, batch_size=batch_size, keep=keep,
                                  bit_generator=np.random.PCG64(epoch), loss=LOSS_CODES[loss],
                                  train_bias=bias)
        error, correct, seen, finite = work.train_epoch(order)
        ref_error, ref_correct = model.train_epoch(
            x[order].astype(dtype).astype(np.float64), labels[order], reference, 0.05,
            batch_size, keep, np.random.PCG64(epoch), loss, bias)
        assert (seen, finite, correct) == (len(x), True, ref_correct)
        assert error == pytest.approx(ref_error, rel=10 * TOLERANCE[dtype])
    for found, expected in zip(unpadded(params), reference):
        np.testing.assert_allclose(found, expected, rtol=10 * TOLERANCE[dtype],
                                   atol=10 * TOLERANCE[dtype])
    assert bias or not (params[1].any() or params[3].any())  # biases stay zero when off
    assert not params[0][:, 7:].any() and not params[1][7:].any()  # the padding stays zero


def sgd_in_kernel_order(x, labels, w01, w12, alpha):
    """Per-example steps (default mode, squared error, no dropout or biases) with every sum
    taken in the kernels' order, one fused multiply-add at a time (the updates a product and
    then a sum): the same bits as the kernels, whatever order they visit rows and columns in."""
    alpha = w01.dtype.type(alpha)
    for example, label in zip(x, labels):
        inputs = np.flatnonzero(example)
        z = np.zeros(w01.shape[1], w01.dtype)
        for i in inputs:
            z = fma(example[i], w01[i], z)
        h = np.where(z > 0, z, 0).astype(w01.dtype)
        out = np.zeros(w12.shape[1], w01.dtype)
        for j in np.flatnonzero(h):
            out = fma(h[j], w12[j], out)
        delta_2 = (np.arange(w12.shape[1]) == label).astype(w01.dtype) - out
        delta_1 = np.zeros(w01.shape[1], w01.dtype)
        for c in range(w12.shape[1]):
            delta_1 = fma(delta_2[c], w12[:, c], delta_1)
        delta_1 = delta_1 * (z > 0).astype(w01.dtype)
        for j in np.flatnonzero(h):
            w12[j] = w12[j] + alpha * (h[j] * delta_2)
        for i in inputs:
            w01[i] = w01[i] + alpha * (example[i] * delta_1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_hidden", [40, 100, 37])  # one block; two; vectors and a remainder
@pytest.mark.parametrize("layout", ["sparse", "dense"])
def test_per_example_steps_are_bit_identical_to_sums_in_order(dtype, n_hidden, layout):
    """The first-layer update visits its rows and blocks of columns last to first (for the
    cache): as the rows are distinct, no bit may change. Dense rows are listed example by
    example: the same steps."""
    rng = np.random.default_rng(7)
    x = (rng.random((60, 200)) * (rng.random((60, 200)) < 0.4)).astype(dtype)
    labels = rng.integers(0, 10, size=60)
    w01, w12 = random_weights(200, n_hidden, 10, seed=3, dtype=dtype)
    expected = [w01.copy(), w12.copy()]
    params = padded(w01, w12)
    train(dataset(x, labels, layout), params, 0.01, 1)
    sgd_in_kernel_order(x, labels, *expected, 0.01)
    assert not np.array_equal(params[0][:, :n_hidden], w01)
    assert np.array_equal(params[0][:, :n_hidden], expected[0])
    assert np.array_equal(params[2], expected[1])


def batch_in_kernel_order(x, labels, w01, w12, alpha):
    """One default-mode mini-batch (squared error, no dropout or biases) with every sum taken
    in the kernels' order: the first layer's sums in its two runs of inputs, split where the
    batch's entries are halved (split_inputs), each weight's gradient in example order, every
    term a fused multiply-add."""
    dt = w01.dtype.type
    counts = np.count_nonzero(x, axis=0)
    starts = np.concatenate([[0], np.cumsum(counts)])
    split = int(np.searchsorted(starts[:-1], starts[-1] // 2, side="left"))
    runs = [range(0, split), range(split, x.shape[1])]
    size, n_hidden = len(x), w12.shape[0]
    h, delta_2, delta_1 = [], [], []
    for example, label in zip(x, labels):
        sums = []
        for number, run in enumerate(runs):
            z = np.zeros(w01.shape[1], w01.dtype)
            for k in run:
                if example[k] != 0:
                    z = fma(example[k], w01[k], z)
            sums.append(z)
        z = sums[0] + sums[1]
        layer = np.where(z > 0, z, 0).astype(w01.dtype)
        out = np.zeros(w12.shape[1], w01.dtype)
        for j in np.flatnonzero(layer):
            out = fma(layer[j], w12[j], out)
        d2 = (((np.arange(w12.shape[1]) == label).astype(w01.dtype) - out) / dt(size))
        d1 = np.zeros(w01.shape[1], w01.dtype)
        for c in range(w12.shape[1]):
            d1 = fma(d2[c], w12[:, c], d1)
        h.append(layer), delta_2.append(d2), delta_1.append(d1 * (z > 0).astype(w01.dtype))
    halves = [range(0, size // 2), range(size // 2, size)]
    grad_halves = []
    for half in halves:
        g = np.zeros_like(w12)
        for j in range(n_hidden):
            acc = np.zeros(w12.shape[1], w01.dtype)
            for b in half:
                if h[b][j] != 0:
                    acc = fma(h[b][j], delta_2[b], acc)
            g[j] = acc
        grad_halves.append(g)
    for k in range(x.shape[1]):
        acc = np.zeros(w01.shape[1], w01.dtype)
        for b in range(size):
            if x[b, k] != 0:
                acc = fma(x[b, k], delta_1[b], acc)
        w01[k] = fma(dt(alpha), acc, w01[k])
    w12 += dt(alpha) * (grad_halves[0] + grad_halves[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["sparse", "dense"])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_mini_batch_is_bit_identical_to_sums_in_its_order(dtype, layout, n_threads):
    """The batch's sums in their documented order (runs of inputs, halves of the batch,
    examples in order), one fused multiply-add at a time: the kernels' bits exactly, the
    sparse rows skipping the zeros, the dense tiles adding them."""
    rng = np.random.default_rng(17)
    # 80 examples: every kind of dense block (32 and 16 examples, and tiles of the rest)
    x = (rng.random((80, 40)) * (rng.random((80, 40)) < 0.6)).astype(dtype)
    labels = rng.integers(0, 5, size=80)
    w01, w12 = random_weights(40, 19, 5, seed=5, dtype=dtype)
    expected = [w01.copy(), w12.copy()]
    params = padded(w01, w12)
    train(dataset(x, labels, layout), params, 0.1, 80, n_threads=n_threads)
    batch_in_kernel_order(x, labels, *expected, 0.1)
    assert np.array_equal(params[0][:, :19], expected[0])
    assert np.array_equal(params[2], expected[1])


@pytest.mark.parametrize("keep", [1.0, 0.6])
@pytest.mark.parametrize("loss", ["mse", "softmax_cross_entropy"])
@pytest.mark.parametrize("layout", ["sparse", "dense"])
def test_update_is_the_gradient_by_central_differences(keep, loss, layout):
    """One full-batch step moves every parameter by -alpha * dL/dparameter (L the mean loss)."""
    rng = np.random.default_rng(3)
    x = rng.random((12, 6)) * (rng.random((12, 6)) < 0.6)
    labels = rng.integers(0, 3, size=12)
    w01, w12 = random_weights(6, 5, 3, seed=4)
    w01 *= 5  # larger pre-activations keep ReLU away from its kink under perturbation
    b1, b2 = rng.normal(0, 0.1, 5), rng.normal(0, 0.1, 3)
    params = padded(w01, w12, b1, b2)
    mask = model.dropout_masks(np.random.PCG64(9), (12, 5), keep)
    before = [p.copy() for p in unpadded(params)]
    alpha = 1e-3
    train(dataset(x, labels, layout), params, alpha, 12, keep=keep,
          bit_generator=np.random.PCG64(9), loss=LOSS_CODES[loss], bias=True)

    def objective(w01, b1, w12, b2):
        return model.batch_loss(x, labels, w01, w12, mask, 1 / keep, b1, b2, loss)

    step = 1e-6
    for index, (updated, original) in enumerate(zip(unpadded(params), before)):
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
@pytest.mark.parametrize("layout", ["sparse", "dense"])
def test_book_epochs_match_the_books_program(reference, mnist, experiment, hidden, n_train,
                                             layout):
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
    params = padded(w01, w12)
    train(dataset(images, y_train[:n_train], layout), params, alpha, config["batch"],
          book=True, keep=keep, bit_generator=stream, epochs=4)
    # the README's "relative differences around 1e-12" (6e-13 seen here, at most): weights
    # near zero differ by far less than an ulp of the larger ones, hence atol
    np.testing.assert_allclose(params[0][:, :hidden], w01_ref, rtol=2e-12, atol=1e-14)
    np.testing.assert_allclose(params[2], w12_ref, rtol=2e-12, atol=1e-14)


def every_result(data, eval_data, params, *, n_threads, **options):
    """Two epochs and an evaluation: every number they give, as bytes where arrays."""
    epochs = [train(data, params, n_threads=n_threads, **options) for _ in range(2)]
    predictions = np.empty(eval_data.n, dtype=np.int64)
    outputs = np.empty((eval_data.n, 10), dtype=params[0].dtype)
    evaluation = _kernels.evaluate(eval_data, *params, MSE, predictions, outputs,
                                   n_threads=n_threads)
    return epochs, evaluation, [p.tobytes() for p in params], predictions.tobytes(), outputs.tobytes()


@pytest.mark.parametrize("mode, dtype", [("default", np.float32), ("default", np.float64),
                                         ("book", np.float64)])
@pytest.mark.parametrize("shuffled", [True, False])  # rows gathered per batch, or read in place
@pytest.mark.parametrize("layout", ["sparse", "dense"])
def test_any_number_of_threads_gives_the_same_bits(mnist, mode, dtype, shuffled, layout):
    """Masks drawn first, every sum in example order: 1, 2 or 3 threads change nothing."""
    (x_train, y_train), (x_test, y_test) = mnist
    x = (x_train[:450].reshape(450, 784) / 255).astype(dtype)  # a last, smaller batch of 50
    x_eval = (x_test[:300].reshape(300, 784) / 255).astype(dtype)
    order = (np.random.default_rng(2).permutation(450) if shuffled else np.arange(450))
    book = mode == "book"
    runs = []
    for n_threads in (1, 2, 3):
        params = padded(*random_weights(784, 24, 10, seed=4, dtype=dtype))
        stream = np.random.MT19937(9) if book else np.random.PCG64(9)
        alpha = 0.001 if book else 0.05  # the book applies each batch's update 100 times
        runs.append(every_result(
            dataset(x, y_train[:450], layout, n_threads=n_threads),
            dataset(x_eval, y_test[:300], layout), params, n_threads=n_threads, alpha=alpha,
            batch_size=100, book=book, keep=0.5, bit_generator=stream, order=order))
    (epochs, evaluation, *_), *others = runs
    assert epochs[0][3] and 0.1 < evaluation[1] / 300 < 1  # it trained, and finitely
    for other in others:
        assert other == runs[0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_size, keep, book", [(1, 1.0, False), (1, 0.5, True),
                                                     (7, 0.7, False), (30, 0.5, True),
                                                     (30, 1.0, False)])
@pytest.mark.parametrize("pixels", [False, True])
def test_the_dense_layout_computes_the_sparse_layouts_bits(mnist, dtype, batch_size, keep, book,
                                                           pixels):
    """The layout is a matter of speed only: rows read sparse or dense, pixels or floats,
    training and evaluation give the same numbers, bit for bit, at any number of threads."""
    if book and dtype == np.float32:
        pytest.skip("book mode is float64")
    (x_train, y_train), (x_test, y_test) = mnist
    images = x_train[:150].reshape(150, 784)
    x = images if pixels else np.divide(images, 255, dtype=dtype)
    x_eval = x_test[:64].reshape(64, 784)
    x_eval = x_eval if pixels else np.divide(x_eval, 255, dtype=dtype)
    order = np.random.default_rng(1).permutation(150)
    results = []
    for layout, n_threads in (("sparse", 1), ("dense", 1), ("dense", 2)):
        params = padded(*random_weights(784, 21, 10, seed=6, dtype=dtype))
        stream = np.random.MT19937(3) if book else np.random.PCG64(3)
        results.append(every_result(
            dataset(x, y_train[:150], layout, dtype=dtype),
            dataset(x_eval, y_test[:64], layout, dtype=dtype), params, n_threads=n_threads,
            alpha=0.001 if book and batch_size > 1 else 0.01, batch_size=batch_size, book=book,
            keep=keep, bit_generator=stream, order=None if book else order))
    assert results[0][0][-1][3]  # finite
    assert results[1] == results[0] and results[2] == results[0]


def test_the_layout_follows_the_density():
    """"auto" keeps mostly-zero inputs as sparse rows and dense ones as they are (DENSE_FROM),
    a dense float array without a copy."""
    rng = np.random.default_rng(0)
    dense = rng.random((50, 30))
    sparse = dense * (rng.random((50, 30)) < 0.2)
    for x, layout in ((dense, "dense"), (sparse, "sparse")):
        data = _kernels.Dataset(x)
        assert data.density == np.count_nonzero(x) / x.size
        assert data.layout == layout or _kernels.DENSE_FROM is None
    assert _kernels.DENSE_FROM is None or 0.2 < _kernels.DENSE_FROM <= 1
    if _kernels.DENSE_FROM is None:  # the portable build: sparse rows at every density
        assert _kernels.Dataset(dense).layout == "sparse"
        return
    assert np.shares_memory(_kernels.Dataset(dense).stored(), dense)
    pixels = (dense * 255).astype(np.uint8)
    assert np.shares_memory(_kernels.Dataset(pixels, dtype=np.float32).stored(), pixels)
    assert _kernels.Dataset(dense, literal=True).layout == "sparse"  # literal keeps its zeros


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_dataset_measures_its_inputs_range_and_scale(dtype, n_threads):
    """The counting pass's smallest, largest and root mean square input (what check_values
    warns from), rows of very different scales split among threads."""
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(999, 37)) * np.logspace(-2, 3, 999)[:, None]).astype(dtype)
    for _ in range(3):  # threads sharing a row's results would differ from run to run
        data = _kernels.Dataset(x, n_threads=n_threads)
        assert (data.minimum, data.maximum) == (x.min(), x.max())
        expected = np.sqrt(np.sum(x.astype(np.float64) ** 2) / x.size)
        # float32 rows are summed in float32 vectors: a scale, not a statistic
        assert data.root_mean_square == pytest.approx(
            expected, rel=1e-6 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("book", [False, True])
def test_threads_give_the_same_bits_through_rows_that_keep_their_zeros(mnist, book):
    """The literal batch loop (book mode's replay of a diverging epoch) runs in one thread of
    the team: the others must neither touch it nor stall."""
    (x_train, y_train), _ = mnist
    x = x_train[:300].reshape(300, 784) / 255
    runs = []
    for n_threads in (1, 3):
        params = padded(*random_weights(784, 16, 10, seed=3))
        stream = np.random.MT19937(4) if book else np.random.PCG64(4)
        epoch = train(dataset(x, y_train[:300], literal=True), params, 0.001, 100, book=book,
                      keep=0.5, bit_generator=stream, n_threads=n_threads)
        runs.append((epoch, params))
    assert runs[1][0] == runs[0][0] and runs[0][0][3]
    for found, expected in zip(runs[1][1], runs[0][1]):
        assert np.array_equal(found, expected)


FEWER_THREADS = """
import sys
import numpy as np
from grokreg._dispatch import kernels
from grokreg.network import padded_width
n_threads, book, layout = int(sys.argv[1]), sys.argv[2] == "book", sys.argv[3]
x = np.random.default_rng(0).random((250, 60)) * (np.random.default_rng(1).random((250, 60)) < 0.3)
labels = np.random.default_rng(2).integers(0, 5, 250)
rng = np.random.default_rng(3)
width = padded_width(8, np.float64)
w01 = kernels.aligned_zeros((60, width), np.float64)
w01[:, :8] = rng.random((60, 8)) - 0.5
params = [w01, kernels.aligned_zeros(width, np.float64), rng.random((8, 5)) - 0.5, np.zeros(5)]
order = np.arange(250) if book else rng.permutation(250)
stream = np.random.MT19937(4) if book else np.random.PCG64(4)
data = kernels.Dataset(x, labels, layout=layout)
work = kernels.Workspace(data, *params, alpha=0.01, batch_size=50, book=book, keep=0.5,
                         bit_generator=stream, n_threads=n_threads)
print(work.train_epoch(order))
print(np.concatenate([p.ravel() for p in params]).tobytes().hex())
"""


@pytest.mark.parametrize("mode, layout", [("default", "sparse"), ("book", "sparse"),
                                          ("default", "dense")])
def test_the_same_bits_when_openmp_gives_fewer_threads_than_asked(mode, layout, tmp_path):
    """OMP_THREAD_LIMIT=2 and 5 threads asked for: the batch's five parts are shared among
    the two threads there are, and the result is that of one thread."""
    def run(n_threads, limit):
        # started outside the source tree, which has no compiled kernels
        result = subprocess.run([sys.executable, "-c", FEWER_THREADS, str(n_threads), mode,
                                 layout],
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
    params = padded(*random_weights(784, 40, 10))
    *_, finite = train(dataset(x, y_train[:200]), params, 10.0, 1, book=True)
    assert not finite
    params = padded(*random_weights(784, 40, 10))
    *_, finite = train(dataset(x, y_train[:200]), params, 0.005, 1, book=True)
    assert finite


def refusal_arguments(**change):
    """A Workspace's arguments over a tiny data set, with some replaced."""
    args = dict(x=np.eye(2, 8), labels=np.array([0, 1]), w01=None, w12=np.zeros((5, 3)),
                b1=None, b2=np.zeros(3), alpha=0.1, batch_size=1, book=False, keep=1.0,
                bit_generator=None, loss=MSE, train_bias=False, n_threads=1)
    args.update(change)
    width = padded_width(5, np.float64)
    if args["w01"] is None:
        args["w01"] = np.zeros((8, width))
    if args["b1"] is None:
        args["b1"] = np.zeros(width)
    return args


@pytest.mark.parametrize("change, message", [
    (dict(labels=np.array([0, 5])), "labels go up to 5, outside the network's 3 outputs"),
    (dict(w12=np.zeros((200, 3))), "one row per column"),
    (dict(w01=np.zeros((7, 8))), "the data have 8 inputs, the network 7"),
    (dict(w01=np.zeros((8, 5)), b1=np.zeros(5)), "whole blocks of 32 bytes"),
    (dict(batch_size=0), r"batch_size must be in 1..2 \(the examples\), got 0"),
    (dict(batch_size=3), "batch_size must be in 1..2"),
    (dict(keep=0.0), "keep"),
    (dict(alpha=float("nan")), "alpha must be finite"),
    (dict(book=True, keep=0.7), "half"),
    (dict(keep=0.5, bit_generator=object()), "BitGenerator"),
    (dict(b1=np.zeros(4)), "bias_1"),
    (dict(b2=np.zeros(4)), "bias_1 and bias_2"),
    (dict(loss=7), "loss"),
    (dict(book=True, loss=CE), "book"),
    (dict(book=True, train_bias=True), "book"),
    (dict(n_threads=0), "n_threads"),
    (dict(w12=np.zeros((5, 3), np.float32)), "must all be float32 or all float64"),
    (dict(x=np.eye(2, 8, dtype=np.float32)), "the network is float64, the data float32"),
])
def test_a_workspace_refuses_what_would_break_it(change, message):
    """Called directly, the kernels still check every shape and option they rely on."""
    args = refusal_arguments(**change)
    data = _kernels.Dataset(args.pop("x"), np.asarray(args.pop("labels"), dtype=np.int64))
    params = [args.pop(name) for name in ("w01", "b1", "w12", "b2")]
    with pytest.raises((ValueError, TypeError), match=message):
        _kernels.Workspace(data, *params, **args)


@pytest.mark.parametrize("change, message", [
    (dict(order=np.array([0, 2])), r"order\[1\] = 2 is outside 0..1"),
    (dict(order=np.array([-1])), r"order\[0\] = -1 is outside 0..1"),
    (dict(phases=np.zeros(2)), "phases"),
    (dict(waits=np.zeros(2)), "waits"),
])
def test_an_epoch_refuses_what_would_break_it(change, message):
    args = refusal_arguments()
    data = _kernels.Dataset(args.pop("x"), np.asarray(args.pop("labels"), dtype=np.int64))
    params = [args.pop(name) for name in ("w01", "b1", "w12", "b2")]
    work = _kernels.Workspace(data, *params, **args)
    epoch = dict(order=np.arange(2), phases=None, waits=None)
    epoch.update(change)
    with pytest.raises(ValueError, match=message):
        work.train_epoch(epoch["order"], epoch["phases"], epoch["waits"])


@pytest.mark.parametrize("rows, message", [
    (dict(indices=np.array([0, 8], dtype=np.int32)), r"indices\[1\] = 8 is outside 0..7"),
    (dict(indices=np.array([0, -1], dtype=np.int32)), r"indices\[1\] = -1 is outside 0..7"),
    (dict(indices=np.array([0, 8], dtype=np.uint16)), r"indices\[1\] = 8 is outside 0..7"),
    (dict(indices=np.array([0, 7], dtype=np.int64)), "indices must be a 1-D uint16 or int32"),
    (dict(indptr=np.array([0, 3, 2])), "non-decreasing"),
    (dict(indptr=np.array([0, 1, 3])), "sparse rows"),
    (dict(data=np.ones(3)), "sparse rows"),
    (dict(data=np.ones(2, dtype=np.int64)), "data must be a 1-D float32 or float64"),
    (dict(labels=np.array([0])), "labels has 1 entries for 2 examples"),
    (dict(labels=np.array([0, -1])), r"labels\[1\] = -1 is negative"),
    (dict(labels=np.array([0.0, 1.0])), "labels must be a C-contiguous int64 array"),
    (dict(indptr=np.array([0, 2, 2]), indices=np.array([7, 0], dtype=np.int32)),
     r"row 0's columns must ascend \(indices\[0\] = 7, indices\[1\] = 0\)"),
    (dict(indptr=np.array([0, 2, 2]), indices=np.array([7, 0], dtype=np.uint16)),
     "row 0's columns must ascend"),
    (dict(data=np.ones(4), indptr=np.array([0, 1, 4]), indices=np.array([7, 0, 5, 4], dtype=np.int32)),
     r"row 1's columns must ascend \(indices\[2\] = 5, indices\[3\] = 4\)"),
])
def test_sparse_rows_made_elsewhere_are_checked_entry_by_entry(rows, message):
    args = dict(data=np.ones(2), indices=np.array([0, 7], dtype=np.int32),
                indptr=np.array([0, 1, 2]), labels=np.array([0, 1]))
    args.update(rows)
    args["indptr"] = np.asarray(args["indptr"], dtype=np.int64)
    if args["labels"].dtype.kind == "i":
        args["labels"] = args["labels"].astype(np.int64)
    with pytest.raises((ValueError, TypeError), match=message):
        _kernels.Dataset.from_rows(args["data"], args["indices"], args["indptr"], 8,
                                   args["labels"])


@pytest.mark.parametrize("arguments, message", [
    (dict(x=np.zeros((2, 3, 1))), r"x must be a C-contiguous 2-D array, got shape \(2, 3, 1\)"),
    (dict(x=np.zeros((3, 2)).T), "C-contiguous"),
    (dict(x=np.zeros((2, 3), np.int16)), "x must be uint8 pixels or float32 or float64, got int16"),
    (dict(x=np.zeros((2, 3), np.float32), dtype=np.float64), "x must be uint8 pixels or float64, got float32"),
    (dict(x=np.zeros((2, 3)), dtype=np.float16), "dtype must be float32 or float64"),
    (dict(x=np.zeros((2, 3), np.uint8), values=np.zeros(255)), "values must be 256 float64"),
    (dict(x=np.zeros((2, 3)), values=np.zeros(256)), "values go with uint8 pixels"),
    (dict(x=np.zeros((2, 3)), layout="tiled"), "layout must be 'auto', 'sparse' or 'dense'"),
    (dict(x=np.zeros((2, 3)), layout="dense", literal=True), "literal rows keep their zeros"),
    (dict(x=np.zeros((2, 3)), n_threads=0), "n_threads must be >= 1, got 0"),
])
def test_a_dataset_refuses_what_would_break_it(arguments, message):
    x = arguments.pop("x")
    with pytest.raises((ValueError, TypeError), match=message):
        _kernels.Dataset(x, **arguments)


@pytest.mark.skipif(not _kernels.TIMING, reason="a timing build (GROKREG_TIMING=1) times phases")
def test_a_timed_epoch_accounts_for_its_time_and_trains_the_same_bits(mnist):
    """bench/phases.py's timing: each phase and each thread's waiting at the barriers within
    the epoch's time, and the same weights as an untimed epoch."""
    (x_train, y_train), _ = mnist
    x = (x_train[:450].reshape(450, 784) / 255).astype(np.float32)
    trained, phases, waits = [], np.zeros(len(_kernels.PHASES)), np.zeros(2)
    for timing in (None, (phases, waits)):
        params = padded(*random_weights(784, 24, 10, seed=4, dtype=np.float32))
        work = _kernels.Workspace(dataset(x, y_train[:450]), *params, alpha=0.05,
                                  batch_size=100, keep=0.5, bit_generator=np.random.PCG64(9),
                                  n_threads=2)
        started = time.perf_counter()
        work.train_epoch(np.arange(450), *(timing or ()))
        elapsed = time.perf_counter() - started
        trained.append(params)
    for found, expected in zip(*trained):
        assert np.array_equal(found, expected)
    assert np.all(phases >= 0) and 0 < phases.sum() <= elapsed
    assert np.all(waits >= 0) and np.all(waits <= elapsed)
    if _kernels.OPENMP:  # two threads met at every barrier: someone waited
        assert waits.sum() > 0


@pytest.mark.skipif(_kernels.TIMING, reason="a timing build times phases")
def test_the_shipped_kernels_carry_no_timing():
    args = refusal_arguments()
    data = _kernels.Dataset(args.pop("x"), np.asarray(args.pop("labels"), dtype=np.int64))
    work = _kernels.Workspace(data, *[args.pop(n) for n in ("w01", "b1", "w12", "b2")], **args)
    with pytest.raises(ValueError, match="phases and waits need a timing build of the kernels"):
        work.train_epoch(np.arange(2), np.zeros(len(_kernels.PHASES)))


def test_mini_batch_rows_may_start_below_where_the_row_before_ends():
    """Only a descent inside a row is refused: each row starts wherever it starts."""
    data = _kernels.Dataset.from_rows(np.ones(5), np.array([6, 7, 0, 2, 1], dtype=np.int32),
                                      np.array([0, 2, 2, 4, 5], dtype=np.int64), 8,
                                      np.array([0, 1, 2, 0], dtype=np.int64))
    params = padded(np.zeros((8, 5)), np.full((5, 3), 0.1))
    assert train(data, params, 0.1, 2)[3]


@pytest.mark.parametrize("change, message", [
    (dict(labels=np.array([0, 3])), "labels go up to 3, outside the network's 3 outputs"),
    (dict(w12=np.zeros((200, 3))), "weights_1_2 must have one row per column of weights_0_1"),
    (dict(w01=np.zeros((7, 8))), "the data have 8 inputs, the network 7"),
    (dict(predictions=np.zeros(3, dtype=np.int64)), "predictions must be a C-contiguous int64 array of 2"),
    (dict(outputs=np.zeros((2, 4))), r"outputs must be a C-contiguous float64 array of shape \(2, 3\)"),
    (dict(loss=7), "unknown loss code 7"),
    (dict(n_threads=0), "n_threads must be >= 1, got 0"),
])
def test_evaluate_refuses_what_would_break_it(change, message):
    args = refusal_arguments(**change)
    data = _kernels.Dataset(args.pop("x"), np.asarray(args.pop("labels"), dtype=np.int64))
    params = [args.pop(name) for name in ("w01", "b1", "w12", "b2")]
    with pytest.raises(ValueError, match=message):
        _kernels.evaluate(data, *params, args["loss"], change.get("predictions"),
                          change.get("outputs"), n_threads=args["n_threads"])


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


def test_counts_given_to_the_sparse_conversions_are_checked_as_rows_are_placed(sparse_data):
    x, _ = sparse_data
    pixels = (x > 0.5).astype(np.uint8)
    table = np.divide(np.arange(256), 255)
    for convert, rows, count in (
            (_kernels.sparse_rows, (x,), _kernels.row_counts(x)),
            (_kernels.sparse_pixels, (pixels, table), _kernels.pixel_counts(pixels, table))):
        expected = convert(*rows)
        given = convert(*rows, counts=count)
        assert all(np.array_equal(a, b) for a, b in zip(given, expected))
        one_less, one_more, negative = count.copy(), count.copy(), count.copy()
        one_less[3] -= 1
        one_more[0] += 1
        negative[0], negative[1] = -5, negative[1] + 5 + negative[0]  # the same total
        for wrong in (one_less, one_more):
            with pytest.raises(ValueError, match="counts does not match the rows: 1 of them"):
                convert(*rows, counts=wrong)
        too_many = count.copy()
        too_many[2] = rows[0].shape[1] + 1
        for wrong in (negative, too_many):
            with pytest.raises(ValueError, match=f"counts must be from 0 to {x.shape[1]}"):
                convert(*rows, counts=wrong)
        with pytest.raises(ValueError, match=r"counts must be \d+ int64 numbers, one per row"):
            convert(*rows, counts=count[1:])
    # a Dataset given its counts (as distort counts) stores the same rows, its range unmeasured
    data = _kernels.Dataset(x, layout="sparse", counts=_kernels.row_counts(x))
    stored = _kernels.Dataset(x, layout="sparse").stored()
    assert all(np.array_equal(a, b) for a, b in zip(data.stored(), stored))
    assert np.isnan(data.minimum) and np.isnan(data.root_mean_square)
    with pytest.raises(ValueError, match="counts does not match the rows"):
        _kernels.Dataset(x, layout="sparse", counts=np.zeros(len(x), np.int64))
    with pytest.raises(ValueError, match="counts go with floating-point rows"):
        _kernels.Dataset(pixels, counts=_kernels.pixel_counts(pixels, table))
    with pytest.raises(ValueError, match="literal rows keep every entry"):
        _kernels.Dataset(x, literal=True, counts=_kernels.row_counts(x))


def test_a_dataset_reuses_the_storage_of_one_no_longer_needed(sparse_data):
    x, y = sparse_data
    w01, w12 = random_weights(x.shape[1], 4, 3)
    params = padded(w01, w12, np.zeros(4), np.zeros(3))
    first = _kernels.Dataset(x, y, layout="sparse")
    first_data = first.stored()[0]
    fewer = x.copy()
    fewer[:, ::2] = 0  # fewer entries: they fit in the first's storage
    second = _kernels.Dataset(fewer, y, layout="sparse", reuse=first)
    assert first.taken and not second.taken
    assert np.shares_memory(second.stored()[0], first_data)
    expected = _kernels.Dataset(fewer, y, layout="sparse").stored()
    assert all(np.array_equal(a, b) for a, b in zip(second.stored(), expected))
    taken = "this Dataset's storage was taken over by another"
    for use in (first.stored, lambda: _kernels.evaluate(first, *params),
                lambda: _kernels.Workspace(first, *params)):
        with pytest.raises(ValueError, match=taken):
            use()
    with pytest.raises(ValueError, match=taken):
        _kernels.Dataset(fewer, y, layout="sparse", reuse=first)
    # more entries than the storage holds: new storage, and the other keeps its own
    denser = np.where(x == 0, 0.25, x)
    third = _kernels.Dataset(denser, y, layout="sparse", reuse=second)
    assert not second.taken and not np.shares_memory(third.stored()[0], second.stored()[0])
    assert all(np.array_equal(a, b) for a, b in zip(third.stored(), first_stored(denser, y)))
    # and room to spare: the next such data set fits in it
    assert _kernels.Dataset(denser, y, layout="sparse", reuse=third) and third.taken
    with pytest.raises(TypeError, match="reuse must be a Dataset, got ndarray"):
        _kernels.Dataset(x, y, layout="sparse", reuse=x)


def first_stored(x, y):
    return _kernels.Dataset(x, y, layout="sparse").stored()


def test_storage_given_to_the_sparse_conversions_is_checked(sparse_data):
    x, _ = sparse_data
    total = np.count_nonzero(x)
    data, indices = np.empty(total + 3), np.empty(total + 3, np.uint16)
    rows = _kernels.sparse_rows(x, storage=(data, indices))
    assert np.shares_memory(rows[0], data) and len(rows[0]) == total
    assert all(np.array_equal(a, b) for a, b in zip(rows, _kernels.sparse_rows(x)))
    for wrong, message in (((data[:total - 1], indices), "storage's data holds"),
                           ((data, indices.astype(np.int32)), "storage's indices must be a "
                                                              "writeable 1-D uint16 array"),
                           ((data.astype(np.float32), indices), "storage's data must be")):
        with pytest.raises(ValueError, match=message):
            _kernels.sparse_rows(x, storage=wrong)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_size, keep, book", [(1, 1.0, False), (1, 0.5, True),
                                                     (8, 0.7, False), (8, 0.5, True)])
@pytest.mark.parametrize("layout", ["sparse", "dense"])
def test_padded_rows_change_nothing_and_stay_zero(sparse_data, dtype, batch_size, keep, book,
                                                  layout):
    """weights_0_1 and bias_1 padded with more zero columns than the build needs: the same
    bits in the real columns, zeros in the padding, for training and evaluation."""
    if book and dtype == np.float32:
        pytest.skip("book mode is float64")
    x, labels = sparse_data
    w01, w12 = random_weights(30, 7, 4, dtype=dtype)
    plain = padded(w01, w12)
    width = 2 * plain[0].shape[1]
    wider = [_kernels.aligned_zeros((30, width), dtype), _kernels.aligned_zeros(width, dtype),
             w12.copy(), np.zeros(4, dtype)]
    wider[0][:, :7] = w01
    for params in (plain, wider):
        train(dataset(x.astype(dtype), labels, layout), params, 0.05, batch_size, book=book,
              keep=keep, bit_generator=np.random.PCG64(1), bias=not book, epochs=2)
    assert np.array_equal(wider[0][:, :7], plain[0][:, :7]) and not wider[0][:, 7:].any()
    assert np.array_equal(wider[1][:7], plain[1][:7]) and not wider[1][7:].any()
    assert np.array_equal(wider[2], plain[2]) and np.array_equal(wider[3], plain[3])
    outputs = [np.empty((len(x), 4), dtype) for _ in range(2)]
    for params, out in zip((plain, wider), outputs):
        _kernels.evaluate(dataset(x.astype(dtype), layout=layout), *params, MSE, None, out)
    assert np.array_equal(outputs[0], outputs[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", [1, 3, 40, 100, 131])
def test_networks_pad_rows_to_whole_vectors(dtype, hidden):
    """The padding the kernels rely on: whole blocks of 32 bytes (AVX2's vectors; the AVX-512
    build ends a row with half a vector), the same layout whichever build runs, never a block
    more than needed."""
    width = padded_width(hidden, dtype)
    block = 32 // np.dtype(dtype).itemsize
    assert width % block == 0 and hidden <= width < hidden + block
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
