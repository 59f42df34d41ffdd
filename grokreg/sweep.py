"""Hyper-parameter sweeps: a grid over the chapter's hyper-parameters, several seeds each, run
in local threads or on a Dask cluster (``pip install "grokreg[dask]"``).

Every run is a pure function of its setting, its seed and the sweep's fixed options
(``run_one``): it loads its data where it runs and returns one row. So a run gives the same
numbers in a local thread and on any Dask worker, a run lost with a worker can simply be
run again (the scheduler does so), and a sweep that stops keeps every row it wrote: each
finished run is appended to the output file as it arrives, and ``resume`` skips those.
"""
import csv
from concurrent.futures import ThreadPoolExecutor, as_completed
from functools import lru_cache
import io
import itertools
import json
import math
import os
import socket
import time

import numpy as np

from ._validation import argument_error, check_int, check_real
from .data import check_count, data_source, load_mnist
from .network import Network, usable_cpus
from .progress import Progress

__all__ = ["GRID", "settings", "run_one", "plan_sweep", "run_sweep", "execute", "summary_table",
           "read_rows"]

#: what a grid may vary, with each parameter's type and the value it has when not varied
GRID = {"hidden": (int, 40), "dropout": (float, 0.0), "alpha": (float, 0.005),
        "batch_size": (int, 1), "epochs": (int, 30)}
#: the columns of the output file: a run's key (setting, seed, fixed options), then results
KEY = [*GRID, "seed", "book", "dtype", "n_train", "n_validation", "n_test"]
RESULTS = ["val_error", "val_accuracy", "test_error", "test_accuracy", "seconds", "where"]


def settings(grid):
    """Every combination of grid's values ({name: [values]}), defaults filled in; checked."""
    if not isinstance(grid, dict):
        raise TypeError(f"grid must be a dict of parameter names to lists, got "
                        f"{type(grid).__name__}")
    unknown = sorted(set(grid) - set(GRID))
    if unknown:
        raise argument_error("grid", f"has unknown parameters {', '.join(unknown)}: a sweep "
                             f"varies {', '.join(GRID)}")
    names = list(GRID)
    values = []
    for name in names:
        kind, default = GRID[name]
        chosen = grid.get(name, [default])
        if isinstance(chosen, (str, bytes)) or not hasattr(chosen, "__iter__"):
            chosen = [chosen]
        chosen = list(chosen)
        if not chosen:
            raise argument_error("grid", f"gives {name} no values: list at least one")
        values.append([_convert(name, kind, value) for value in chosen])
    return [dict(zip(names, combination)) for combination in itertools.product(*values)]


def _convert(name, kind, value):
    if kind is int:
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise argument_error("grid", f"{name}={value!r}: expected a whole number") from None
        return check_int(value, name, minimum=1)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise argument_error("grid", f"{name}={value!r}: expected a number") from None
    return check_real(value, name)


def _check(setting, fixed):
    """Refuse a setting before any training: build its network and check its fit's numbers."""
    Network(setting["hidden"], dropout=setting["dropout"], book=fixed["book"],
            dtype=fixed["dtype"], seed=0)
    check_real(setting["alpha"], "alpha", low=0.0, low_open=True)
    if setting["batch_size"] > fixed["n_train"]:
        raise argument_error("batch_size", f"must be at most n_train={fixed['n_train']}, "
                             f"got {setting['batch_size']}")


@lru_cache(maxsize=4)
def _data(data_dir, n_train, n_validation, n_test):
    """The sweep's data, loaded once per process (a Dask worker loads its own)."""
    (x_train, y_train), (x_test, y_test) = load_mnist(data_dir)
    return ((x_train[:n_train], y_train[:n_train]),
            (x_train[n_train:n_train + n_validation], y_train[n_train:n_train + n_validation]),
            (x_test[:n_test], y_test[:n_test]))


def run_one(setting, seed, fixed, n_threads=None):
    """Train one network of the sweep; returns its row (KEY and RESULTS columns).

    n_threads (None: every CPU this process may use, which is 1 in a Dask worker, where
    OMP_NUM_THREADS=1) changes only the speed.
    """
    train, validation, test = _data(fixed["data_dir"], fixed["n_train"], fixed["n_validation"],
                                    fixed["n_test"])
    started = time.perf_counter()
    net = Network(setting["hidden"], dropout=setting["dropout"], book=fixed["book"],
                  dtype=fixed["dtype"], seed=seed, n_threads=n_threads)
    history = net.fit(*train, epochs=setting["epochs"], alpha=setting["alpha"],
                      batch_size=setting["batch_size"], validation_data=validation,
                      test_data=test, eval_every=setting["epochs"])
    last = history.record()
    row = {**setting, "seed": seed, **{k: fixed[k] for k in KEY if k in fixed}}
    row.update({key: last.get(key, math.nan) for key in RESULTS[:4]})
    row["seconds"] = time.perf_counter() - started
    row["where"] = _where()
    if history.stop_reason == "diverged":
        row.update(val_accuracy=math.nan, test_accuracy=math.nan)
    return row


