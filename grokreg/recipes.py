"""The book's chapter 8 experiments, as data, and the functions that run them."""
import io
import sys
import textwrap
import time
from dataclasses import dataclass

import numpy as np

from . import progress as _progress
from ._validation import argument_error
from .data import check_count, data_source, load_mnist
from .history import book_line
from .network import Network, usable_cpus
from .regularization import EarlyStopping

__all__ = ["Experiment", "EXPERIMENTS", "REGULARIZERS", "reproduce", "reproduce_ensemble",
           "reproduce_regularizers", "compare", "comparison_table"]

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


def _mode(book):
    return "book" if book else "correct"


def _experiment_data(name, experiment, data_dir, n_train, n_test):
    """The experiment's training (and validation) and test images, checked against what the
    data hold; the network's sizes come from the whole data set, whatever slice is used."""
    n_validation = VALIDATION_SIZE if experiment.monitor else 0
    data_dir = data_source(data_dir)
    (x_train, y_train), (x_test, y_test) = load_mnist(data_dir)
    source = "embedded" if data_dir is None else data_dir
    sizes = dict(n_inputs=int(np.prod(x_train.shape[1:])),
                 n_outputs=int(max(y_train.max(), y_test.max())) + 1)
    kept_back = (f", less the {n_validation} images the {name} experiment keeps for "
                 f"validation" if n_validation else "")
    n_train = check_count(n_train, "n_train", len(y_train) - n_validation, source, kept_back)
    n_test = check_count(n_test, "n_test", len(y_test), source)
    if n_train < experiment.batch_size:
        raise argument_error("n_train", f"must be at least {experiment.batch_size}, got "
                             f"{n_train}: the {name} experiment trains in batches of "
                             f"{experiment.batch_size} (the book's program would train "
                             f"nothing on {n_train} images)")
    train = x_train[:n_train], y_train[:n_train]
    validation = x_train[n_train:n_train + n_validation], y_train[n_train:n_train + n_validation]
    return train, validation if n_validation else None, (x_test[:n_test], y_test[:n_test]), sizes


def reproduce(name, *, book=False, seed=1, hidden=None, alpha=None, epochs=None, n_train=1000,
              n_test=10000, eval_every=10, data_dir=None, dtype="float64", out=None,
              progress=False):
    """Run one of the book's experiments, printing its table to ``out`` as it trains.

    Parameters are those of the book's programs (``shared/reference/chapter8_numpy.py``);
    None takes the experiment's own value. Lines are printed at epochs where
    ``epoch % eval_every == 0`` (and the last epoch for ``overfit``), in the book's format.
    The early-stopping experiment evaluates its validation set every epoch, prints lines as
    ``overfit`` does (with the validation metrics) and ends with a summary line. progress
    shows a bar on stderr naming the experiment and mode; the lines never garble it.

    Returns
    -------
    (Network, History)
    """
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    experiment = EXPERIMENTS[name]
    out = sys.stdout if out is None else out
    (x_train, y_train), validation, test, sizes = _experiment_data(name, experiment, data_dir,
                                                                   n_train, n_test)
    net = Network(experiment.hidden if hidden is None else hidden, dropout=experiment.dropout,
                  seed=seed, book=book, dtype=dtype, **sizes)
    epochs = experiment.epochs if epochs is None else epochs
    options = {}
    if experiment.monitor:
        options = dict(validation_data=validation,
                       early_stopping=EarlyStopping(experiment.monitor,
                                                    patience=experiment.patience),
                       eval_every=1)

    def print_line(record):
        last = record["epoch"] == epochs - 1
        if record["epoch"] % eval_every == 0 or (last and experiment.print_last):
            _progress.write(book_line(record, experiment.test_first), out)

    history = net.fit(x_train, y_train, epochs=epochs,
                      alpha=experiment.alpha(book) if alpha is None else alpha,
                      batch_size=experiment.batch_size, test_data=test,
                      eval_every=options.pop("eval_every", eval_every),
                      progress=f"{name}, {_mode(book)} mode" if progress else False,
                      on_epoch_end=print_line,
                      # the book's programs print on through nan; the correct model stops
                      on_divergence="warn" if book else "stop", **options)
    if experiment.monitor:
        if history.stop_reason == "early_stopping":
            print(book_line(history.record(), experiment.test_first), file=out, flush=True)
            how = f"stopped after epoch {history.stopped_epoch}"
        else:
            how = f"trained all {epochs} epochs"
        test_error, test_accuracy = net.evaluate(*test)
        print(f"Early stopping: {how}, best epoch {history.best_epoch} "
              f"({experiment.monitor}); restored weights Test-Err:{str(test_error)[0:5]} "
              f"Test-Acc:{test_accuracy}", file=out, flush=True)
    return net, history


