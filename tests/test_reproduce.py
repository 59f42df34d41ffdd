"""The book's tables, exactly: grokreg's book mode against chapter8_numpy.py and the printed tables."""
import importlib.metadata
import io
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import grokreg

# -P: never import the source tree from the working directory, only the installed package
CLI = [sys.executable, "-P", "-m", "grokreg", "reproduce"]


@pytest.mark.parametrize("arguments", [
    ["overfit", "--seed", "2", "--hidden", "16", "--epochs", "12", "--n-train", "150",
     "--n-test", "400", "--eval-every", "3"],
    ["overfit", "--seed", "0", "--alpha", "0.02", "--epochs", "5", "--n-train", "80",
     "--n-test", "100", "--eval-every", "1"],
    ["dropout", "--seed", "7", "--hidden", "30", "--alpha", "0.01", "--epochs", "11",
     "--n-train", "120", "--n-test", "300", "--eval-every", "5"],
    ["batch", "--seed", "3", "--hidden", "20", "--epochs", "21", "--n-train", "250",
     "--n-test", "300", "--eval-every", "4"],
    ["batch", "--seed", "12", "--alpha", "0.002", "--epochs", "6", "--n-train", "300",
     "--n-test", "200", "--eval-every", "2"],
])
def test_book_mode_prints_what_the_books_program_prints(run_reference, arguments):
    expected = run_reference(*arguments)
    result = subprocess.run(CLI + arguments + ["--book"], capture_output=True, text=True, check=True)
    assert result.stdout == expected and expected


def test_progress_goes_to_stderr_only():
    arguments = ["overfit", "--book", "--epochs", "3", "--n-train", "50", "--n-test", "50",
                 "--eval-every", "1"]
    result = subprocess.run(CLI + arguments + ["--progress"], capture_output=True, text=True,
                            check=True)
    quiet = subprocess.run(CLI + arguments, capture_output=True, text=True, check=True)
    assert result.stdout == quiet.stdout and len(quiet.stdout.splitlines()) == 3
    assert quiet.stderr == ""
    assert "overfit, book mode: " in result.stderr and "Test-Acc" not in result.stderr


