"""grokreg.Network: its contract, equivalent inputs, seeding, and refusals of bad input."""
import os
import threading

import numpy as np
import pytest

import grokreg
import numpy_model


@pytest.fixture(scope="module")
def small(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    return x_train[:300], y_train[:300], x_test[:500], y_test[:500]


def trained(small, **options):
    x, y, x_test, y_test = small
    net = grokreg.Network(hidden=options.pop("hidden", 20), seed=options.pop("seed", 3), **options)
    history = net.fit(x, y, epochs=3, alpha=0.01, test_data=(x_test, y_test))
    return net, history


def test_fit_learns_and_reports(small):
    x, y, x_test, y_test = small
    net, history = trained(small)
    assert history.epoch == [0, 1, 2] and history.stop_reason == "completed"
    assert history.history["accuracy"][-1] > history.history["accuracy"][0]
    assert net.score(x_test, y_test) > 0.5  # 3 epochs on 300 images; chance is 0.1
    # the plain NumPy network is the oracle for what the kernels evaluate
    _, _, out = numpy_model.forward(x_test.reshape(len(x_test), -1) / 255, net.weights_0_1,
                                    net.weights_1_2)
    error, accuracy = net.evaluate(x_test, y_test)
    assert error == pytest.approx(numpy_model.example_losses(out, y_test, "mse").mean(), rel=1e-12)
    assert accuracy == np.mean(out.argmax(axis=1) == y_test)
    assert history.history["test_accuracy"][-1] == accuracy  # recorded at the last epoch
    predictions = net.predict(x_test)
    assert predictions.dtype == np.int64 and predictions.shape == (500,)
    assert accuracy == np.mean(predictions == y_test)
    assert np.array_equal(net.decision_function(x_test).argmax(axis=1), predictions)
    assert net.history_ is history


def test_test_data_evaluated_every_eval_every_and_at_the_end(small):
    x, y, x_test, y_test = small
    net = grokreg.Network(hidden=10, seed=0)
    history = net.fit(x[:50], y[:50], epochs=7, test_data=(x_test, y_test), eval_every=3)
    assert history.evaluated("test_accuracy")[0] == [0, 3, 6]
    history = net.fit(x[:50], y[:50], epochs=5, test_data=(x_test, y_test), eval_every=3)
    assert history.evaluated("test_accuracy")[0] == [0, 3, 4]
    assert np.isnan(history.history["test_error"][1])


def test_equivalent_inputs_give_identical_results(small):
    """uint8 images in any layout, scaled floats, one-hot labels and odd arrays all agree."""
    x, y, _, _ = small
    x_flat = x.reshape(len(x), 784)
    big_endian = (x_flat / 255).astype(">f8")
    strided = np.repeat(x_flat, 2, axis=0)[::2]
    read_only = x_flat.copy()
    read_only.flags.writeable = False
    variants = [
        (x, y),
        (x_flat, y),
        (x_flat / 255, y),
        (big_endian, y),
        (strided, y),
        (read_only, y),
        (x, np.eye(10)[y]),
        (x, y.astype(np.uint8)),
        ((x_flat / 255).tolist(), y.tolist()),
    ]
    results = []
    for inputs, labels in variants:
        net = grokreg.Network(hidden=12, seed=7)
        net.fit(inputs, labels, epochs=2, alpha=0.01)
        results.append(net.weights_0_1.copy())
    for result in results[1:]:
        assert np.array_equal(result, results[0])


def test_uint8_images_train_float32_as_their_scaled_images(small):
    """uint8 pixels (scaled while their sparse rows are built) = np.divide(x, 255, dtype=float32)."""
    x, y, x_test, y_test = small
    nets = []
    for inputs, tests in ((x, x_test), (np.divide(x, 255, dtype=np.float32),
                                        np.divide(x_test, 255, dtype=np.float32))):
        net = grokreg.Network(hidden=12, seed=7, dtype="float32", dropout=0.5)
        history = net.fit(inputs, y, epochs=2, alpha=0.05, batch_size=10, test_data=(tests, y_test))
        nets.append((net, history.history, net.decision_function(tests)))
    (first, history, outputs), (second, other_history, other_outputs) = nets
    assert np.array_equal(first.weights_0_1, second.weights_0_1)
    assert history == other_history and np.array_equal(outputs, other_outputs)


def test_more_inputs_than_16_bit_columns_address(small):
    """Past 65,536 inputs the sparse rows' columns are 32-bit: the network computes as NumPy."""
    x, y, _, _ = small
    x = x.reshape(len(x), -1)
    wide = np.zeros((len(x), 70_000))
    wide[:, -x.shape[1]:] = x / 255  # every input beyond 16 bits
    net = grokreg.Network(hidden=6, seed=3, n_inputs=wide.shape[1])
    net.fit(wide, y, epochs=2, alpha=0.05, batch_size=10)
    expected = np.maximum(wide @ net.weights_0_1, 0) @ net.weights_1_2
    assert np.abs(net.decision_function(wide) - expected).max() < 1e-12
    assert np.abs(net.weights_0_1[-x.shape[1]:]).max() > 0.1 + 1e-3  # trained: started in ±0.1


def test_memory_mapped_inputs(small, tmp_path):
    x, y, _, _ = small
    mapped = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.uint8, shape=x.shape)
    mapped[:] = x
    a, b = grokreg.Network(hidden=8, seed=1), grokreg.Network(hidden=8, seed=1)
    a.fit(mapped, y, epochs=1)
    b.fit(x, y, epochs=1)
    assert np.array_equal(a.weights_1_2, b.weights_1_2)