def _best(history):
    """(best test accuracy, its epoch) over the evaluated epochs."""
    epochs, accuracies = history.evaluated("test_accuracy")
    best = max(range(len(accuracies)), key=accuracies.__getitem__)
    return accuracies[best], epochs[best]


def reproduce_ensemble(*, networks=5, book=False, seed=1, hidden=None, alpha=None, epochs=None,
                       n_train=1000, n_test=10000, eval_every=10, data_dir=None,
                       dtype="float64", out=None, progress=False):
    """Section 8.8, "dropout works because ensembling works", in numbers.

    The overfit experiment's network (no dropout) is trained ``networks`` times with
    independent seeds (book mode: seed, seed + 1, ...; network 1 is the book's own), in
    parallel threads; then one network of the dropout experiment (100 hidden units, 50%
    dropout) for as many epochs. Prints, as a Markdown table, each network's test accuracy,
    their mean, the ensemble's (the average of their outputs) and the dropout network's.

    Returns
    -------
    dict with ``ensemble`` (Ensemble), ``dropout`` (Network), ``rows`` (the table's rows as
    dicts), ``table`` (its text), ``test`` (the test data) and ``train_accuracy`` (the
    ensemble's on its training images)
    """
    from .ensemble import Ensemble

    experiment = EXPERIMENTS["overfit"]
    out = sys.stdout if out is None else out
    train, _, test, sizes = _experiment_data("ensemble", experiment, data_dir, n_train, n_test)
    epochs = experiment.epochs if epochs is None else epochs
    hidden = experiment.hidden if hidden is None else hidden
    alpha = experiment.alpha(book) if alpha is None else alpha
    fit = dict(epochs=epochs, alpha=alpha, test_data=test, eval_every=eval_every,
               on_divergence="warn" if book else "stop")
    ensemble = Ensemble(networks, hidden, seed=seed, book=book, dtype=dtype, **sizes)
    ensemble.fit(*train, progress=f"ensemble of {networks}, {_mode(book)} mode" if progress
                 else False, **fit)
    dropout_experiment = EXPERIMENTS["dropout"]
    dropout = Network(dropout_experiment.hidden, dropout=dropout_experiment.dropout, seed=seed,
                      book=book, dtype=dtype, **sizes)
    dropout.fit(*train, progress=f"dropout network, {_mode(book)} mode" if progress else False,
                **fit)
    rows = []
    for index, (net, history) in enumerate(zip(ensemble.networks, ensemble.histories_)):
        best, best_epoch = _best(history)
        rows.append(dict(model=f"network {index + 1}", hidden=hidden, dropout=0.0,
                         test_accuracy=net.score(*test), best=best, best_epoch=best_epoch))
    mean = float(np.mean([row["test_accuracy"] for row in rows]))
    rows.append(dict(model=f"mean of the {networks} networks", hidden=hidden, dropout=0.0,
                     test_accuracy=mean, best=None, best_epoch=None))
    rows.append(dict(model="ensemble: their outputs averaged", hidden=hidden, dropout=0.0,
                     test_accuracy=ensemble.score(*test), best=None, best_epoch=None))
    best, best_epoch = _best(dropout.history_)
    rows.append(dict(model="one network with dropout", hidden=dropout.hidden,
                     dropout=dropout.dropout, test_accuracy=dropout.score(*test), best=best,
                     best_epoch=best_epoch))
    lines = [f"Ensemble, {_mode(book)} mode: {networks} networks {sizes['n_inputs']}-{hidden}-"
             f"{sizes['n_outputs']}, {epochs} epochs on {len(train[1])} images", "",
             "| model | hidden | dropout | test acc, last epoch | best test acc (epoch) |",
             "|---|---|---|---|---|"]
    for row in rows:
        best = "" if row["best"] is None else f"{row['best']:.4f} ({row['best_epoch']})"
        lines.append(f"| {row['model']} | {row['hidden']} | {row['dropout']:g} | "
                     f"{row['test_accuracy']:.4f} | {best} |")
    table = "\n".join(lines)
    print(table, file=out, flush=True)
    return dict(ensemble=ensemble, dropout=dropout, rows=rows, table=table, test=test,
                train_accuracy=ensemble.score(*train))


