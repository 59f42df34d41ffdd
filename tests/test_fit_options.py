"""Network.fit's regularization toolkit as a user meets it: the options and their refusals,
the learning-rate schedules, the callback protocol, and the state (velocities, examples
seen, the rate) that lives on the network between fits, through saving and pickling."""
import math
import pickle

import numpy as np
import pytest

import grokreg
from grokreg import Callback, EarlyStopping, Network
from grokreg.schedules import Constant, InverseScaling, MultiStep, ReduceOnPlateau, StepDecay


@pytest.fixture(scope="module")
def data():
    (x, y), _ = grokreg.load_mnist(n_train=300)
    return x, y


def network(**options):
    return Network(20, seed=3, **options)


@pytest.mark.parametrize("options, error, message", [
    (dict(weight_decay=-0.1), ValueError, "weight_decay must be >= 0, got -0.1"),
    (dict(weight_decay=float("nan")), ValueError, "weight_decay must be finite, got nan"),
    (dict(momentum=1.0), ValueError, "momentum must be < 1, got 1"),
    (dict(momentum=-0.5), ValueError, "momentum must be >= 0, got -0.5"),
    (dict(nesterov=1), TypeError, "nesterov must be True or False, got int"),
    (dict(max_norm=0), ValueError, "max_norm must be > 0, got 0"),
    (dict(max_norm=-2.0), ValueError, "max_norm must be > 0, got -2"),
    (dict(alpha="fast"), TypeError, "alpha must be a number or a grokreg schedule"),
    (dict(alpha=Constant), TypeError, "alpha must be a number or a grokreg schedule"),
    (dict(sample_weight=np.ones(3)), ValueError, "sample_weight has 3 weights for 300 examples"),
    (dict(sample_weight=-np.ones(300)), ValueError, "sample_weight holds negative weights"),
    (dict(sample_weight=np.full(300, np.nan)), ValueError,
     "sample_weight holds NaN or infinite values"),
    (dict(sample_weight=np.zeros(300)), ValueError,
     "sample_weight is all zeros: no example would count"),
    (dict(sample_weight=np.ones((300, 1))), ValueError,
     r"sample_weight must have shape \(N,\), got \(300, 1\)"),
    (dict(callbacks=[print]), TypeError, r"callbacks\[0\] must be a grokreg.Callback"),
    (dict(alpha=ReduceOnPlateau(0.1)), ValueError,
     "ReduceOnPlateau watches val_error: give validation_data or validation_split"),
])
def test_fit_refuses_bad_options_naming_them(data, options, error, message):
    net = network()
    before = net.weights_0_1.copy()
    with pytest.raises(error, match=message):
        net.fit(*data, **options)
    assert np.array_equal(net.weights_0_1, before) and net.history_ is None


