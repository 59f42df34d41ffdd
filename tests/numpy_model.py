"""The network in plain NumPy, written for clarity: the oracle for grokreg's default mode.

Loss per example: half the squared error, 0.5 * sum((target - output)**2) ("mse"), or the
cross-entropy of softmax(output) ("softmax_cross_entropy"); a mini-batch averages it.
Updates: parameter -= alpha * gradient.
"""
import math
import sys

import numpy as np


def one_hot(labels, n_outputs):
    return np.eye(n_outputs)[labels]


def softmax(out):
    e = np.exp(out - out.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def forward(x, w01, w12, mask=None, scale=1.0, b1=0.0, b2=0.0):
    z = x @ w01 + b1
    h = np.maximum(z, 0)
    if mask is not None:
        h = h * mask * scale
    return z, h, h @ w12 + b2


def example_losses(out, labels, loss):
    """Per-example loss as grokreg reports it (squared error summed over outputs, or CE)."""
    if loss == "mse":
        return np.sum((one_hot(labels, out.shape[1]) - out) ** 2, axis=1)
    return -np.log(softmax(out)[np.arange(len(labels)), labels])


def batch_loss(x, labels, w01, w12, mask=None, scale=1.0, b1=0.0, b2=0.0, loss="mse"):
    """The minimised objective: mean over the batch of half the squared error, or of the CE."""
    _, _, out = forward(x, w01, w12, mask, scale, b1, b2)
    factor = 0.5 if loss == "mse" else 1.0
    return factor * np.mean(example_losses(out, labels, loss))


def gradients(x, labels, w01, w12, mask=None, scale=1.0, b1=0.0, b2=0.0, loss="mse"):
    """(dL/dw01, dL/db1, dL/dw12, dL/db2) of batch_loss, by backpropagation."""
    z, h, out = forward(x, w01, w12, mask, scale, b1, b2)
    prediction = out if loss == "mse" else softmax(out)
    delta_2 = (one_hot(labels, w12.shape[1]) - prediction) / len(x)
    gate = (z > 0) * (1.0 if mask is None else mask * scale)
    delta_1 = (delta_2 @ w12.T) * gate
    return -(x.T @ delta_1), -delta_1.sum(axis=0), -(h.T @ delta_2), -delta_2.sum(axis=0)


GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)


def splitmix64(counters):
    """SplitMix64's output function of uint64 counters (numpy's uint64 arithmetic wraps)."""
    z = counters.copy()
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def dropout_masks(bit_generator, shape, keep):
    """Masks as grokreg's default mode draws them for one batch (shape: examples x units):
    one 64-bit key from the generator, then SplitMix64's stream from it, example after
    example, each 64-bit output giving two units (its low 32 bits, then its high), a unit
    kept when below keep * 2**32."""
    n_examples, n_units = shape
    pairs = (n_units + 1) // 2
    key = np.uint64(bit_generator.random_raw())
    counters = key + GOLDEN_GAMMA * np.arange(1, n_examples * pairs + 1, dtype=np.uint64)
    raw = splitmix64(counters).reshape(n_examples, pairs)
    bits = np.empty((n_examples, 2 * pairs), dtype=np.uint64)
    bits[:, 0::2], bits[:, 1::2] = raw & np.uint64(0xFFFFFFFF), raw >> np.uint64(32)
    return (bits[:, :n_units] < np.uint64(int(keep * 2**32))).astype(float)