def test_seeding(small):
    same = [trained(small, seed=11)[0].weights_1_2 for _ in range(2)]
    assert np.array_equal(*same)
    other = trained(small, seed=12)[0].weights_1_2
    assert not np.array_equal(same[0], other)
    generator_seeded = trained(small, seed=np.random.default_rng(11), dropout=0.3)[0].weights_1_2
    int_seeded = trained(small, seed=11, dropout=0.3)[0].weights_1_2
    assert np.array_equal(generator_seeded, int_seeded)


def test_a_generator_seed_is_advanced_like_numpy():
    generator = np.random.default_rng(5)
    grokreg.Network(hidden=3, seed=generator, n_inputs=4, n_outputs=2)
    expected = np.random.default_rng(5)
    expected.random((4, 3)), expected.random((3, 2))
    assert generator.random() == expected.random()


def test_book_weights_are_the_books_draws():
    net = grokreg.Network(hidden=40, seed=1, book=True)
    legacy = np.random.RandomState(1)
    assert np.array_equal(net.weights_0_1, 0.2 * legacy.random((784, 40)) - 0.1)
    assert np.array_equal(net.weights_1_2, 0.2 * legacy.random((40, 10)) - 0.1)


def test_float32_tracks_float64(small):
    x, y, x_test, y_test = small
    nets = {}
    for dtype in ("float64", "float32"):
        nets[dtype] = grokreg.Network(hidden=20, seed=2, dtype=dtype, dropout=0.2)
        nets[dtype].fit(x, y, epochs=2, alpha=0.01, batch_size=10)
    assert nets["float32"].weights_0_1.dtype == np.float32
    np.testing.assert_allclose(nets["float32"].weights_0_1, nets["float64"].weights_0_1, atol=1e-4)
    assert abs(nets["float32"].score(x_test, y_test) - nets["float64"].score(x_test, y_test)) < 0.01


def test_weights_are_read_only_views_and_settable_with_checks(small):
    net = grokreg.Network(hidden=5, seed=0)
    with pytest.raises(ValueError):
        net.weights_0_1[0, 0] = 1.0
    net.weights_1_2 = np.ones((5, 10))
    assert net.weights_1_2.dtype == np.float64 and net.weights_1_2.sum() == 50
    with pytest.raises(ValueError, match="shape"):
        net.weights_1_2 = np.ones((10, 5))
    with pytest.raises(ValueError, match="NaN"):
        net.weights_0_1 = np.full((784, 5), np.nan)