@pytest.mark.parametrize("make, error, message", [
    (lambda: MultiStep(0.1, 5), TypeError, "milestones must be a list of epochs, got int"),
    (lambda: MultiStep(0.1, [0]), ValueError, "milestones must be >= 1, got 0"),
    (lambda: MultiStep(0.1, [2], factor=2), ValueError, "factor must be <= 1, got 2"),
    (lambda: StepDecay(0.1, every=0), ValueError, "every must be >= 1, got 0"),
    (lambda: InverseScaling(0.1, power_t=-1), ValueError, "power_t must be >= 0, got -1"),
])
def test_schedules_refuse_bad_settings_naming_them(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize("option", [dict(weight_decay=0.1), dict(momentum=0.5),
                                    dict(nesterov=True), dict(max_norm=2.0),
                                    dict(sample_weight=np.ones(300)),
                                    dict(alpha=InverseScaling(0.005))])
def test_book_mode_refuses_each_option_naming_it(data, option):
    name = next(iter(option))
    with pytest.raises(ValueError, match=f"^{name} is not in book mode: the book's programs "
                                         f"have no"):
        Network(20, book=True, seed=1).fit(*data, **option)


def test_input_dropout_is_a_network_parameter_book_mode_refuses(data):
    assert network(input_dropout=0.2).input_dropout == 0.2
    with pytest.raises(ValueError, match=r"input_dropout must be < 1, got 1"):
        network(input_dropout=1.0)
    with pytest.raises(ValueError, match="input_dropout must be 0 in book mode"):
        Network(20, book=True, input_dropout=0.1)


def test_input_dropout_trains_but_never_touches_evaluation(data):
    x, y = data
    plain, thinned = network(), network(input_dropout=0.3)
    assert np.array_equal(plain.predict(x), thinned.predict(x))  # same start, no dropout
    thinned.fit(x, y, epochs=2, alpha=0.01)
    plain.fit(x, y, epochs=2, alpha=0.01)
    assert not np.array_equal(plain.weights_0_1, thinned.weights_0_1)
    again = pickle.loads(pickle.dumps(thinned))
    assert np.array_equal(again.decision_function(x), thinned.decision_function(x))


def test_weight_decay_shrinks_the_weights_and_means_the_same_at_any_batch_size(data):
    x, y = data
    norms = {}
    for decay in (0.0, 1.0):
        net = network()
        net.fit(x, y, epochs=3, alpha=0.01, weight_decay=decay)
        norms[decay] = np.linalg.norm(net.weights_0_1)
    assert norms[1.0] < 0.9 * norms[0.0]
    # with a zero gradient (zero inputs and outputs matching), a step is pure decay:
    # W * (1 - alpha * decay) per step, whatever the batch size
    zeros = np.zeros((12, 784), np.uint8)
    for batch_size, steps in ((1, 12), (4, 3), (12, 1)):
        net = Network(5, seed=1, loss="mse")
        net._weights_1_2[...] = 0
        w12 = net.weights_1_2.copy()
        before = net.weights_0_1.copy()
        with pytest.warns(grokreg.CollapseWarning, match="no hidden unit was active"):
            net.fit(zeros, np.zeros(12, int), epochs=1, alpha=0.1, batch_size=batch_size,
                    weight_decay=0.5)  # zero inputs: no unit is ever active
        np.testing.assert_allclose(net.weights_0_1, before * 0.95 ** steps, rtol=1e-12)
        assert np.array_equal(net.weights_1_2, w12)  # zero weights stay zero


def test_momentum_keeps_its_velocities_on_the_network(data, tmp_path):
    x, y = data
    one_fit, two_fits = network(), network()
    one_fit.fit(x, y, epochs=2, alpha=0.01, momentum=0.9, batch_size=10)
    two_fits.fit(x, y, epochs=1, alpha=0.01, momentum=0.9, batch_size=10)
    assert two_fits.velocities_ is not None and two_fits.velocities_[0].shape == (784, 20)
    for copy in (pickle.loads(pickle.dumps(two_fits)),
                 Network.load(two_fits.save(tmp_path / "net.npz"))):
        copy.fit(x, y, epochs=1, alpha=0.01, momentum=0.9, batch_size=10)
        for a, b in zip(copy._parameters + copy._velocities,
                        one_fit._parameters + one_fit._velocities):
            assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="read-only"):
        one_fit.velocities_[0][0, 0] = 1.0
    assert network().velocities_ is None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch_size, nesterov", [(1, False), (1, True), (4, False)])
def test_velocities_that_decay_below_the_smallest_normal_number_are_zero(dtype, batch_size,
                                                                        nesterov):
    """A velocity no gradient feeds decays geometrically; below the smallest normal number it
    is set to zero (subnormal arithmetic is tens of times slower), the weight unchanged."""
    tiny = np.finfo(dtype).tiny
    x = np.zeros((8, 3), dtype)
    x[:, 0] = 1.0  # input 0 only: rows 1 and 2 of weights_0_1 get no gradient
    y = np.arange(8) % 2
    net = Network(2, seed=0, n_inputs=3, n_outputs=2, dtype=dtype)
    net.fit(x, y, epochs=1, momentum=0.5, nesterov=nesterov, batch_size=batch_size)
    net._velocities[0][1, :2] = [1.5 * tiny, -1.9 * tiny]  # halved: below
    net._velocities[0][2, :2] = [3 * tiny, -3 * tiny]  # halved: 1.5 tiny; twice: below
    before = net.weights_0_1.copy()
    net.fit(x, y, epochs=1, momentum=0.5, nesterov=nesterov, batch_size=8)  # one step
    velocity = net.velocities_[0]
    assert list(velocity[1]) == [0, 0]
    assert list(velocity[2]) == [np.array(1.5, dtype) * tiny, -np.array(1.5, dtype) * tiny]
    assert np.array_equal(net.weights_0_1[1:], before[1:])  # a weight of ~0.1 moves by nothing
    net.fit(x, y, epochs=1, momentum=0.5, nesterov=nesterov, batch_size=8)
    assert list(net.velocities_[0][2]) == [0, 0]


def test_the_optimizer_state_survives_saving_and_pickling(data, tmp_path):
    x, y = data
    net = network()
    net.fit(x, y, epochs=2, alpha=InverseScaling(0.1, power_t=0.5), batch_size=30)
    assert net.samples_seen_ == 600 and net.rate_ == pytest.approx(0.1 / 301 ** 0.5)
    for copy in (pickle.loads(pickle.dumps(net)), Network.load(net.save(tmp_path / "n.npz"))):
        assert copy.samples_seen_ == 600 and copy.rate_ == net.rate_
        assert copy.velocities_ is None