def train_epoch(x, labels, params, alpha, batch_size, keep=1.0, bit_generator=None, loss="mse",
                bias=False, *, weight_decay=0.0, momentum=0.0, nesterov=False, max_norm=None,
                input_keep=1.0, sample_weight=None, velocities=None):
    """One epoch in default mode, params = [w01, b1, w12, b2] updated in place (velocities
    likewise, with momentum); masks drawn as grokreg draws them (per batch, or per example:
    the hidden units' key, then the inputs'). Returns (summed loss, n_correct), each example
    counting for its sample weight.

    A batch's gradient g is the weighted mean sum(w_i g_i) / sum(w_i) (zero where the batch
    weighs nothing); the step is -alpha * (g + weight_decay * W) for the weights, -alpha * g
    for the biases; with momentum, v = momentum * v + step and W += v (Nesterov: momentum * v
    + step); max_norm rescales each unit's incoming weights (a column of w01 or w12) to that
    norm where it exceeds it.
    """
    w01, b1, w12, b2 = params
    weights = np.ones(len(x)) if sample_weight is None else np.asarray(sample_weight, float)
    error, correct = 0.0, 0.0
    for start in range(0, len(x), batch_size):
        xb, lb = x[start:start + batch_size], labels[start:start + batch_size]
        wb = weights[start:start + batch_size]
        mask = None
        if keep < 1:
            mask = dropout_masks(bit_generator, (len(xb), w01.shape[1]), keep)
        if input_keep < 1:
            xb = xb * dropout_masks(bit_generator, xb.shape, input_keep) / input_keep
        _, _, out = forward(xb, w01, w12, mask, 1 / keep, b1, b2)
        error += np.sum(wb * example_losses(out, lb, loss))
        correct += np.sum(wb * (out.argmax(axis=1) == lb))
        # the weighted mean: gradients() averages over the batch; weight each example by
        # w_i * size / sum(w) (0 where the batch weighs nothing)
        total = wb.sum()
        share = wb * len(xb) / total if total > 0 else np.zeros(len(xb))
        g01, g1, g12, g2 = weighted_gradients(xb, lb, w01, w12, mask, 1 / keep, b1, b2, loss,
                                              share)
        steps = [-alpha * (g01 + weight_decay * w01), -alpha * g1,
                 -alpha * (g12 + weight_decay * w12), -alpha * g2]
        trained = [0, 1, 2, 3] if bias else [0, 2]
        for index in trained:
            if momentum:
                velocities[index] *= momentum
                velocities[index] += steps[index]
                # velocities below the smallest normal number are set to zero
                tiny = np.finfo(velocities[index].dtype).tiny
                velocities[index][np.abs(velocities[index]) < tiny] = 0
                params[index] += (momentum * velocities[index] + steps[index] if nesterov
                                  else velocities[index])
            else:
                params[index] += steps[index]
        if max_norm is not None:
            for matrix in (w01, w12):
                norms = np.sqrt(np.sum(matrix ** 2, axis=0))
                over = norms > max_norm
                matrix[:, over] *= max_norm / norms[over]
    return error, correct


def weighted_gradients(x, labels, w01, w12, mask, scale, b1, b2, loss, share):
    """gradients() with each example's contribution multiplied by share[i]."""
    z, h, out = forward(x, w01, w12, mask, scale, b1, b2)
    prediction = out if loss == "mse" else softmax(out)
    delta_2 = (one_hot(labels, w12.shape[1]) - prediction) * share[:, None] / len(x)
    gate = (z > 0) * (1.0 if mask is None else mask * scale)
    delta_1 = (delta_2 @ w12.T) * gate
    return -(x.T @ delta_1), -delta_1.sum(axis=0), -(h.T @ delta_2), -delta_2.sum(axis=0)


def _scalar_fma():
    """a * b + c in float64 rounded once: math.fma (Python 3.13), else the C library's fma."""
    if hasattr(math, "fma"):
        return math.fma
    import ctypes
    import ctypes.util

    library = ctypes.CDLL("ucrtbase" if sys.platform == "win32" else ctypes.util.find_library("m"))
    fma = library.fma
    fma.restype, fma.argtypes = ctypes.c_double, [ctypes.c_double] * 3
    return fma


_FMA64 = np.frompyfunc(_scalar_fma(), 3, 1)


def fused_multiply_add(a, b, c):
    """a * b + c rounded once (IEEE 754's fusedMultiplyAdd), element-wise, in c's dtype: each
    term of the kernels' matrix products (sparse rows and dense tiles alike).

    float32 through float64, exactly: the product of two float32 is exact in float64 (48 of
    53 bits), and the sum rounded to odd (the nearest float64, stepped towards the exact sum
    by its TwoSum error where it came out even and inexact) rounds to the correct float32
    (Boldo and Melquiond, "Emulation of FMA and correctly rounded sums: proved algorithms
    using rounding to odd", IEEE Trans. Computers 57(4), 2008: 53 >= 2 * 24 + 2). float64
    through the C library's fma, one element at a time (slow; the tests' arrays are small).
    """
    c = np.asarray(c)
    if c.dtype == np.float64:
        return _FMA64(a, b, c).astype(np.float64)
    assert c.dtype == np.float32, c.dtype
    product = np.asarray(a, np.float64) * np.asarray(b, np.float64)
    addend = c.astype(np.float64)
    total = product + addend
    virtual = total - product  # TwoSum: product + addend == total + error exactly
    error = (product - (total - virtual)) + (addend - virtual)
    even = (total.view(np.int64) & 1) == 0
    towards = np.where(error > 0, np.inf, -np.inf)
    total = np.where((error != 0) & even, np.nextafter(total, towards), total)
    return total.astype(np.float32)