def test_divergence_stops_with_a_warning_and_finite_weights(small):
    x, y, _, _ = small
    net = grokreg.Network(hidden=20, seed=0, book=True)
    with pytest.warns(RuntimeWarning, match="diverged at epoch 0"):
        history = net.fit(x, y, epochs=5, alpha=10.0)
    assert history.stop_reason == "diverged" and history.epoch == []
    assert np.isfinite(net.weights_0_1).all() and np.isfinite(net.weights_1_2).all()


def test_divergence_can_be_followed_with_a_warning(small):
    x, y, _, _ = small
    net = grokreg.Network(hidden=20, seed=0, book=True)
    with pytest.warns(RuntimeWarning, match="diverged at epoch 0.*going on as asked"):
        history = net.fit(x, y, epochs=3, alpha=10.0, on_divergence="warn")
    assert history.stop_reason == "completed" and history.epoch == [0, 1, 2]
    assert np.isnan(history.history["error"][-1])
    with pytest.raises(ValueError, match="on_divergence"):
        net.fit(x, y, on_divergence="ignore")


def test_a_second_fit_on_the_same_network_is_refused(small):
    x, y, _, _ = small
    net = grokreg.Network(hidden=5, seed=0)

    def refit(record):
        net.fit(x, y, epochs=1)

    with pytest.raises(RuntimeError, match="already training"):
        net.fit(x, y, epochs=1, on_epoch_end=refit)
    net.fit(x, y, epochs=1)  # and the lock is released afterwards


def test_networks_train_in_parallel_threads_as_they_do_alone(small):
    x, y, _, _ = small
    alone = [grokreg.Network(hidden=16, seed=s, dropout=0.5) for s in (1, 2)]
    for net in alone:
        net.fit(x, y, epochs=3)
    together = [grokreg.Network(hidden=16, seed=s, dropout=0.5) for s in (1, 2)]
    threads = [threading.Thread(target=net.fit, args=(x, y), kwargs=dict(epochs=3)) for net in together]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for a, b in zip(alone, together):
        assert np.array_equal(a.weights_0_1, b.weights_0_1)


def test_n_threads_changes_nothing_but_speed(small):
    """The same fit and evaluations with n_threads 1, 2 and all CPUs; the setting is not saved."""
    x, y, x_test, y_test = small
    runs = []
    for n_threads in (1, 2, None):
        net = grokreg.Network(hidden=24, seed=5, dropout=0.3, bias=True, n_threads=n_threads)
        history = net.fit(x, y, epochs=3, alpha=0.1, batch_size=32, shuffle=True,
                          test_data=(x_test, y_test))
        runs.append((net, history))
    (first, history), *others = runs
    for net, other in others:
        assert other.history == history.history
        assert np.array_equal(net.weights_0_1, first.weights_0_1)
        assert np.array_equal(net.decision_function(x_test), first.decision_function(x_test))
        assert np.array_equal(net.predict(x_test), first.predict(x_test))


def test_n_threads_is_a_run_time_setting(small, tmp_path):
    net = grokreg.Network(hidden=8, seed=1, n_threads=2)
    net.n_threads = 1
    assert net.n_threads == 1
    with pytest.raises(ValueError, match="n_threads"):
        net.n_threads = -2
    path = net.save(tmp_path / "net.npz")
    assert grokreg.Network.load(path).n_threads == grokreg.network.usable_cpus()
    assert grokreg.Network.load(path, n_threads=3).n_threads == 3


def test_every_cpu_by_default_within_omp_num_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cpus = grokreg.network.usable_cpus()
    assert grokreg.Network(4, seed=0).n_threads == cpus >= 1
    if hasattr(os, "sched_getaffinity"):
        assert cpus == len(os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as Dask sets it in its workers
    assert grokreg.Network(4, seed=0).n_threads == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "64,2")  # nested levels: the first counts
    assert grokreg.Network(4, seed=0).n_threads == cpus
    assert all(net.n_threads == 1 for net in grokreg.Ensemble(2, 4, seed=0).networks)


