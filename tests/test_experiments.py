"""The chapter's experiments through grokreg.recipes: early stopping, the comparison table, plots."""
import io
import os
import subprocess
import sys

import numpy as np
import pytest

import grokreg
from grokreg import Network


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
