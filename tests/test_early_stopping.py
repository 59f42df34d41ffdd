"""Early stopping and the validation set: the rules on synthetic histories, and in fit."""

import numpy as np
import pytest

from grokreg import EarlyStopping, Network


def run_rule(rule, values, start=0):
    """Feed a metric sequence to an EarlyStopping; returns the epoch at which it stops."""
    rule.reset()
    for epoch, value in enumerate(values, start):
        if rule.update(epoch, value):
            return epoch
    return None


# -- EarlyStopping rules on synthetic histories -----------------------------------------------

def test_stops_after_patience_evaluations_without_improvement():
    rule = EarlyStopping("val_accuracy", patience=2)
    assert run_rule(rule, [0.5, 0.6, 0.6, 0.59, 0.58]) == 3
    assert (rule.best_epoch, rule.best_value, rule.stopped_epoch) == (1, 0.6, 3)
    assert "did not improve on 0.6 (epoch 1) in 2 evaluations" in rule.reason


def test_patience_zero_stops_at_the_first_miss():
    assert run_rule(EarlyStopping("val_error", patience=0), [1.0, 0.9, 0.95]) == 2


def test_min_delta_and_mode():
    rule = EarlyStopping("val_error", patience=1, min_delta=0.01)
    assert rule.mode == "min"
    assert run_rule(rule, [1.0, 0.95, 0.949, 0.9]) == 2  # 0.949 is not 0.01 better than 0.95
    rule = EarlyStopping("val_error", patience=1, mode="max")  # odd, but what was asked
    assert run_rule(rule, [1.0, 0.9]) == 1


def test_baseline_must_be_beaten():
    rule = EarlyStopping("val_accuracy", patience=2, baseline=0.9)
    assert run_rule(rule, [0.5, 0.6, 0.7]) == 1
    assert rule.best_epoch is None and "baseline 0.9" in rule.reason
    assert run_rule(rule, [0.5, 0.95, 0.94, 0.93]) == 3 and rule.best_epoch == 1


def test_start_from_epoch_ignores_early_epochs():
    rule = EarlyStopping("val_accuracy", patience=1, start_from_epoch=3)
    assert run_rule(rule, [0.9, 0.8, 0.7, 0.6, 0.65, 0.64]) == 5
    assert rule.best_epoch == 4


def test_never_stops_while_improving():
    rule = EarlyStopping("val_error", patience=0)
    assert run_rule(rule, [1.0, 0.9, 0.8, 0.7]) is None and rule.best_epoch == 3


@pytest.mark.parametrize("options, error, message", [
    (dict(monitor="test_accuracy"), ValueError, "never look at the test data"),
    (dict(monitor="test_error"), ValueError, "never look at the test data"),
    (dict(monitor="loss"), ValueError, "monitor must be one of"),
    (dict(monitor=3), TypeError, "monitor"),
    (dict(patience=-1), ValueError, "patience"),
    (dict(mode="up"), ValueError, "mode"),
    (dict(min_delta=float("nan")), ValueError, "min_delta"),
    (dict(restore_best_weights=1), TypeError, "restore_best_weights"),
])
def test_early_stopping_refuses(options, error, message):
    with pytest.raises(error, match=message):
        EarlyStopping(**options)


def test_a_non_finite_metric_is_an_error():
    with pytest.raises(ValueError, match="nan"):
        EarlyStopping().update(0, float("nan"))


# -- fitting with validation and early stopping -----------------------------------------------

def test_validation_metrics_are_recorded_at_evaluated_epochs(splits):
    x, y, xv, yv, xt, yt = splits
    history = Network(16, seed=0).fit(x, y, epochs=5, validation_data=(xv, yv), eval_every=2)
    assert history.evaluated("val_accuracy")[0] == [0, 2, 4]
    assert history.params["n_validation"] == 300


def test_validation_split_takes_the_end_before_shuffling(splits):
    x, y, *_ = splits
    a = Network(16, seed=0)
    split = a.fit(x, y, epochs=3, validation_split=0.25, shuffle=True)
    b = Network(16, seed=0)
    explicit = b.fit(x[:225], y[:225], epochs=3, validation_data=(x[225:], y[225:]), shuffle=True)
    assert np.array_equal(a.weights_0_1, b.weights_0_1)
    assert split.history == explicit.history and split.params["n_train"] == 225


def test_early_stopping_restores_the_best_epoch(splits):
    x, y, xv, yv, xt, yt = splits
    net = Network(16, seed=0)
    history = net.fit(x, y, epochs=200, alpha=0.02, validation_data=(xv, yv),
                      early_stopping=EarlyStopping("val_error", patience=3))
    assert history.stop_reason == "early_stopping" and history.stopped_epoch == history.epoch[-1]
    assert history.stopped_epoch - history.best_epoch == 3
    assert history.stop_message.startswith("val_error did not improve")
    replay = Network(16, seed=0)
    replay.fit(x, y, epochs=history.best_epoch + 1, alpha=0.02)
    assert np.array_equal(net.weights_0_1, replay.weights_0_1)


def test_test_data_never_influences_training_or_stopping(splits):
    x, y, xv, yv, xt, yt = splits
    results = []
    for test in ((xt, yt), (xt[::-1], (yt + 3) % 10)):
        net = Network(16, seed=0, dropout=0.2)
        history = net.fit(x, y, epochs=60, alpha=0.02, validation_data=(xv, yv), test_data=test,
                          early_stopping=EarlyStopping("val_accuracy", patience=4), shuffle=True)
        results.append((net.weights_1_2.copy(), history.best_epoch, history.stopped_epoch))
    assert np.array_equal(results[0][0], results[1][0]) and results[0][1:] == results[1][1:]


def test_fit_refuses_inconsistent_validation(splits):
    x, y, xv, yv, *_ = splits
    net = Network(8, seed=0)
    with pytest.raises(ValueError, match="never watches the test data"):
        net.fit(x, y, early_stopping=EarlyStopping(), test_data=(xv, yv))
    with pytest.raises(ValueError, match="not both"):
        net.fit(x, y, validation_data=(xv, yv), validation_split=0.1)
    with pytest.raises(ValueError, match="validation_split"):
        net.fit(x, y, validation_split=1.0)
    with pytest.raises(ValueError, match="leaves no examples"):
        net.fit(x[:3], y[:3], validation_split=0.2)
    with pytest.raises(TypeError, match="EarlyStopping"):
        net.fit(x, y, validation_split=0.1, early_stopping="yes")
    with pytest.raises(ValueError, match=r"validation_data\[1\]"):
        net.fit(x, y, validation_data=(xv, yv[:5]))
    with pytest.raises(ValueError, match="does not shuffle"):
        Network(8, seed=0, book=True).fit(x, y, shuffle=True)


def test_shuffling_is_seeded(splits):
    x, y, *_ = splits
    runs = [Network(16, seed=4) for _ in range(3)]
    for net, shuffle in zip(runs, (True, True, False)):
        net.fit(x, y, epochs=2, shuffle=shuffle)
    assert np.array_equal(runs[0].weights_0_1, runs[1].weights_0_1)
    assert not np.array_equal(runs[0].weights_0_1, runs[2].weights_0_1)