X = np.zeros((4, 784), dtype=np.uint8)
Y = np.array([0, 1, 2, 3])


@pytest.mark.parametrize("options, error, message", [
    (dict(hidden=0), ValueError, "hidden"),
    (dict(hidden=2.5), TypeError, "hidden"),
    (dict(dropout=1.0), ValueError, "dropout"),
    (dict(dropout=-0.1), ValueError, "dropout"),
    (dict(dropout=float("nan")), ValueError, "dropout"),
    (dict(dtype="float16"), ValueError, "dtype"),
    (dict(dtype=None), ValueError, "dtype"),
    (dict(book="yes"), TypeError, "book"),
    (dict(book=True, dtype="float32"), ValueError, "float64"),
    (dict(book=True, dropout=0.3), ValueError, "0.5"),
    (dict(book=True, seed=-1), ValueError, "seed"),
    (dict(book=True, seed=np.random.default_rng()), TypeError, "seed"),
    (dict(seed="abc"), TypeError, "seed"),
    (dict(n_inputs=0), ValueError, "n_inputs"),
    (dict(n_threads=0), ValueError, "n_threads must be >= 1"),
    (dict(n_threads="2"), TypeError, "n_threads must be an int"),
])
def test_constructor_refuses(options, error, message):
    with pytest.raises(error, match=message):
        grokreg.Network(**options)


@pytest.mark.parametrize("x, y, options, error, message", [
    (X[:, :100], Y, {}, ValueError, "features"),
    (X[0], Y, {}, ValueError, "shape"),
    (X[:0], Y[:0], {}, ValueError, r"x is empty \(shape \(0, 784\)\): at least one example"),
    # found by the property tests: numpy cannot reshape an empty (0, H, W) to (0, -1)
    (X[:0].reshape(0, 28, 28), Y[:0], {}, ValueError, r"x is empty \(shape \(0, 784\)\)"),
    (X, Y[:3], {}, ValueError, "3 labels for 4"),
    (X.astype(np.int64), Y, {}, TypeError, "uint8"),
    (X.astype(object), Y, {}, TypeError, "numeric"),
    (np.full((4, 784), np.nan), Y, {}, ValueError, "NaN"),
    (np.full((4, 784), 1e300), Y, {}, ValueError, "infinite"),  # overflows float32 only
    # one bad value among good ones: found by the min and max the check reads
    (np.where(np.arange(4 * 784).reshape(4, 784) == 3000, np.nan, 0.5), Y, {}, ValueError, "NaN"),
    (np.where(np.arange(4 * 784).reshape(4, 784) == 5, -np.inf, 0.5), Y, {}, ValueError, "NaN"),
    (np.where(np.arange(4 * 784).reshape(4, 784) == 9, np.inf, 0.5), Y, {}, ValueError, "NaN"),
    ("pixels", Y, {}, TypeError, "x must be an array"),
    (X, np.array([0, 1, 2, 10]), {}, ValueError, r"0\.\.9"),
    (X, np.array([0, 1, 2, -1]), {}, ValueError, r"0\.\.9"),
    (X, Y + 0.5, {}, TypeError, "integer class labels, got dtype float64 with non-integer"),
    (X, np.full((4, 10), 0.1), {}, ValueError, "one-hot"),
    (X, np.ones((4, 10)), {}, ValueError, "one-hot"),
    (X, np.eye(9)[Y], {}, ValueError, "10 columns"),
    (X, Y, dict(alpha=0), ValueError, "alpha"),
    (X, Y, dict(alpha=-1), ValueError, "alpha"),
    (X, Y, dict(alpha=float("nan")), ValueError, "alpha"),
    (X, Y, dict(alpha="0.1"), TypeError, "alpha"),
    (X, Y, dict(epochs=-1), ValueError, "epochs"),
    (X, Y, dict(batch_size=0), ValueError, "batch_size"),
    (X, Y, dict(batch_size=5), ValueError, "batch_size"),
    (X, Y, dict(eval_every=0), ValueError, "eval_every"),
    (X, Y, dict(test_data=X), TypeError, "test_data"),
    (X, Y, dict(test_data=(X[:, :5], Y)), ValueError, r"test_data\[0\]"),
    (X, Y, dict(on_epoch_end=3), TypeError, "on_epoch_end"),
])
def test_fit_refuses(x, y, options, error, message):
    net = grokreg.Network(hidden=4, seed=0, dtype="float32")
    before = net.weights_0_1.copy()
    with pytest.raises(error, match=message):
        net.fit(x, y, **options)
    assert np.array_equal(net.weights_0_1, before)


