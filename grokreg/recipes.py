"""The book's chapter 8 experiments, as data, and the functions that run them."""
import io
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from .data import DATA_ENV, _check_count, load_mnist
from .history import book_line
from .network import Network
from .regularization import EarlyStopping

__all__ = ["Experiment", "EXPERIMENTS", "reproduce", "compare", "comparison_table"]

#: the early-stopping experiment's validation set: the next images after the training set
VALIDATION_SIZE = 1000


@dataclass(frozen=True)
class Experiment:
    """One of the book's experiments: its hyper-parameters and how it prints its table."""

    name: str
    summary: str
    hidden: int
    book_alpha: float
    default_alpha: float  # the same step in default mode (batches average their gradient)
    epochs: int
    batch_size: int
    dropout: float
    test_first: bool  # the dropout/batch tables print test metrics before train metrics
    print_last: bool  # the overfit table also prints the last epoch
    monitor: str | None = None  # early stopping on the validation set: the metric watched
    patience: int = 0  # ... and for how many epochs (it is evaluated every epoch)

    def alpha(self, book):
        return self.book_alpha if book else self.default_alpha


EXPERIMENTS = {
    e.name: e
    for e in (
        Experiment("overfit", "784-40-10, per-example SGD, 1,000 images: memorises, then overfits",
                   hidden=40, book_alpha=0.005, default_alpha=0.005, epochs=350, batch_size=1,
                   dropout=0.0, test_first=False, print_last=True),
        Experiment("dropout", "784-100-10 with 50% dropout, per-example SGD",
                   hidden=100, book_alpha=0.005, default_alpha=0.005, epochs=300, batch_size=1,
                   dropout=0.5, test_first=True, print_last=False),
        # The book's batch loop applies its 0.001 step 100 times per batch: an effective step
        # of 0.1 on the batch-mean gradient, which default mode takes once.
        Experiment("batch", "784-100-10, dropout, mini-batches of 100",
                   hidden=100, book_alpha=0.001, default_alpha=0.1, epochs=300, batch_size=100,
                   dropout=0.5, test_first=True, print_last=False),
        # The overfit experiment, stopped when the error on the next 1,000 training images (a
        # validation set; never the test set) has not improved for 10 epochs.
        Experiment("early-stopping", "the overfit experiment stopped on a validation set "
                   "(training images 1000-1999)",
                   hidden=40, book_alpha=0.005, default_alpha=0.005, epochs=350, batch_size=1,
                   dropout=0.0, test_first=False, print_last=True, monitor="val_error",
                   patience=10),
    )
}