def _where():
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def _key(row):
    return tuple(str(row[name]) for name in KEY)


# -- the output file --------------------------------------------------------------------------

def _is_json(path):
    return os.fspath(path).endswith((".jsonl", ".json"))


def read_rows(path):
    """The finished runs in an output file (a line cut short by a crash is left out)."""
    with open(path, newline="", encoding="utf-8") as f:
        text = f.read()
    rows = []
    if _is_json(path):
        for line in text.splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and set(KEY + RESULTS) <= set(row):
                rows.append(row)
        return rows
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is not None and reader.fieldnames != KEY + RESULTS:
        raise argument_error("out", f"{path} is not a grokreg sweep file (its columns are "
                             f"{reader.fieldnames})")
    complete = text.endswith("\n")
    lines = list(reader)
    if lines and not complete:
        lines.pop()  # the last line was being written when the sweep stopped
    for row in lines:
        if None not in row and None not in row.values():
            rows.append(_typed(row))
    return rows


def _typed(row):
    typed = {}
    for name, value in row.items():
        if name in GRID:
            typed[name] = GRID[name][0](value)
        elif name in ("seed", "n_train", "n_validation", "n_test"):
            typed[name] = int(value)
        elif name == "book":
            typed[name] = value == "True"
        elif name in ("dtype", "where"):
            typed[name] = value
        else:
            typed[name] = float(value)
    return typed


def _drop_partial_line(path):
    """Cut a line that a stopped sweep left half-written, so that the next row starts anew."""
    with open(path, "rb+") as f:
        content = f.read()
        if content and not content.endswith(b"\n"):
            f.truncate(content.rfind(b"\n") + 1)


class _Appender:
    """Appends rows to the output file, each written whole and flushed to disk."""

    def __init__(self, path):
        self.path, self.json = os.fspath(path), _is_json(path)
        new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        if not new:
            _drop_partial_line(self.path)
        self.file = open(self.path, "a", newline="", encoding="utf-8")
        if new and not self.json:
            self._write(",".join(KEY + RESULTS) + "\n")

    def _write(self, text):
        self.file.write(text)
        self.file.flush()
        os.fsync(self.file.fileno())

    def append(self, row):
        if self.json:
            self._write(json.dumps({k: row[k] for k in KEY + RESULTS}) + "\n")
        else:
            line = io.StringIO()
            csv.writer(line, lineterminator="\n").writerow([row[k] for k in KEY + RESULTS])
            self._write(line.getvalue())

    def close(self):
        self.file.close()


# -- running ----------------------------------------------------------------------------------

class Plan:
    """A checked sweep: its settings, seeds, fixed options, the rows already in its output
    file and the runs still to do."""

    def __init__(self, combinations, seeds, fixed, done, out):
        self.combinations, self.seeds, self.fixed, self.done, self.out = (
            combinations, seeds, fixed, done, out)
        finished = {_key(row) for row in done}
        self.tasks = [(setting, s) for setting in combinations for s in seeds
                      if _key({**setting, "seed": s, **fixed}) not in finished]

    def order(self, rows):
        """rows in the grid's order, seed by seed."""
        place = {_key({**setting, "seed": s, **self.fixed}): index for index, (setting, s)
                 in enumerate(itertools.product(self.combinations, self.seeds))}
        return sorted(rows, key=lambda row: place.get(_key(row), len(place)))


def plan_sweep(grid, *, seeds=3, seed=1, book=False, dtype="float64", n_train=1000,
               n_validation=1000, n_test=10000, data_dir=None, out=None, resume=False):
    """Check a sweep's every setting and its output file, before anything trains."""
    seeds = check_int(seeds, "seeds", minimum=1)
    seed = check_int(seed, "seed", minimum=0, maximum=2**32 - seeds)
    data_dir = data_source(data_dir)
    (x_train, _), (_, y_test) = load_mnist(data_dir)
    source = "embedded" if data_dir is None else data_dir
    n_validation = check_count(n_validation, "n_validation", len(x_train) - 1, source)
    n_train = check_count(n_train, "n_train", len(x_train) - n_validation, source,
                          f", less the {n_validation} validation images")
    n_test = check_count(n_test, "n_test", len(y_test), source)
    fixed = dict(book=bool(book), dtype=str(np.dtype(dtype)), n_train=n_train,
                 n_validation=n_validation, n_test=n_test, data_dir=data_dir)
    combinations = settings(grid)
    for setting in combinations:
        _check(setting, fixed)
    done = []
    if out is not None and os.path.exists(out):
        if not resume:
            raise argument_error("out", f"{os.fspath(out)} exists: resume that sweep (--resume; "
                                 f"resume=True from Python) or choose another file")
        done = read_rows(out)
    return Plan(combinations, range(seed, seed + seeds), fixed, done, out)


