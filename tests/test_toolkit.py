"""The chapter's toolkit: validation, early stopping, shuffling, losses, history, save/load, plots."""
import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import grokreg
from grokreg import EarlyStopping, Network


@pytest.fixture(scope="module")
def data(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    return x_train[:300], y_train[:300], x_train[1000:1300], y_train[1000:1300], x_test[:500], y_test[:500]


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

def test_validation_metrics_are_recorded_at_evaluated_epochs(data):
    x, y, xv, yv, xt, yt = data
    history = Network(16, seed=0).fit(x, y, epochs=5, validation_data=(xv, yv), eval_every=2)
    assert history.evaluated("val_accuracy")[0] == [0, 2, 4]
    assert history.params["n_validation"] == 300


def test_validation_split_takes_the_end_before_shuffling(data):
    x, y, *_ = data
    a = Network(16, seed=0)
    split = a.fit(x, y, epochs=3, validation_split=0.25, shuffle=True)
    b = Network(16, seed=0)
    explicit = b.fit(x[:225], y[:225], epochs=3, validation_data=(x[225:], y[225:]), shuffle=True)
    assert np.array_equal(a.weights_0_1, b.weights_0_1)
    assert split.history == explicit.history and split.params["n_train"] == 225


def test_early_stopping_restores_the_best_epoch(data):
    x, y, xv, yv, xt, yt = data
    net = Network(16, seed=0)
    history = net.fit(x, y, epochs=200, alpha=0.02, validation_data=(xv, yv),
                      early_stopping=EarlyStopping("val_error", patience=3))
    assert history.stop_reason == "early_stopping" and history.stopped_epoch == history.epoch[-1]
    assert history.stopped_epoch - history.best_epoch == 3
    assert history.stop_message.startswith("val_error did not improve")
    replay = Network(16, seed=0)
    replay.fit(x, y, epochs=history.best_epoch + 1, alpha=0.02)
    assert np.array_equal(net.weights_0_1, replay.weights_0_1)


def test_test_data_never_influences_training_or_stopping(data):
    x, y, xv, yv, xt, yt = data
    results = []
    for test in ((xt, yt), (xt[::-1], (yt + 3) % 10)):
        net = Network(16, seed=0, dropout=0.2)
        history = net.fit(x, y, epochs=60, alpha=0.02, validation_data=(xv, yv), test_data=test,
                          early_stopping=EarlyStopping("val_accuracy", patience=4), shuffle=True)
        results.append((net.weights_1_2.copy(), history.best_epoch, history.stopped_epoch))
    assert np.array_equal(results[0][0], results[1][0]) and results[0][1:] == results[1][1:]


def test_fit_refuses_inconsistent_validation(data):
    x, y, xv, yv, *_ = data
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


def test_shuffling_is_seeded(data):
    x, y, *_ = data
    runs = [Network(16, seed=4) for _ in range(3)]
    for net, shuffle in zip(runs, (True, True, False)):
        net.fit(x, y, epochs=2, shuffle=shuffle)
    assert np.array_equal(runs[0].weights_0_1, runs[1].weights_0_1)
    assert not np.array_equal(runs[0].weights_0_1, runs[2].weights_0_1)


# -- losses and biases --------------------------------------------------------------------------

@pytest.mark.parametrize("loss, bias", [("softmax_cross_entropy", True),
                                        ("softmax_cross_entropy", False), ("mse", True)])
def test_other_losses_and_biases_learn(data, loss, bias):
    x, y, _, _, xt, yt = data
    net = Network(32, seed=0, loss=loss, bias=bias)
    history = net.fit(x, y, epochs=8, alpha=0.01)
    assert history.history["error"][-1] < history.history["error"][0]
    assert net.score(xt, yt) > 0.6  # 8 epochs on 300 images; chance is 0.1
    assert bool(np.any(net.bias_1)) == bias and bool(np.any(net.bias_2)) == bias
    if loss == "softmax_cross_entropy":
        error = net.evaluate(xt, yt)[0]
        logits = net.decision_function(xt)
        shifted = logits - logits.max(axis=1, keepdims=True)
        expected = np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(yt)), yt])
        assert error == pytest.approx(expected, rel=1e-10)


