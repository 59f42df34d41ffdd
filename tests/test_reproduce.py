"""The book's tables, exactly: grokreg's book mode against chapter8_numpy.py and the printed tables."""
import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import grokreg

# -P: never import the source tree from the working directory, only the installed package
CLI = [sys.executable, "-P", "-m", "grokreg", "reproduce"]


@pytest.mark.parametrize("experiment", ["overfit", "dropout", "batch"])
def test_full_book_table(shared_dir, experiment):
    out = io.StringIO()
    grokreg.reproduce(experiment, book=True, out=out)
    expected = (shared_dir / "reference" / f"{experiment}.txt").read_text()
    assert out.getvalue() == expected


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


def test_default_mode_is_the_correct_model_and_generalises_better():
    """The correct model beats the book's final 0.7073 (overfit) and 0.8181 (dropout)."""
    for experiment, target in (("overfit", 0.80), ("dropout", 0.85)):
        net, history = grokreg.reproduce(experiment, out=io.StringIO())
        assert not net.book
        assert history.history["test_accuracy"][-1] >= target


def test_progress_goes_to_stderr_only(run_reference):
    arguments = ["overfit", "--epochs", "3", "--n-train", "50", "--n-test", "50", "--eval-every", "1"]
    result = subprocess.run(CLI + arguments + ["--book", "--progress"], capture_output=True,
                            text=True, check=True)
    assert result.stdout == run_reference(*arguments)
    assert "I:2" in result.stderr or "epoch" in result.stderr


@pytest.mark.parametrize("arguments, message", [
    (["overfit", "--n-train", "5000"], "GROKREG_DATA"),
    (["overfit", "--book", "--dtype", "float32"], "float64"),
    (["overfit", "--hidden", "0"], "must be >= 1"),
    (["nonsense"], "invalid choice"),
    (["overfit", "--data-dir", "/nonexistent"], "not a directory"),
])
def test_cli_reports_bad_arguments(arguments, message):
    result = subprocess.run(CLI + arguments, capture_output=True, text=True)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_cli_help_and_version():
    script = shutil.which("grokreg", path=str(Path(sys.executable).parent))
    assert script, "the grokreg console script is not installed beside this Python"
    for command in ([sys.executable, "-P", "-m", "grokreg"], [script]):
        for arguments in (["--help"], ["reproduce", "--help"], ["--version"]):
            result = subprocess.run(command + arguments, capture_output=True, text=True, check=True)
            assert "grokreg" in result.stdout
    assert grokreg.__version__ in result.stdout
