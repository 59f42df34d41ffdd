"""The network in plain NumPy, written for clarity: the oracle for grokreg's default mode.

Loss per example: half the squared error, L = 0.5 * sum((target - output)**2); a mini-batch
averages it. Updates: w -= alpha * dL/dw.
"""
import numpy as np


def one_hot(labels, n_outputs):
    return np.eye(n_outputs)[labels]


def forward(x, w01, w12, mask=None, scale=1.0):
    z = x @ w01
    h = np.maximum(z, 0)
    if mask is not None:
        h = h * mask * scale
    return z, h, h @ w12


def batch_loss(x, labels, w01, w12, mask=None, scale=1.0):
    """Mean over the batch of half the squared error."""
    _, _, out = forward(x, w01, w12, mask, scale)
    return 0.5 * np.sum((one_hot(labels, w12.shape[1]) - out) ** 2) / len(x)


def gradients(x, labels, w01, w12, mask=None, scale=1.0):
    """(dL/dw01, dL/dw12) of batch_loss, by backpropagation."""
    z, h, out = forward(x, w01, w12, mask, scale)
    delta_2 = (one_hot(labels, w12.shape[1]) - out) / len(x)
    gate = (z > 0) * (1.0 if mask is None else mask * scale)
    delta_1 = (delta_2 @ w12.T) * gate
    return -(x.T @ delta_1), -(h.T @ delta_2)


def train_epoch(x, labels, w01, w12, alpha, batch_size, keep=1.0, generator=None):
    """One epoch in default mode, in place; masks drawn as grokreg draws them (unit by unit)."""
    error, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        xb, lb = x[start:start + batch_size], labels[start:start + batch_size]
        mask = None
        if keep < 1:
            mask = (generator.random((len(xb), w01.shape[1])) < keep).astype(float)
        _, _, out = forward(xb, w01, w12, mask, 1 / keep)
        error += np.sum((one_hot(lb, w12.shape[1]) - out) ** 2)
        correct += int(np.sum(out.argmax(axis=1) == lb))
        g01, g12 = gradients(xb, lb, w01, w12, mask, 1 / keep)
        w01 -= alpha * g01
        w12 -= alpha * g12
    return error, correct