@pytest.mark.parametrize("arguments, error", [
    (["overfit", "--n-train", "5000"], "argument --n-train: must be at most 2000, got 5000: that "
     "is what the MNIST subset embedded in grokreg holds; for more, use the full MNIST files: "
     "give their directory with --data-dir DIR or $GROKREG_DATA (`grokreg data download` "
     "fetches them)"),
    (["overfit", "--hidden", "0"], "argument --hidden: must be >= 1, got 0"),
    # how argparse lists the choices after this differs between Python versions
    (["nonsense"], "argument EXPERIMENT: invalid choice: 'nonsense' (choose from "),
])
def test_cli_reports_bad_arguments(arguments, error):
    """More refusals, each in full, in tests/test_messages.py."""
    result = subprocess.run(CLI + arguments, capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    usage, message = result.stderr.splitlines()
    assert usage == "usage: grokreg reproduce EXPERIMENT [options]"
    assert message == f"grokreg reproduce: error: {error}" or (
        error.endswith("(choose from ") and message.startswith(f"grokreg reproduce: error: {error}"))


def test_cli_help_and_version():
    commands = [[sys.executable, "-P", "-m", "grokreg"]]
    try:
        importlib.metadata.distribution("grokreg")
    except importlib.metadata.PackageNotFoundError:
        pass  # grokreg found on PYTHONPATH only (mutation runs): no console script to check
    else:
        script = shutil.which("grokreg", path=str(Path(sys.executable).parent))
        assert script, "the grokreg console script is not installed beside this Python"
        commands.append([script])
    for command in commands:
        run = lambda *arguments: subprocess.run(command + list(arguments), capture_output=True,
                                                text=True, check=True).stdout
        assert run("--version") == f"grokreg {grokreg.__version__}\n"
        assert run("--help").startswith("usage: grokreg [-h] [--version] COMMAND ...\n")
        assert run("reproduce", "--help").startswith(
            "usage: grokreg reproduce EXPERIMENT [options]\n\nRun one of the book's experiments")


# GROKREG_BOOK_EXAMPLES=300 draws 300 configurations (the README's count), 25 by default
@settings(max_examples=int(os.environ.get("GROKREG_BOOK_EXAMPLES", 25)), deadline=None)
@given(experiment=st.sampled_from(["overfit", "dropout", "batch"]), seed=st.integers(0, 2**32 - 1),
       hidden=st.integers(1, 32),
       alpha=st.sampled_from([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.2]),  # the last diverge
       epochs=st.integers(1, 4), n_train=st.integers(1, 250), n_test=st.integers(1, 300),
       eval_every=st.integers(1, 3))
def test_book_mode_matches_the_books_program_on_random_configurations(
        reference, mnist, experiment, seed, hidden, alpha, epochs, n_train, n_test, eval_every):
    if experiment == "batch":
        n_train = max(n_train, 100)  # the book's loop needs one full batch
    (x_train, y_train), (x_test, y_test) = mnist
    expected = io.StringIO()
    with np.errstate(all="ignore"):
        reference.run(experiment, seed, hidden, alpha, epochs,
                      x_train[:n_train].reshape(n_train, 784) / 255,
                      np.eye(10)[y_train[:n_train]], x_test[:n_test].reshape(n_test, 784) / 255,
                      np.eye(10)[y_test[:n_test]], eval_every, expected)
    found = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # large alphas diverge, as in the book
        grokreg.reproduce(experiment, book=True, seed=seed, hidden=hidden, alpha=alpha,
                          epochs=epochs, n_train=n_train, n_test=n_test, eval_every=eval_every,
                          out=found)
    assert found.getvalue() == expected.getvalue()


@pytest.mark.parametrize("experiment, seed, hidden, alpha, epochs, n_train, n_test, every", [
    ("batch", 3097567255, 9, 0.03, 5, 129, 597, 1),  # overflows to inf, then NaN
    ("batch", 1024480826, 15, 0.01, 6, 293, 150, 2),
    ("overfit", 7, 20, 0.5, 4, 120, 200, 1),
    ("dropout", 3, 30, 0.3, 4, 90, 150, 1),
])
def test_book_mode_follows_the_book_through_divergence(reference, mnist, experiment, seed, hidden,
                                                      alpha, epochs, n_train, n_test, every):
    """Where training blows up, the book's program prints inf and nan: so does book mode."""
    (x_train, y_train), (x_test, y_test) = mnist
    expected = io.StringIO()
    with np.errstate(all="ignore"):
        reference.run(experiment, seed, hidden, alpha, epochs,
                      x_train[:n_train].reshape(n_train, 784) / 255, np.eye(10)[y_train[:n_train]],
                      x_test[:n_test].reshape(n_test, 784) / 255, np.eye(10)[y_test[:n_test]],
                      every, expected)
    assert "nan" in expected.getvalue() or "inf" in expected.getvalue()
    found = io.StringIO()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        grokreg.reproduce(experiment, book=True, seed=seed, hidden=hidden, alpha=alpha,
                          epochs=epochs, n_train=n_train, n_test=n_test, eval_every=every,
                          out=found)
    # the error may blow up (CollapseWarning) before a weight overflows
    assert {w.category for w in record} <= {RuntimeWarning, grokreg.CollapseWarning}
    assert any(str(w.message).startswith("training diverged at epoch") for w in record)
    assert found.getvalue() == expected.getvalue()


def test_reproduce_regularizers_chooses_on_validation_images_and_reports_plain_networks():
    """Each row is the network Network.fit trains with that regularizer and strength, chosen
    as the best on the validation images (the n_train images after the training ones, never
    the test images); the ensemble is Ensemble's."""
    from grokreg.recipes import REGULARIZERS, reproduce_regularizers

    out = io.StringIO()
    result = reproduce_regularizers(epochs=12, n_train=300, n_test=400, eval_every=4,
                                    networks=2, out=out)
    (x, y), (x_test, y_test) = grokreg.load_mnist()
    train, validation, test = ((x[:300], y[:300]), (x[300:1300], y[300:1300]),
                               (x_test[:400], y_test[:400]))
    rows = {row["regularizer"]: row for row in result["rows"]}
    assert list(rows) == [*REGULARIZERS, "ensemble of 2"]
    for name, tried in result["tried"].items():
        accuracies = [accuracy for _, accuracy in tried]
        assert rows[name]["strength"] == tried[accuracies.index(max(accuracies))][0]
        network_options, fit_options = REGULARIZERS[name][rows[name]["strength"]]
        fit_options = dict(fit_options)
        if "patience" in fit_options:
            fit_options["early_stopping"] = grokreg.EarlyStopping(
                "val_error", patience=fit_options.pop("patience"))
        net = grokreg.Network(40, seed=1, **network_options)
        net.fit(*train, epochs=12, alpha=0.005, validation_data=validation, **fit_options)
        for chosen, expected in zip(rows[name]["model"]._parameters, net._parameters):
            assert np.array_equal(chosen, expected), name
        assert rows[name]["validation_accuracy"] == net.score(*validation)
        assert rows[name]["test_accuracy"] == net.score(*test)
        assert rows[name]["train_accuracy"] == net.score(*train)
    ensemble = grokreg.Ensemble(2, 40, seed=1)
    ensemble.fit(*train, epochs=12, alpha=0.005)
    assert rows["ensemble of 2"]["test_accuracy"] == ensemble.score(*test)
    lines = out.getvalue().splitlines()
    assert lines[3] == "| regularizer | strength | val acc | test acc | best test (epoch) | train | s |"
    assert lines[5].startswith("| none |  | {:.4f} | {:.4f} | ".format(
        rows["none"]["validation_accuracy"], rows["none"]["test_accuracy"]))
    assert all(len(line) <= 80 for line in lines)
