"""The regularizers in the kernels (weight decay, momentum, Nesterov, max-norm, input dropout,
sample weights) against the NumPy model's formulas, against central differences and against
repeated examples; and their guarantees: the same bits at any thread count and in either
layout, and no change at all when off."""
import numpy as np
import pytest

import numpy_model as model
from grokreg._dispatch import kernels as _kernels
from test_kernels import dataset, padded, random_weights, unpadded

MSE, CE = _kernels.Loss.SQUARED_ERROR, _kernels.Loss.SOFTMAX_CROSS_ENTROPY
LOSS_CODES = {"mse": MSE, "softmax_cross_entropy": CE}
TOLERANCE = {np.float64: 1e-9, np.float32: 2e-4}

OPTIONS = {
    "weight decay": dict(weight_decay=0.3),
    "momentum": dict(momentum=0.8),
    "nesterov": dict(momentum=0.7, nesterov=True),
    "decay and momentum": dict(weight_decay=0.2, momentum=0.6),
    "max-norm": dict(max_norm=0.35),
    "input dropout": dict(input_keep=0.7),
    "sample weights": dict(sample_weight="weights"),
    "all of them": dict(weight_decay=0.1, momentum=0.5, nesterov=True, max_norm=0.4,
                        input_keep=0.8, sample_weight="weights"),
}


def problem(n=33, n_inputs=30, density=0.4, seed=5):
    rng = np.random.default_rng(seed)
    x = rng.random((n, n_inputs)) * (rng.random((n, n_inputs)) < density)
    labels = rng.integers(0, 4, size=n)
    weights = rng.integers(0, 4, size=n).astype(float) * rng.random(n)
    weights[3] = 0
    return x, labels, weights


def train_both(options, dtype, batch_size, n_threads=1, layout="auto", loss="mse", keep=1.0,
               epochs=2, seed=5):
    """The kernels and the NumPy model, from the same start, for epochs: (kernels' results
    and parameters, the model's)."""
    x, labels, weights = problem(seed=seed)
    options = dict(options)
    sample_weight = weights if options.pop("sample_weight", None) else None
    w01, w12 = random_weights(30, 7, 4, seed=seed, dtype=dtype)
    b1, b2 = np.linspace(-0.1, 0.1, 7).astype(dtype), np.linspace(0.05, -0.05, 4).astype(dtype)
    params = padded(w01, w12, b1, b2)
    velocities = [np.zeros_like(p) for p in params]
    reference = [a.astype(np.float64) for a in (w01, b1, w12, b2)]
    ref_velocities = [np.zeros_like(p) for p in reference]
    data = _kernels.Dataset(np.ascontiguousarray(x.astype(dtype)), labels.astype(np.int64),
                            layout=layout, sample_weight=sample_weight)
    results, expected = [], []
    for epoch in range(epochs):
        order = np.random.default_rng(epoch).permutation(len(x)) if epoch else np.arange(len(x))
        stream = np.random.PCG64(epoch)
        input_keep = options.get("input_keep", 1.0)
        work = _kernels.Workspace(
            data, *params, alpha=0.3, batch_size=batch_size, keep=keep, bit_generator=stream,
            input_generator=stream, loss=LOSS_CODES[loss], train_bias=True,
            n_threads=n_threads, velocities=velocities if options.get("momentum") else None,
            **options)
        results.append(work.train_epoch(order))
        expected.append(model.train_epoch(
            x[order].astype(dtype).astype(np.float64), labels[order], reference, 0.3,
            batch_size, keep, np.random.PCG64(epoch), loss, True,
            weight_decay=options.get("weight_decay", 0.0), momentum=options.get("momentum", 0.0),
            nesterov=options.get("nesterov", False), max_norm=options.get("max_norm"),
            input_keep=input_keep, velocities=ref_velocities,
            sample_weight=None if sample_weight is None else sample_weight[order]))
    return results, params, velocities, expected, reference, ref_velocities