def compare(*, seed=1, n_train=1000, n_test=10000, eval_every=10, data_dir=None,
            progress=False, out=None, networks=5):
    """Run every experiment, and the ensemble of ``networks``, in book and default mode;
    returns one summary dict per run.

    Each run's table is printed to ``out`` (default: nowhere).
    """
    sink = out if out is not None else io.StringIO()
    runs = []
    common = dict(seed=seed, n_train=n_train, n_test=n_test, eval_every=eval_every,
                  data_dir=data_dir, out=sink, progress=progress)
    for name in [*EXPERIMENTS, "ensemble"]:
        for book in (True, False):
            print(f"# {name}, {_mode(book)} mode", file=sink)
            started = time.perf_counter()
            if name == "ensemble":
                result = reproduce_ensemble(networks=networks, book=book, **common)
                history = result["dropout"].history_
                run = dict(best_test_accuracy=None, best_epoch=None,
                           final_test_accuracy=result["ensemble"].score(*result["test"]),
                           final_train_accuracy=result["train_accuracy"],
                           histories=result["ensemble"].histories_, history=history)
            else:
                net, history = reproduce(name, book=book, **common)
                best, best_epoch = _best(history)
                final = history.evaluated("test_accuracy")[1][-1]
                if EXPERIMENTS[name].monitor:  # the restored network is the result
                    final = history.history["test_accuracy"][
                        history.epoch.index(history.best_epoch)]
                run = dict(best_test_accuracy=best, best_epoch=best_epoch,
                           final_test_accuracy=final,
                           final_train_accuracy=history.history["accuracy"][-1], history=history)
            runs.append(dict(experiment=name, mode=_mode(book), epochs=len(history),
                             seconds=time.perf_counter() - started, **run))
    return runs


def comparison_table(runs):
    """The runs of ``compare`` as a Markdown table."""
    lines = [
        "| experiment | mode | best test (epoch) | final test | final train | epochs | time |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        best = ("" if run["best_test_accuracy"] is None else
                f"{run['best_test_accuracy']:.4f} ({run['best_epoch']})")
        lines.append(
            f"| {run['experiment']} | {run['mode']} | {best} | {run['final_test_accuracy']:.4f} | "
            f"{run['final_train_accuracy']:.3f} | {run['epochs']} | {run['seconds']:.1f} |")
    lines.append("")
    lines += textwrap.wrap(
        "Accuracies. final test: at the last epoch, or for early-stopping the restored best "
        "epoch, or for ensemble the averaged outputs of its networks; best test is for "
        "reference only (choosing on it would be choosing on the test set). Time: wall "
        "seconds.", 78)
    return "\n".join(lines)


#: reproduce_regularizers' regularizers, each with the strengths it chooses among on the
#: validation images: {strength as printed: (Network options, fit options)}; "patience" stands
#: for an EarlyStopping on the validation error with that patience
REGULARIZERS = {
    "none": {"": ({}, {})},
    "early stopping": {f"patience {p}": ({}, {"patience": p}) for p in (5, 10, 20)},
    "weight decay": {f"{w:g}": ({}, {"weight_decay": w}) for w in (1e-3, 3e-3, 1e-2, 3e-2)},
    "max-norm": {f"{c:g}": ({}, {"max_norm": c}) for c in (0.25, 0.5, 1.0)},
    "input dropout": {f"{p:g}": ({"input_dropout": p}, {}) for p in (0.1, 0.2, 0.4)},
    "dropout": {f"{p:g}": ({"dropout": p}, {}) for p in (0.2, 0.5)},
    "dropout + max-norm": {f"{p:g}, {c:g}": ({"dropout": p}, {"max_norm": c})
                           for p in (0.2, 0.5) for c in (0.5, 1.0)},
}


