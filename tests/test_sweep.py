"""grokreg sweep: a grid of runs in threads or on Dask, streamed to a file, resumable."""
import csv
import importlib.util
import os
import signal
import subprocess
import sys
import threading

import pytest

from grokreg import sweep

GRID = {"hidden": [6, 12], "dropout": [0.0, 0.5], "epochs": [4]}
DATA = dict(n_train=200, n_validation=100, n_test=300)
RESULT_COLUMNS = ["val_error", "val_accuracy", "test_error", "test_accuracy"]


def numbers(rows):
    """What a run computes, whoever ran it: its key and results, not its time or place."""
    return [tuple(row[k] for k in sweep.KEY + RESULT_COLUMNS) for row in rows]


@pytest.fixture(scope="module")
def local():
    return sweep.run_sweep(GRID, seeds=2, threads=2, **DATA)


def test_a_local_sweep_trains_every_setting_and_seed(local):
    assert len(local) == 8
    assert [(r["hidden"], r["dropout"], r["seed"]) for r in local[:3]] == [
        (6, 0.0, 1), (6, 0.0, 2), (6, 0.5, 1)]
    one = sweep.run_one(dict(hidden=6, dropout=0.0, alpha=0.005, batch_size=1, epochs=4), 2,
                        dict(book=False, dtype="float64", data_dir=None, **DATA))
    assert numbers([one]) == numbers([local[1]])
    table = sweep.summary_table(local).splitlines()
    assert table[0] == ("| hidden | dropout | alpha | batch_size | epochs | seeds | val accuracy "
                        "| test accuracy | s / run |")
    mean = (local[0]["val_accuracy"] + local[1]["val_accuracy"]) / 2
    assert table[2].startswith(f"| 6 | 0 | 0.005 | 1 | 4 | 2 | {mean:.4f} ± ")


def test_each_row_is_a_network_trained_directly_on_disjoint_images(local):
    """The oracle is Network.fit on the images named by hand: the first n_train training
    images, the next n_validation for validation, the first n_test test images."""
    import numpy as np

    import grokreg

    (x, y), (x_test, y_test) = grokreg.load_mnist()
    train, validation, test = ((x[:200], y[:200]), (x[200:300], y[200:300]),
                               (x_test[:300], y_test[:300]))
    for row in local:
        net = grokreg.Network(row["hidden"], dropout=row["dropout"], seed=row["seed"])
        net.fit(*train, epochs=row["epochs"], alpha=row["alpha"], batch_size=row["batch_size"])
        assert (row["val_error"], row["val_accuracy"]) == net.evaluate(*validation)
        assert (row["test_error"], row["test_accuracy"]) == net.evaluate(*test)
    # the three sets the sweep reads are those slices: no image in two of them
    for read, expected in zip(sweep._data(None, 200, 100, 300), (train, validation, test)):
        assert np.array_equal(read[0], expected[0]) and np.array_equal(read[1], expected[1])


def test_a_dask_cluster_gives_the_same_numbers(local, dask_client):
    remote = sweep.run_sweep(GRID, seeds=2, client=dask_client, **DATA)
    assert numbers(remote) == numbers(local)
    assert all(row["where"].startswith("tcp://127.0.0.1") for row in remote)


@pytest.mark.dask
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="no SIGKILL on Windows")
def test_a_sweep_survives_a_killed_worker(local):
    distributed = pytest.importorskip("distributed")
    rows = []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster, \
            distributed.Client(cluster) as client:
        victims = client.run(os.getpid)
        killed = threading.Event()

        def on_result(row):
            rows.append(row)
            if not killed.is_set():  # kill the other worker while it is mid-run
                victim = next(pid for address, pid in victims.items() if address != row["where"])
                os.kill(victim, signal.SIGKILL)
                killed.set()

        grid = dict(GRID, epochs=[40])  # runs long enough to be caught mid-run
        result = sweep.run_sweep(grid, seeds=2, client=client, on_result=on_result, **DATA)
    assert killed.is_set() and len(result) == len(rows) == 8
    again = sweep.run_sweep(grid, seeds=2, threads=2, **DATA)
    assert numbers(result) == numbers(again)


def test_an_interrupted_sweep_keeps_what_finished_and_resumes(local, tmp_path):
    out = tmp_path / "sweep.csv"
    seen = []

    def interrupt_after_three(row):
        seen.append(row)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(GRID, seeds=2, threads=1, out=out, on_result=interrupt_after_three, **DATA)
    assert len(sweep.read_rows(out)) == 3
    with open(out, "a") as f:  # a row cut short as the process died
        f.write("12,0.5,0.005,1,4,2,False,floa")
    with pytest.raises(ValueError, match="exists: resume that sweep"):
        sweep.run_sweep(GRID, seeds=2, out=out, **DATA)
    new = []
    resumed = sweep.run_sweep(GRID, seeds=2, threads=2, out=out, resume=True,
                              on_result=new.append, **DATA)
    assert len(new) == 5 and numbers(resumed) == numbers(local)
    with open(out, newline="") as f:
        assert next(csv.reader(f)) == sweep.KEY + sweep.RESULTS
    # read back, the file holds every run once, the cut row dropped and run again
    assert sorted(numbers(sweep.read_rows(out))) == sorted(numbers(local))