@pytest.mark.parametrize("name", list(OPTIONS))
@pytest.mark.parametrize("batch_size", [1, 8, 33])  # 8: a last batch of 1; 33: the whole set
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("keep, loss", [(1.0, "mse"), (0.6, "softmax_cross_entropy")])
def test_each_regularizer_matches_the_numpy_model(name, batch_size, dtype, keep, loss):
    """Each formula of the kernels, as numpy_model.train_epoch writes it out: the parameters,
    the velocities, the weighted losses and hits."""
    results, params, velocities, expected, reference, ref_velocities = train_both(
        OPTIONS[name], dtype, batch_size, keep=keep, loss=loss)
    tolerance = TOLERANCE[dtype]
    for (error, correct, seen, finite), (ref_error, ref_correct) in zip(results, expected):
        assert finite
        assert error == pytest.approx(ref_error, rel=tolerance, abs=tolerance)
        assert correct == pytest.approx(ref_correct, rel=tolerance, abs=tolerance)
    for found, wanted in zip(unpadded(params), reference):
        np.testing.assert_allclose(found, wanted, rtol=tolerance, atol=tolerance)
    if OPTIONS[name].get("momentum"):
        for found, wanted in zip(unpadded(velocities), ref_velocities):
            np.testing.assert_allclose(found, wanted, rtol=tolerance, atol=tolerance)
    assert not params[0][:, 7:].any() and not params[1][7:].any()  # the padding stays zero


@pytest.mark.parametrize("name", list(OPTIONS))
@pytest.mark.parametrize("batch_size", [1, 8])
def test_the_same_bits_at_any_thread_count_and_in_either_layout(name, batch_size):
    runs = [train_both(OPTIONS[name], np.float64, batch_size, n_threads, layout, keep=0.6)
            for n_threads, layout in ((1, "sparse"), (2, "sparse"), (3, "sparse"), (1, "dense"),
                                      (2, "dense"))]
    first = runs[0]
    for other in runs[1:]:
        assert other[0] == first[0]
        for a, b in zip(other[1] + other[2], first[1] + first[2]):
            assert np.array_equal(a, b)