def test_book_mode_refuses_other_losses_and_biases():
    with pytest.raises(ValueError, match="loss='mse' and no biases"):
        Network(book=True, loss="softmax_cross_entropy")
    with pytest.raises(ValueError, match="loss='mse' and no biases"):
        Network(book=True, bias=True)
    with pytest.raises(ValueError, match="loss"):
        Network(loss="hinge")


# -- history ----------------------------------------------------------------------------------

def test_history_exports(data, tmp_path):
    x, y, xv, yv, xt, yt = data
    history = Network(8, seed=0).fit(x, y, epochs=3, validation_data=(xv, yv),
                                     test_data=(xt, yt), eval_every=2)
    text = history.to_csv()
    lines = text.splitlines()
    assert lines[0] == ("epoch,error,accuracy,alpha,val_error,val_accuracy,test_error,"
                        "test_accuracy")
    assert len(lines) == 4 and lines[2].endswith(",,,,") and float(lines[1].split(",")[-1]) > 0
    history.to_csv(tmp_path / "h.csv")
    assert (tmp_path / "h.csv").read_text() == text
    loaded = json.loads(history.to_json())
    assert loaded["history"]["test_accuracy"][1] is None
    assert loaded["history"]["accuracy"] == history.history["accuracy"]
    assert loaded["stop_reason"] == "completed" and loaded["params"]["eval_every"] == 2
    book = history.book_lines().splitlines()
    assert len(book) == 2 and book[0].startswith("I:0 Train-Err:") and "Val-Acc:" in book[0]


# -- save and load ----------------------------------------------------------------------------

@pytest.mark.parametrize("options", [dict(), dict(book=True, dropout=0.5),
                                     dict(dtype="float32", loss="softmax_cross_entropy", bias=True,
                                          dropout=0.3)])
def test_save_load_round_trip_is_exact(data, tmp_path, options):
    x, y, _, _, xt, yt = data
    net = Network(12, seed=2, **options)
    net.fit(x, y, epochs=2)
    path = net.save(tmp_path / "net.npz")
    loaded = Network.load(path)
    assert repr(loaded) == repr(net)
    for name in ("weights_0_1", "bias_1", "weights_1_2", "bias_2"):
        assert getattr(loaded, name).dtype == getattr(net, name).dtype
        assert np.array_equal(getattr(loaded, name), getattr(net, name))
    assert np.array_equal(loaded.decision_function(xt), net.decision_function(xt))
    # the random stream is saved too: both go on training identically
    net.fit(x, y, epochs=1)
    loaded.fit(x, y, epochs=1)
    assert np.array_equal(loaded.weights_0_1, net.weights_0_1)
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]  # no temporary left behind


def write_npz(path, **members):
    with open(path, "wb") as f:
        np.savez(f, **members)
    return path


@pytest.fixture
def saved(tmp_path):
    """A saved network's members, to tamper with."""
    path = Network(6, seed=0, n_inputs=10, n_outputs=3).save(tmp_path / "good.npz")
    with np.load(path) as archive:
        return {key: archive[key] for key in archive.files}


@pytest.mark.parametrize("tamper, message", [
    (lambda m: m.update(weights_0_1=np.zeros((10, 7))), "shape"),
    (lambda m: m.update(weights_0_1=m["weights_0_1"].astype(np.float32)), "dtype"),
    (lambda m: m.update(bias_2=np.full(3, np.nan)), "NaN"),
    (lambda m: m.pop("bias_1"), "missing"),
    (lambda m: m.update(extra=np.zeros(2)), "unexpected"),
    (lambda m: m.update(format_version=np.array(3)), "format version 3; this grokreg reads versions 1, 2"),
    (lambda m: m.update(format=np.array("something else")), "not a grokreg network"),
    (lambda m: m.update(config=np.array("{not json")), "damaged"),
    (lambda m: m.update(config=np.array(json.dumps({"hidden": 6}))), "config"),
    (lambda m: m.update(config=np.array(str(m["config"]).replace('"hidden": 6', '"hidden": -6'))),
     "hidden"),
    (lambda m: m.update(rng_state=np.array('{"bit_generator": "Evil"}')), "random stream"),
    (lambda m: m.update(weights_1_2=np.array([{"a": 1}], dtype=object)), "objects"),
])
def test_load_refuses_tampered_files(saved, tmp_path, tamper, message):
    tamper(saved)
    path = write_npz(tmp_path / "bad.npz", **saved)
    with pytest.raises(ValueError, match=message):
        Network.load(path)