def test_a_row_cut_within_its_last_column_is_not_read_back(tmp_path):
    """A process that dies while writing a row's last column ('where') leaves a line with
    every column present: only the missing newline tells that it is incomplete."""
    out = tmp_path / "sweep.csv"
    rows = sweep.run_sweep({"hidden": [4]}, seeds=2, out=out, **DATA)
    whole = out.read_text()
    last_line = whole.splitlines()[-1]
    out.write_text(whole + last_line[:-2])
    assert len(next(csv.reader([last_line[:-2]]))) == len(sweep.KEY + sweep.RESULTS)
    assert sorted(numbers(sweep.read_rows(out))) == sorted(numbers(rows))


def test_resuming_a_complete_sweep_keeps_every_row(tmp_path):
    out = tmp_path / "sweep.csv"
    rows = sweep.run_sweep({"hidden": [4]}, seeds=2, out=out, **DATA)
    again = sweep.run_sweep({"hidden": [4]}, seeds=2, out=out, resume=True, **DATA)
    assert numbers(again) == numbers(rows)
    assert sorted(numbers(sweep.read_rows(out))) == sorted(numbers(rows))


def test_book_mode_rows_read_back_as_written(tmp_path):
    out = tmp_path / "sweep.csv"
    rows = sweep.run_sweep({"hidden": [4]}, seeds=1, book=True, out=out, **DATA)
    read = sweep.read_rows(out)
    assert [row["book"] for row in read] == [True] and numbers(read) == numbers(rows)


def test_a_file_of_other_columns_is_refused(tmp_path):
    out = tmp_path / "other.csv"
    out.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError) as refused:
        sweep.read_rows(out)
    assert str(refused.value) == (f"out {out} is not a grokreg sweep file (its columns are "
                                  f"['a', 'b'])")
    assert refused.value.argument == "out"


def test_a_damaged_json_line_loses_only_itself(tmp_path):
    out = tmp_path / "sweep.jsonl"
    rows = sweep.run_sweep({"hidden": [4]}, seeds=2, out=out, **DATA)
    first, second = out.read_text().splitlines()
    out.write_text(f"{first}\n{{not json\n{second}\n")
    assert sorted(numbers(sweep.read_rows(out))) == sorted(numbers(rows))


def test_json_lines_output(tmp_path):
    out = tmp_path / "sweep.jsonl"
    rows = sweep.run_sweep({"hidden": [4]}, seeds=2, out=out, **DATA)
    # the file holds the runs in the order they finished, run_sweep returns the grid's order
    assert sorted(numbers(sweep.read_rows(out))) == numbers(rows)


@pytest.mark.parametrize("grid, message", [
    ({"hiden": [4]}, "grid has unknown parameters hiden: a sweep varies hidden, dropout"),
    ({"hidden": []}, "grid gives hidden no values"),
    ({"hidden": ["many"]}, "expected a whole number"),
    ({"alpha": [-1.0]}, "alpha must be > 0"),
    ({"dropout": [1.0]}, "dropout must be < 1"),
    ({"batch_size": [500]}, "batch_size must be at most n_train=200"),
])
def test_bad_grids_fail_before_any_training(grid, message):
    with pytest.raises(ValueError, match=message):
        sweep.run_sweep(grid, on_result=pytest.fail, **DATA)


def test_the_command_line_sweep_and_its_refusals(tmp_path):
    command = [sys.executable, "-P", "-m", "grokreg", "sweep", "--grid", "hidden=4,8",
               "--seeds", "1", "--n-train", "200", "--n-validation", "100", "--n-test", "300",
               "--out", str(tmp_path / "s.csv")]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[0].startswith("| hidden | dropout |")
    assert len(result.stdout.splitlines()) == 4
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 2 and "argument --out:" in again.stderr
    unreachable = ("argument --scheduler: cannot reach a Dask scheduler at tcp://127.0.0.1:9"
                   if importlib.util.find_spec("distributed") else
                   "argument --scheduler: needs Dask: pip install 'grokreg[dask]'")
    for flags, message in ((["--grid", "size=3"], "argument --grid: has unknown parameters size"),
                           (["--scheduler", "tcp://127.0.0.1:9"], unreachable),
                           (["--resume"], "argument --resume: goes with --out")):
        result = subprocess.run([sys.executable, "-P", "-m", "grokreg", "sweep", *flags],
                                capture_output=True, text=True)
        assert result.returncode == 2 and message in result.stderr
        assert result.stderr.startswith("usage: grokreg sweep") and "Traceback" not in result.stderr