def test_a_version_1_file_still_loads(tmp_path):
    """Files written before the format gained input dropout, velocities and state."""
    import json
    import zipfile

    net = network()
    path = net.save(tmp_path / "v2.npz")
    with np.load(path) as archive:
        members = {key: archive[key] for key in archive.files if key != "state"}
    config = json.loads(str(members["config"]))
    del config["input_dropout"]
    members.update(config=np.array(json.dumps(config)), format_version=np.array(1))
    old = tmp_path / "v1.npz"
    with zipfile.ZipFile(old, "w") as archive:
        for key, value in members.items():
            with archive.open(key + ".npy", "w") as f:
                np.lib.format.write_array(f, value)
    loaded = Network.load(old)
    assert np.array_equal(loaded.weights_0_1, net.weights_0_1)
    assert loaded.input_dropout == 0 and loaded.samples_seen_ == 0


def test_the_history_records_each_epochs_rate(data):
    x, y = data
    cases = {
        0.05: [0.05] * 5,
        StepDecay(0.1, every=2, factor=0.5): [0.1, 0.1, 0.05, 0.05, 0.025],
        MultiStep(0.1, [3, 1], factor=0.5): [0.1, 0.05, 0.05, 0.025, 0.025],
        InverseScaling(0.1, power_t=0.5): [0.1 / math.sqrt(300 * e + 1) for e in range(5)],
    }
    for alpha, rates in cases.items():
        history = network().fit(x, y, epochs=5, alpha=alpha, batch_size=20)
        np.testing.assert_allclose(history.history["alpha"], rates, rtol=1e-12)


def test_reduce_on_plateau_divides_the_rate_as_scikit_learns_adaptive_and_then_stops(data):
    x, y = data
    schedule = ReduceOnPlateau(0.05, monitor="error", factor=5, patience=1, min_delta=10.0,
                               min_rate=0.05 / 5 ** 2 * 1.01)
    history = network().fit(x, y, epochs=30, alpha=schedule, batch_size=50)
    # min_delta 10 is never met: after the first epoch, every second one is the one too many
    # without improvement (count > patience); the second reduction would reach min_rate
    assert history.history["alpha"] == pytest.approx([0.05, 0.05, 0.05, 0.01, 0.01])
    assert history.stop_reason == "learning_rate" and len(history) == 5
    assert history.stop_message.startswith("error did not improve by 10 for 2 epochs")


class Recorder(Callback):
    def __init__(self, stop_at=None):
        self.events, self.stop_at = [], stop_at

    def on_fit_begin(self, fit):
        self.events.append(("begin", fit.epochs, fit.rate))

    def on_epoch_end(self, record):
        self.events.append(("epoch", record["epoch"]))
        if record["epoch"] == self.stop_at:
            return "enough"

    def on_fit_end(self):
        self.events.append(("end",))


def test_callbacks_hear_the_fit_begin_each_epoch_end_and_the_fit_end_and_may_stop_it(data):
    x, y = data
    recorder = Recorder(stop_at=2)
    history = network().fit(x, y, epochs=6, alpha=0.02, callbacks=[recorder])
    assert recorder.events == [("begin", 6, 0.02), ("epoch", 0), ("epoch", 1), ("epoch", 2),
                               ("end",)]
    assert (history.stop_reason, history.stop_message, len(history)) == ("callback", "enough", 3)
    stopped = network().fit(x, y, epochs=6, on_epoch_end=lambda r: r["epoch"] == 1)
    assert (stopped.stop_reason, len(stopped)) == ("callback", 2)


def test_a_callback_is_told_of_the_end_of_an_interrupted_fit(data):
    x, y = data

    class Interrupt(Callback):
        def on_epoch_end(self, record):
            raise KeyboardInterrupt

    recorder = Recorder()
    with pytest.raises(KeyboardInterrupt):
        network().fit(x, y, epochs=3, callbacks=[recorder, Interrupt()])
    assert recorder.events[-1] == ("end",)


def test_early_stopping_on_the_training_loss(data):
    x, y = data
    stopping = EarlyStopping("error", patience=2, min_delta=100.0, restore_best_weights=False)
    history = network().fit(x, y, epochs=20, early_stopping=stopping)
    assert history.stop_reason == "early_stopping" and len(history) == 3


def test_sample_weights_weigh_the_recorded_metrics_and_evaluation(data):
    x, y = data
    net = network()
    weights = np.where(y == 1, 3.0, 1.0)
    plain, weighted = net.evaluate(x, y), net.evaluate(x, y, sample_weight=weights)
    losses = ((np.eye(10)[y] - net.decision_function(x)) ** 2).sum(axis=1)
    assert weighted[0] == pytest.approx(np.average(losses, weights=weights), rel=1e-12)
    assert plain[0] == pytest.approx(losses.mean(), rel=1e-12)
    assert net.score(x, y, sample_weight=weights) == pytest.approx(
        np.average(net.predict(x) == y, weights=weights))
    history = net.fit(x, y, epochs=1, sample_weight=weights, validation_data=(x, y, weights))
    assert history.params["sample_weight"] is True