def test_a_slowly_decaying_per_example_fit_folds_its_scale_and_keeps_the_formula():
    """Per-example weight decay keeps weights_0_1 as a scale times its rows: over enough steps
    the scale is folded in (it fell below 2**-20 here), and the formula still holds."""
    results, params, _, expected, reference, _ = train_both(dict(weight_decay=2.0), np.float64,
                                                            1, epochs=25)
    assert (1 - 0.3 * 2.0) ** 33 < 2.0 ** -20  # one epoch's steps shrink it past the fold
    for found, wanted in zip(unpadded(params), reference):
        np.testing.assert_allclose(found, wanted, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("loss", ["mse", "softmax_cross_entropy"])
def test_the_penalised_step_is_the_penalised_gradient_by_central_differences(loss):
    """One full-batch step with weight decay moves each weight by -alpha times the gradient of
    mean loss + weight_decay / 2 * |weights|^2 (the biases unpenalised)."""
    rng = np.random.default_rng(3)
    x = rng.random((12, 6)) * (rng.random((12, 6)) < 0.6)
    labels = rng.integers(0, 3, size=12)
    w01, w12 = random_weights(6, 5, 3, seed=4)
    w01 *= 5  # larger pre-activations keep ReLU away from its kink under perturbation
    b1, b2 = rng.normal(0, 0.1, 5), rng.normal(0, 0.1, 3)
    params = padded(w01, w12, b1, b2)
    before = [p.copy() for p in unpadded(params)]
    alpha, decay = 1e-3, 0.7
    work = _kernels.Workspace(dataset(x, labels), *params, alpha=alpha, batch_size=12,
                              loss=LOSS_CODES[loss], train_bias=True, weight_decay=decay)
    work.train_epoch(np.arange(12))

    def objective(w01, b1, w12, b2):
        penalty = 0.5 * decay * (np.sum(w01 ** 2) + np.sum(w12 ** 2))
        return model.batch_loss(x, labels, w01, w12, b1=b1, b2=b2, loss=loss) + penalty

    step = 1e-6
    for index, (updated, original) in enumerate(zip(unpadded(params), before)):
        numeric = np.zeros_like(original)
        for position in np.ndindex(original.shape):
            plus, minus = [p.copy() for p in before], [p.copy() for p in before]
            plus[index][position] += step
            minus[index][position] -= step
            numeric[position] = (objective(*plus) - objective(*minus)) / (2 * step)
        np.testing.assert_allclose((original - updated) / alpha, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("layout", ["sparse", "dense"])
def test_integer_weights_train_as_the_examples_repeated_within_one_batch(layout):
    """Weights 2, 1, 3 in one batch: the step of the batch holding the first example twice,
    the second once, the third three times."""
    rng = np.random.default_rng(8)
    x = rng.random((3, 10)) * (rng.random((3, 10)) < 0.7)
    labels = np.array([0, 2, 1])
    repeats = np.array([2, 1, 3])
    start = padded(*random_weights(10, 6, 3, seed=9))
    weighted, repeated = [p.copy() for p in start], [p.copy() for p in start]
    _kernels.Workspace(dataset(x, labels, layout, sample_weight=repeats.astype(float)),
                       *weighted, alpha=0.5, batch_size=3).train_epoch(np.arange(3))
    x_repeated, labels_repeated = np.repeat(x, repeats, axis=0), np.repeat(labels, repeats)
    _kernels.Workspace(dataset(x_repeated, labels_repeated, layout), *repeated, alpha=0.5,
                       batch_size=6).train_epoch(np.arange(6))
    for a, b in zip(weighted, repeated):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def test_a_batch_that_weighs_nothing_takes_no_gradient():
    x, labels, _ = problem()
    params = padded(*random_weights(30, 7, 4))
    before = [p.copy() for p in params]
    _kernels.Workspace(dataset(x, labels, sample_weight=np.zeros(len(x))), *params, alpha=0.5,
                       batch_size=8).train_epoch(np.arange(len(x)))
    for a, b in zip(params, before):
        assert np.array_equal(a, b)


def test_evaluation_weighs_each_example():
    x, labels, weights = problem()
    params = padded(*random_weights(30, 7, 4))
    plain = _kernels.evaluate(dataset(x, labels), *params)
    weighted = _kernels.evaluate(dataset(x, labels, sample_weight=weights), *params)
    outputs = np.empty((len(x), 4))
    _kernels.evaluate(dataset(x), *params, outputs=outputs)
    losses = model.example_losses(outputs, labels, "mse")
    hits = outputs.argmax(axis=1) == labels
    assert plain == pytest.approx((losses.sum(), hits.sum()), rel=1e-12)
    assert weighted == pytest.approx((weights @ losses, weights @ hits), rel=1e-12)


@pytest.mark.parametrize("change, message", [
    (dict(weight_decay=-0.1), "weight_decay must be finite and >= 0"),
    (dict(weight_decay=float("inf")), "weight_decay must be finite and >= 0"),
    (dict(max_norm=-1.0), "max_norm must be finite and >= 0"),
    (dict(momentum=1.0), r"momentum must be in \[0, 1\), got 1.0"),
    (dict(momentum=0.5), "momentum needs the four velocities"),
    (dict(momentum=0.5, velocities=[np.zeros(3)] * 4), "each velocity must be a C-contiguous"),
    (dict(input_keep=0.0), r"input_keep must be in \(0, 1\]"),
    (dict(input_keep=0.5, input_generator=object()), "BitGenerator"),
    (dict(book=True, weight_decay=0.1), "the book's network has no weight decay"),
    (dict(book=True, momentum=0.1), "the book's network has no weight decay"),
])
def test_a_workspace_refuses_regularizers_that_would_break_it(change, message):
    x, labels, _ = problem()
    params = padded(*random_weights(30, 7, 4))
    with pytest.raises((ValueError, TypeError), match=message):
        _kernels.Workspace(dataset(x, labels), *params, **change)


@pytest.mark.parametrize("weights, message", [
    (np.ones(4), "sample_weight has 4 entries for 33 examples"),
    (np.full(33, -1.0), "sample_weight must hold finite, non-negative numbers"),
    (np.full(33, np.nan), "sample_weight must hold finite, non-negative numbers"),
    (np.ones(33, dtype=np.float32), "sample_weight must be a C-contiguous float64 array"),
])
def test_a_dataset_refuses_bad_sample_weights(weights, message):
    x, labels, _ = problem()
    with pytest.raises((ValueError, TypeError), match=message):
        dataset(x, labels, sample_weight=weights)