def test_load_refuses_truncated_and_foreign_files(tmp_path):
    path = Network(6, seed=0).save(tmp_path / "net.npz")
    with open(path, "rb") as f:
        content = f.read()
    for size in (10, len(content) // 2, len(content) - 30):
        (tmp_path / "cut.npz").write_bytes(content[:size])
        with pytest.raises(ValueError):
            Network.load(tmp_path / "cut.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a grokreg network"):
        Network.load(tmp_path / "text.npz")
    with pytest.raises(FileNotFoundError):
        Network.load(tmp_path / "missing.npz")


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_load_bounds_memory_of_a_lying_member(saved, tmp_path):
    """A member whose data is far larger than its network is refused before it is read."""
    saved["bias_2"] = np.zeros(3)
    path = write_npz(tmp_path / "big.npz", **saved)
    with zipfile.ZipFile(path, "a") as archive:  # a second, huge bias_2.npy entry shadows it
        archive.writestr("bias_2.npy", b"\x93NUMPY" + b"\x00" * 50_000_000)
    with pytest.raises(ValueError):
        Network.load(path)


def huge_claims(saved, tmp_path):
    """Small files that claim networks of 10**9 hidden units: in the config alone, and in the
    config and a member's header (the data too short for it)."""
    config = json.loads(str(saved["config"]))
    lying_config = dict(saved, config=np.array(json.dumps(dict(config, hidden=10**9))))
    first = write_npz(tmp_path / "config.npz", **lying_config)
    second = write_npz(tmp_path / "header.npz", **lying_config)
    header = np.lib.format.header_data_from_array_1_0(saved["weights_0_1"])
    header["shape"] = (10, 10**9)
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, header)
    with zipfile.ZipFile(second, "a") as archive:
        archive.writestr("weights_0_1.npy", stream.getvalue() + saved["weights_0_1"].tobytes())
    return first, second


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_load_refuses_a_huge_claim_before_allocating(saved, tmp_path):
    """Under a 1 GiB address-space limit, a 1 KB file claiming 10**9 hidden units (80 GB of
    weights) is refused with a ValueError, not a MemoryError or a crash."""
    pytest.importorskip("resource")
    paths = huge_claims(saved, tmp_path)
    assert all(os.path.getsize(p) < 10_000 for p in paths)
    code = ("import resource, sys\n"
            "import grokreg\n"
            "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
            "for path in sys.argv[1:]:\n"
            "    try:\n"
            "        grokreg.Network.load(path)\n"
            "    except ValueError as exc:\n"
            "        print(exc)\n")
    result = subprocess.run([sys.executable, "-P", "-c", code, *map(str, paths)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("config describes a network of more than 268435456 parameters "
                             "(10-1000000000-3)")
    assert lines[1] == lines[0].replace("config.npz", "header.npz")


def test_load_refuses_a_config_its_members_contradict(saved, tmp_path):
    config = json.loads(str(saved["config"]))
    path = write_npz(tmp_path / "bad.npz", **dict(
        saved, config=np.array(json.dumps(dict(config, hidden=7)))))
    with pytest.raises(ValueError, match=r"member 'weights_0_1' has shape \(10, 6\), but the "
                                         r"config describes \(10, 7\)"):
        Network.load(path)


def test_save_is_atomic(data, tmp_path, monkeypatch):
    net = Network(6, seed=0)
    path = net.save(tmp_path / "net.npz")
    before = open(path, "rb").read()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        Network(6, seed=1).save(path)
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["net.npz"]


# -- the experiments ----------------------------------------------------------------------------

def test_early_stopping_experiment_in_book_mode():
    out = io.StringIO()
    net, history = grokreg.reproduce("early-stopping", book=True, out=out)
    lines = out.getvalue().splitlines()
    assert lines[-1] == ("Early stopping: stopped after epoch 23, best epoch 13 (val_error); "
                         "restored weights Test-Err:0.416 Test-Acc:0.8121")
    assert lines[1].startswith("I:10 Train-Err:0.312 Train-Acc:0.901 Test-Err:0.420 "
                               "Test-Acc:0.8114 Val-Err:")
    assert history.best_epoch == 13 and net.evaluate(*grokreg.load_mnist()[1])[1] >= 0.80


def test_reproduce_all_prints_the_table_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    result = subprocess.run(
        [sys.executable, "-P", "-m", "grokreg", "reproduce", "all", "--n-train", "100",
         "--n-test", "300", "--plot", str(tmp_path)], capture_output=True, text=True, check=True)
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 11 + 9  # header and 5 experiments x 2 modes; header and 8 regularizers
    assert [row.split(" | ")[1] for row in rows[1:3]] == ["book", "correct"]
    assert rows[11].startswith("| regularizer | strength |")
    assert [row.split(" | ")[0] for row in rows[12:]] == [
        f"| {name}" for name in [*grokreg.recipes.REGULARIZERS, "ensemble of 5"]]
    figures = [*grokreg.EXPERIMENTS, "ensemble", "regularizers"]
    assert sorted(os.listdir(tmp_path)) == sorted(f"{n}.png" for n in figures)
    for name in figures:
        figure = tmp_path / f"{name}.png"
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 20_000


def test_plotting_without_matplotlib_says_so(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from grokreg.cli import main\n"
            f"sys.exit(main(['reproduce', 'all', '--plot', {str(tmp_path)!r}]))")
    result = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "pip install 'grokreg[plot]'" in result.stderr
    assert os.listdir(tmp_path) == []


def test_comparison_table_layout():
    runs = [dict(experiment="overfit", mode="book", best_test_accuracy=0.8114, best_epoch=10,
                 final_test_accuracy=0.7073, final_train_accuracy=1.0, epochs=350, seconds=3.2)]
    table = grokreg.recipes.comparison_table(runs).splitlines()
    assert table[2] == "| overfit | book | 0.8114 (10) | 0.7073 | 1.000 | 350 | 3.2 |"


def test_the_early_stopping_experiment_that_never_stops():
    """Too few epochs to run out of patience: all are trained, the best is restored."""
    out = io.StringIO()
    net, history = grokreg.reproduce("early-stopping", epochs=6, n_test=1000, out=out)
    assert history.stop_reason == "completed" and len(history) == 6
    errors = history.history["val_error"]
    assert history.best_epoch == int(np.argmin(errors))
    (x_train, y_train), (x_test, y_test) = grokreg.load_mnist(n_test=1000)
    replay = Network(40, seed=1)
    replay.fit(x_train[:1000], y_train[:1000], epochs=history.best_epoch + 1, alpha=0.005)
    assert np.array_equal(net.weights_0_1, replay.weights_0_1)
    test_error, test_accuracy = replay.evaluate(x_test, y_test)
    assert out.getvalue().splitlines()[-1] == (
        f"Early stopping: trained all 6 epochs, best epoch {history.best_epoch} (val_error); "
        f"restored weights Test-Err:{str(test_error)[0:5]} Test-Acc:{test_accuracy}")


def test_compare_reports_what_each_run_measured():
    runs = grokreg.recipes.compare(n_train=150, n_test=300, networks=2)
    assert [(r["experiment"], r["mode"]) for r in runs] == [
        (name, mode) for name in [*grokreg.EXPERIMENTS, "ensemble"] for mode in ("book", "correct")]
    for run in runs:
        history = run["history"]
        if run["experiment"] == "ensemble":
            result = grokreg.recipes.reproduce_ensemble(networks=2, book=run["mode"] == "book",
                                                        n_train=150, n_test=300, out=io.StringIO())
            assert run["final_test_accuracy"] == result["ensemble"].score(*result["test"])
            assert run["best_test_accuracy"] is None
            continue
        _, again = grokreg.reproduce(run["experiment"], book=run["mode"] == "book",
                                     n_train=150, n_test=300, out=io.StringIO())
        assert again.history == history.history  # the same run, and these are its numbers:
        epochs, accuracies = again.evaluated("test_accuracy")
        assert run["best_test_accuracy"] == max(accuracies)
        assert run["best_epoch"] == epochs[accuracies.index(max(accuracies))]
        restored = again.best_epoch if again.best_epoch is not None else again.epoch[-1]
        assert run["final_test_accuracy"] == again.history["test_accuracy"][
            again.epoch.index(restored)]
        assert run["final_train_accuracy"] == again.history["accuracy"][-1]
        assert run["epochs"] == len(again)