def reproduce(name, *, book=False, seed=1, hidden=None, alpha=None, epochs=None, n_train=1000,
              n_test=10000, eval_every=10, data_dir=None, dtype="float64", out=None,
              progress=False):
    """Run one of the book's experiments, printing its table to ``out`` as it trains.

    Parameters are those of the book's programs (``shared/reference/chapter8_numpy.py``);
    None takes the experiment's own value. Lines are printed at epochs where
    ``epoch % eval_every == 0`` (and the last epoch for ``overfit``), in the book's format.
    The early-stopping experiment evaluates its validation set every epoch, prints lines as
    ``overfit`` does (with the validation metrics) and ends with a summary line.

    Returns
    -------
    (Network, History)
    """
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    experiment = EXPERIMENTS[name]
    out = sys.stdout if out is None else out
    n_validation = VALIDATION_SIZE if experiment.monitor else 0
    (x_train, y_train), (x_test, y_test) = load_mnist(data_dir)
    source = "embedded" if data_dir is None and not os.environ.get(DATA_ENV) else "data_dir's"
    # the network's shape comes from the whole data set, whatever slice of it is used
    n_inputs = int(np.prod(x_train.shape[1:]))
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    n_train = _check_count(n_train, f"n_train (+{n_validation} for validation)" if n_validation
                           else "n_train", len(y_train) - n_validation, source)
    n_test = _check_count(n_test, "n_test", len(y_test), source)
    if n_train < experiment.batch_size:
        raise ValueError(f"the {name} experiment trains in batches of {experiment.batch_size}: "
                         f"n_train must be at least that (the book's program would train "
                         f"nothing on {n_train} images)")
    x_train, y_train = x_train[:n_train + n_validation], y_train[:n_train + n_validation]
    x_test, y_test = x_test[:n_test], y_test[:n_test]
    net = Network(experiment.hidden if hidden is None else hidden, dropout=experiment.dropout,
                  seed=seed, book=book, dtype=dtype, n_inputs=n_inputs, n_outputs=n_classes)
    epochs = experiment.epochs if epochs is None else epochs
    options = {}
    if experiment.monitor:
        options = dict(validation_data=(x_train[n_train:], y_train[n_train:]),
                       early_stopping=EarlyStopping(experiment.monitor,
                                                    patience=experiment.patience),
                       eval_every=1)

    def print_line(record):
        last = record["epoch"] == epochs - 1
        if record["epoch"] % eval_every == 0 or (last and experiment.print_last):
            print(book_line(record, experiment.test_first), file=out, flush=True)

    history = net.fit(x_train[:n_train], y_train[:n_train], epochs=epochs,
                      alpha=experiment.alpha(book) if alpha is None else alpha,
                      batch_size=experiment.batch_size, test_data=(x_test, y_test),
                      eval_every=options.pop("eval_every", eval_every), progress=progress,
                      on_epoch_end=print_line,
                      # the book's programs print on through nan; the correct model stops
                      on_divergence="warn" if book else "stop", **options)
    if experiment.monitor:
        if history.stop_reason == "early_stopping":
            print(book_line(history.record(), experiment.test_first), file=out, flush=True)
            how = f"stopped after epoch {history.stopped_epoch}"
        else:
            how = f"trained all {epochs} epochs"
        test_error, test_accuracy = net.evaluate(x_test, y_test)
        print(f"Early stopping: {how}, best epoch {history.best_epoch} "
              f"({experiment.monitor}); restored weights Test-Err:{str(test_error)[0:5]} "
              f"Test-Acc:{test_accuracy}", file=out, flush=True)
    return net, history


def compare(*, seed=1, n_train=1000, n_test=10000, eval_every=10, data_dir=None,
            progress=False, out=None):
    """Run every experiment in book and default mode; returns one summary dict per run.

    Each run's table is printed to ``out`` (default: nowhere).
    """
    sink = out if out is not None else io.StringIO()
    runs = []
    for name in EXPERIMENTS:
        for book in (True, False):
            print(f"# {name}, {'book' if book else 'correct'} mode", file=sink)
            started = time.perf_counter()
            net, history = reproduce(name, book=book, seed=seed, n_train=n_train, n_test=n_test,
                                     eval_every=eval_every, data_dir=data_dir, out=sink,
                                     progress=progress)
            seconds = time.perf_counter() - started
            epochs, accuracies = history.evaluated("test_accuracy")
            best = max(range(len(accuracies)), key=accuracies.__getitem__)
            final = history.evaluated("test_accuracy")[1][-1]
            if EXPERIMENTS[name].monitor:  # the restored network is the result
                final = history.history["test_accuracy"][history.epoch.index(history.best_epoch)]
            runs.append(dict(experiment=name, mode="book" if book else "correct",
                             best_test_accuracy=accuracies[best], best_epoch=epochs[best],
                             final_test_accuracy=final,
                             final_train_accuracy=history.history["accuracy"][-1],
                             epochs=len(history), seconds=seconds, history=history))
    return runs


def comparison_table(runs):
    """The runs of ``compare`` as a Markdown table."""
    lines = [
        "| experiment | mode | best test acc (epoch) | final test acc | final train acc "
        "| epochs | wall time |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        lines.append(
            f"| {run['experiment']} | {run['mode']} | {run['best_test_accuracy']:.4f} "
            f"({run['best_epoch']}) | {run['final_test_accuracy']:.4f} | "
            f"{run['final_train_accuracy']:.3f} | {run['epochs']} | {run['seconds']:.1f} s |")
    lines.append("")
    lines.append("final test acc: at the last epoch, or for early-stopping the restored best "
                 "epoch; best test acc is for reference only (choosing on it would be choosing "
                 "on the test set).")
    return "\n".join(lines)