def run_sweep(grid, *, client=None, threads=None, progress=False, on_result=None, **options):
    """Train every setting of grid with ``seeds`` seeds (seed, seed + 1, ...).

    Parameters
    ----------
    grid : dict
        {parameter: [values]} over ``GRID``'s parameters; the others keep their defaults.
    seeds, seed : int
        How many seeds per setting, and the first.
    book, dtype : the networks' mode and precision.
    n_train, n_validation, n_test : int
        Training images (the first ones), validation images (the next ones) and test images.
    data_dir : path, optional
        The MNIST files (on a cluster: a path every worker can read); default the embedded
        subset.
    out : path, optional
        Each finished run is appended here as it arrives (CSV, or JSON lines for ``.jsonl``).
    resume : bool
        Skip the runs out already holds (refused if out exists and resume is False).
    client : distributed.Client, optional
        Run on that Dask cluster; else in ``threads`` local threads (default: the CPUs this
        process may use), each network then taking its share of the cores.
    on_result : callable, optional
        Called with each new row as it arrives.

    Returns
    -------
    list of dict
        Every row of the sweep, those read back from out included, in the grid's order.
    """
    return execute(plan_sweep(grid, **options), client=client, threads=threads,
                   progress=progress, on_result=on_result)


def execute(plan, *, client=None, threads=None, progress=False, on_result=None):
    """Run a Plan's remaining runs (see run_sweep)."""
    writer = _Appender(plan.out) if plan.out is not None else None
    bar = Progress(len(plan.tasks), "sweep", unit="run") if progress and plan.tasks else None
    rows = list(plan.done)

    def arrived(row):
        rows.append(row)
        if writer is not None:
            writer.append(row)
        if bar is not None:
            bar.update(1, f"last: hidden={row['hidden']} dropout={row['dropout']:g} "
                          f"alpha={row['alpha']:g} val {row['val_accuracy']:.4f}")
        if on_result is not None:
            on_result(row)

    try:
        if client is not None:
            _on_dask(client, plan.tasks, plan.fixed, arrived)
        else:
            threads = usable_cpus() if threads is None else check_int(threads, "threads", minimum=1)
            # threads x each network's threads stays within the cores
            n_threads = max(1, usable_cpus() // threads)
            with ThreadPoolExecutor(max_workers=threads) as pool:
                futures = [pool.submit(run_one, setting, s, plan.fixed, n_threads)
                           for setting, s in plan.tasks]
                for future in as_completed(futures):
                    arrived(future.result())
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
    return plan.order(rows)


def _on_dask(client, tasks, fixed, arrived):
    from distributed import as_completed as dask_completed

    # key: a run's identity, so that resubmitting the same run reuses it; retries: a run
    # whose worker died is rerun by the scheduler anyway (allowed-failures), retries also
    # reruns one that raised on a broken worker
    futures = [client.submit(run_one, setting, s, fixed, None, pure=False, retries=2,
                             key=f"grokreg-run-{'-'.join(_key({**setting, 'seed': s, **fixed}))}")
               for setting, s in tasks]
    for future in dask_completed(futures):
        arrived(future.result())


def summary_table(rows):
    """Mean and spread (standard deviation over seeds) per setting, as a Markdown table."""
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[name] for name in GRID), []).append(row)
    lines = ["| " + " | ".join(GRID) + " | seeds | val accuracy | test accuracy | s / run |",
             "|" + "---|" * (len(GRID) + 4)]
    for setting, members in groups.items():
        def spread(key):
            values = np.array([m[key] for m in members], dtype=float)
            return f"{np.mean(values):.4f} ± {np.std(values):.4f}"
        seconds = np.mean([m["seconds"] for m in members])
        lines.append("| " + " | ".join(f"{v:g}" for v in setting) + f" | {len(members)} | "
                     f"{spread('val_accuracy')} | {spread('test_accuracy')} | {seconds:.2f} |")
    return "\n".join(lines)