@pytest.mark.parametrize("method", ["predict", "decision_function", "evaluate", "score"])
def test_inference_refuses_bad_input(method):
    net = grokreg.Network(hidden=4, seed=0)
    args = (X[:, :10],) if method in ("predict", "decision_function") else (X[:, :10], Y)
    with pytest.raises(ValueError, match="features"):
        getattr(net, method)(*args)


def test_shuffling_works_where_numpys_default_integer_is_32_bit(small, monkeypatch):
    """Windows with numpy 1.x: permutation() gives int32, which the kernels' order refuses."""
    x, y, _, _ = small
    expected = grokreg.Network(hidden=8, seed=4)
    expected.fit(x, y, epochs=2, shuffle=True)
    real = np.random.Generator

    class Generator32(real):
        def permutation(self, x):
            return super().permutation(x).astype(np.int32)

    monkeypatch.setattr(np.random, "Generator", Generator32)
    net = grokreg.Network(hidden=8, seed=4)
    net.fit(x, y, epochs=2, shuffle=True)
    assert np.array_equal(net.weights_0_1, expected.weights_0_1)
    order = np.arange(len(x), dtype=np.int64)
    real(grokreg.Network(hidden=8, seed=4)._bit_generator).shuffle(order)
    assert not np.array_equal(order, np.arange(len(x)))  # it did shuffle


def blow_up_after(epoch, net, snapshots):
    """An on_epoch_end that records each epoch's weights, and makes the epoch after `epoch`
    diverge (weights of 1e200: the next example's squared error overflows)."""
    def callback(record):
        snapshots[record["epoch"]] = [p.copy() for p in net._parameters]
        if record["epoch"] == epoch:
            net.weights_1_2 = np.full(net.weights_1_2.shape, 1e200)
    return callback


def test_divergence_after_good_epochs_keeps_the_last_finite_epoch(small):
    x, y, _, _ = small
    net = grokreg.Network(hidden=8, seed=0)
    snapshots = {}
    with pytest.warns(RuntimeWarning, match="weights from the end of epoch 2$"):
        history = net.fit(x, y, epochs=6, on_epoch_end=blow_up_after(2, net, snapshots))
    assert history.stop_reason == "diverged" and history.epoch == [0, 1, 2]
    assert np.array_equal(net.weights_0_1, snapshots[2][0])
    assert (net.weights_1_2 == 1e200).all()  # as the end of epoch 2 left them


def test_divergence_during_early_stopping_restores_the_best_epoch(small):
    x, y, x_test, y_test = small
    net = grokreg.Network(hidden=8, seed=0)
    snapshots = {}
    with pytest.warns(RuntimeWarning, match=r"its best epoch, (\d) \(restored by early stopping\)"):
        history = net.fit(x, y, epochs=8, validation_data=(x_test, y_test),
                          early_stopping=grokreg.EarlyStopping("val_error", patience=5),
                          on_epoch_end=blow_up_after(3, net, snapshots))
    assert history.stop_reason == "diverged" and history.epoch == [0, 1, 2, 3]
    errors = history.history["val_error"]
    assert history.best_epoch == int(np.argmin(errors)) and history.stopped_epoch is None
    for restored, expected in zip(net._parameters, snapshots[history.best_epoch]):
        assert np.array_equal(restored, expected)