def reproduce_regularizers(*, seed=1, hidden=None, alpha=None, epochs=None, n_train=1000,
                           n_test=10000, eval_every=10, networks=5, data_dir=None,
                           dtype="float64", out=None, progress=False):
    """The chapter's regularizers, and those the field adds, on the same footing.

    The overfit experiment (784-40-10, per-example steps at 0.005, 350 epochs on the first
    1,000 training images, default mode) is trained with no regularizer and under each of
    ``REGULARIZERS`` at each of its strengths, every run from the same seed; each
    regularizer's strength is the one whose network scores best on the validation images
    (the next 1,000 training images; never the test set). An ensemble of ``networks``
    unregularized networks (section 8.8) ends the table. Runs train in parallel threads, one
    each. Prints a Markdown table of the chosen runs, then the strengths tried, in lines of
    at most 80 columns.

    Returns
    -------
    dict with ``rows`` (one dict per regularizer: its name, chosen strength, accuracies,
    seconds and history), ``tried`` ({regularizer: [(strength, validation accuracy)]}),
    ``table`` (the printed text) and ``ensemble``
    """
    from concurrent.futures import ThreadPoolExecutor  # here: it slows grokreg's import

    from .ensemble import Ensemble

    experiment = EXPERIMENTS["early-stopping"]  # the overfit experiment with a validation set
    out = sys.stdout if out is None else out
    train, validation, test, sizes = _experiment_data("regularizers", experiment, data_dir,
                                                      n_train, n_test)
    hidden = experiment.hidden if hidden is None else hidden
    epochs = experiment.epochs if epochs is None else epochs
    alpha = experiment.default_alpha if alpha is None else alpha
    runs = [(name, strength, options) for name, strengths in REGULARIZERS.items()
            for strength, options in strengths.items()]
    bar = (_progress.Progress(len(runs) + 1, "regularizers", unit="run") if progress
           else None)

    def train_one(run):
        name, strength, (network_options, fit_options) = run
        fit_options = dict(fit_options)
        patience = fit_options.pop("patience", None)
        if patience is not None:
            fit_options["early_stopping"] = EarlyStopping("val_error", patience=patience)
        started = time.perf_counter()
        net = Network(hidden, seed=seed, dtype=dtype, n_threads=1, **sizes, **network_options)
        history = net.fit(*train, epochs=epochs, alpha=alpha, validation_data=validation,
                          test_data=test, eval_every=1 if patience else eval_every,
                          **fit_options)
        seconds = time.perf_counter() - started
        if bar is not None:
            bar.update(1, status=f"{name} {strength}".strip())
        return dict(regularizer=name, strength=strength, model=net, history=history,
                    seconds=seconds)

    workers = usable_cpus()
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            trained = list(pool.map(train_one, runs))
        started = time.perf_counter()
        ensemble = Ensemble(networks, hidden, seed=seed, dtype=dtype, **sizes)
        ensemble.fit(*train, epochs=epochs, alpha=alpha, test_data=test,
                     eval_every=eval_every)
        ensemble_seconds = time.perf_counter() - started
        if bar is not None:
            bar.update(1, status="ensemble")
    finally:
        if bar is not None:
            bar.close()
    for run in trained:
        run["validation_accuracy"] = run["model"].score(*validation)
    rows, tried = [], {}
    for name in REGULARIZERS:
        candidates = [run for run in trained if run["regularizer"] == name]
        tried[name] = [(run["strength"], run["validation_accuracy"]) for run in candidates]
        # the first of the best: ties go to the weaker strength, listed first
        rows.append(max(candidates, key=lambda run: run["validation_accuracy"]))
    rows.append(dict(regularizer=f"ensemble of {networks}", strength="", model=ensemble,
                     history=None, seconds=ensemble_seconds,
                     validation_accuracy=ensemble.score(*validation)))
    lines = textwrap.wrap(
        f"Regularizers, default mode: {sizes['n_inputs']}-{hidden}-{sizes['n_outputs']}, "
        f"per-example steps at {alpha:g}, {epochs} epochs on {len(train[1])} images; each "
        f"strength chosen on {len(validation[1])} validation images", 78)
    lines += ["", "| regularizer | strength | val acc | test acc | best test (epoch) | train "
              "| s |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        row["test_accuracy"] = row["model"].score(*test)
        row["train_accuracy"] = row["model"].score(*train)
        best = "" if row["history"] is None else "{:.4f} ({})".format(*_best(row["history"]))
        lines.append(f"| {row['regularizer']} | {row['strength']} | "
                     f"{row['validation_accuracy']:.4f} | {row['test_accuracy']:.4f} | {best} | "
                     f"{row['train_accuracy']:.3f} | {row['seconds']:.1f} |")
    lines += ["", "Strengths tried (validation accuracy):"]
    for name in REGULARIZERS:
        if len(tried[name]) > 1:
            lines += textwrap.wrap(f"- {name}: " + ", ".join(
                f"{strength} ({accuracy:.4f})" for strength, accuracy in tried[name]), 78,
                subsequent_indent="  ")
    lines += [""] + textwrap.wrap(
        "Accuracies of each model as it ended training (early stopping: the restored best "
        "epoch; the ensemble: its averaged outputs; train: without dropout). Best test is "
        f"for reference only: choosing on it would be choosing on the test set. s: seconds "
        f"of training, {workers} run{'s' if workers > 1 else ''} at a time.", 78)
    table = "\n".join(lines)
    print(table, file=out, flush=True)
    return dict(rows=rows, tried=tried, table=table, ensemble=ensemble)


@dataclass(frozen=True)
class DistortionRun:
    """One row of reproduce_distortions: the distortion and the training that goes with it."""

    name: str
    paper: float  # Simard et al.'s test error, percent
    distortion: object  # a grokreg.Distortion or None
    epochs: int
    alpha: float  # divided by 3 after two thirds of the epochs and again after five sixths
    dropout: float


def distortion_runs():
    """The rows of reproduce_distortions. Their settings were chosen on MNIST's last 10,000
    training images (docs: "Distortions"), never on the test set; every run is 784-800-10,
    softmax cross-entropy with biases, float32, batches of 100 with momentum 0.9."""
    from .distortions import Affine, Elastic

    return (
        DistortionRun("none", 1.6, None, 60, 0.05, 0.5),
        DistortionRun("affine", 1.1, Affine(rotation=15, scale=0.15, shear=0.15,
                                            translation=1.5), 100, 0.05, 0.0),
        DistortionRun("elastic", 0.7, Elastic(alpha=34, sigma=4), 150, 0.05, 0.0),
    )


def reproduce_distortions(*, data_dir=None, quick=False, seed=1, out=None, progress=False):
    """Simard, Steinkraus and Platt (2003)'s table for the one-hidden-layer network: MNIST
    test error of 784-800-10 trained without distortions, with affine and with elastic ones.

    Each row trains on the first 50,000 training images (distorted anew every epoch), is
    evaluated on the last 10,000 after every epoch, and keeps the weights of its best
    validation epoch; its test error is that network's. Prints a table whose rows begin with
    the distortion's name, grokreg's test error first, beside the paper's. quick: a short
    version (100 hidden units, 2 epochs, 6,000 images) for tests. Needs full MNIST.

    Returns
    -------
    dict with ``rows`` (one dict per run: name, test_error, paper, best_epoch,
    validation_error, epochs, seconds, history, distortion), ``table``, ``images`` (a few
    training images, for figures) and ``hidden``
    """
    from .schedules import MultiStep

    out = sys.stdout if out is None else out
    directory = data_source(data_dir)
    if directory is None:
        raise argument_error("data_dir", "reproduce distortions trains on full MNIST (60,000 "
                             "training images), which grokreg does not embed: give its folder "
                             "(--data-dir DIR, or $GROKREG_DATA); `grokreg data download` "
                             "fetches the files")
    (x, y), (x_test, y_test) = load_mnist(directory)
    n_train, n_validation, hidden = (5000, 1000, 100) if quick else (50000, 10000, 800)
    if len(y) < n_train + n_validation:
        raise argument_error("data_dir", f"holds {len(y)} training images; reproduce "
                             f"distortions needs {n_train + n_validation}")
    if quick:
        x_test, y_test = x_test[:2000], y_test[:2000]
    train = x[:n_train], y[:n_train]
    validation = x[n_train:n_train + n_validation], y[n_train:n_train + n_validation]
    rows = []
    for run in distortion_runs():
        epochs = 2 if quick else run.epochs
        net = Network(hidden, dropout=run.dropout, seed=seed, dtype="float32",
                      loss="softmax_cross_entropy", bias=True)
        started = time.perf_counter()
        history = net.fit(
            *train, epochs=epochs, batch_size=100,
            alpha=MultiStep(run.alpha, [2 * epochs // 3, 5 * epochs // 6], factor=1 / 3),
            momentum=0.9, shuffle=True, augment=run.distortion, validation_data=validation,
            test_data=(x_test, y_test),
            early_stopping=EarlyStopping("val_accuracy", patience=epochs),
            progress=f"distortions: {run.name}" if progress else False)
        seconds = time.perf_counter() - started
        best = history.epoch.index(history.best_epoch)
        rows.append(dict(name=run.name, paper=run.paper, distortion=run.distortion,
                         test_error=100 * (1 - net.score(x_test, y_test)),
                         validation_error=100 * (1 - history.history["val_accuracy"][best]),
                         best_epoch=history.best_epoch, epochs=len(history), seconds=seconds,
                         history=history))
    lines = textwrap.wrap(f"Simard et al. (2003), 784-{hidden}-10: MNIST test error, trained "
                          f"on {n_train} images, the epoch chosen on {n_validation} "
                          f"validation images", 78)
    lines += ["", "distortion  test error  paper  validation error  best epoch  epochs  seconds"]
    for row in rows:
        lines.append(f"{row['name']:<10}  {row['test_error']:>9.2f}%  {row['paper']:>4.1f}%  "
                     f"{row['validation_error']:>15.2f}%  {row['best_epoch']:>10}  "
                     f"{row['epochs']:>6}  {row['seconds']:>7.0f}")
    table = "\n".join(lines)
    print(table, file=out, flush=True)
    return dict(rows=rows, table=table, images=train[0][:8], hidden=hidden)

