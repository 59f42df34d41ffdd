"""The training loop: epochs of the compiled kernels, with evaluation, early stopping,
divergence, interruption, progress and callbacks.

There is one such loop. ``Network.fit`` checks its arguments into a ``Plan`` (``plan``) and
runs it (``run``); ``grokreg.Ensemble`` and the scikit-learn estimator train through
``Network.fit``, so every way of training shares this code.
"""
from dataclasses import dataclass

import numpy as np

from ._validation import as_dataset, as_inputs, as_labels, check_int, check_real, warn_user
from .history import History
from .progress import EpochProgress
from .regularization import EarlyStopping

__all__ = ["Plan", "plan", "run"]


@dataclass
class Plan:
    """A fit's data and settings, checked and converted (the arguments of ``Network.fit``):
    the inputs and labels, and the kernels' Datasets made of them (``data``: "train", and
    "val" and "test" where given)."""

    x: np.ndarray
    y: np.ndarray
    data: dict
    epochs: int
    alpha: float
    batch_size: int
    test_data: tuple | None
    validation_data: tuple | None
    eval_every: int
    shuffle: bool
    early_stopping: EarlyStopping | None
    on_divergence: str
    progress: str | None  # the progress bar's label, or None for no progress
    on_epoch_end: object


def plan(net, x, y, *, epochs=1, alpha=0.005, batch_size=1, test_data=None,
         validation_data=None, validation_split=0.0, eval_every=1, shuffle=False,
         early_stopping=None, on_divergence="stop", progress=False, on_epoch_end=None):
    """Check and convert the arguments of ``net.fit`` (documented there) into a Plan."""
    x = as_inputs(x, net.n_inputs, net.dtype)
    y = as_labels(y, len(x), net.n_outputs)
    epochs = check_int(epochs, "epochs", minimum=0)
    alpha = check_real(alpha, "alpha", low=0.0, low_open=True)
    eval_every = check_int(eval_every, "eval_every", minimum=1)
    validation_split = check_real(validation_split, "validation_split", low=0.0, high=1.0,
                                  high_open=True)
    if validation_split and validation_data is not None:
        raise ValueError("give validation_data or validation_split, not both")
    if validation_split:
        n_validation = int(len(x) * validation_split)
        if not 0 < n_validation < len(x):
            raise ValueError(f"validation_split={validation_split} leaves no examples on "
                             f"one side of {len(x)}")
        validation_data = (x[-n_validation:], y[-n_validation:])
        x, y = x[:-n_validation], y[:-n_validation]
    elif validation_data is not None:
        validation_data = as_dataset(validation_data, net.n_inputs, net.n_outputs, net.dtype,
                                     "validation_data")
    batch_size = check_int(batch_size, "batch_size", minimum=1, maximum=len(x))
    if test_data is not None:
        test_data = as_dataset(test_data, net.n_inputs, net.n_outputs, net.dtype, "test_data")
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError("shuffle must be True or False")
    if shuffle and net.book:
        raise ValueError("book mode does not shuffle (the book trains in data order)")
    if early_stopping is not None:
        if not isinstance(early_stopping, EarlyStopping):
            raise TypeError("early_stopping must be a grokreg.EarlyStopping")
        if validation_data is None:
            raise ValueError("early stopping needs validation_data or validation_split "
                             "(it never watches the test data)")
    if on_epoch_end is not None and not callable(on_epoch_end):
        raise TypeError("on_epoch_end must be callable")
    if on_divergence not in ("stop", "warn"):
        raise ValueError(f"on_divergence must be 'stop' or 'warn', got {on_divergence!r}")
    if not isinstance(progress, (bool, np.bool_, str)):
        raise TypeError(f"progress must be True, False or a label, got {type(progress).__name__}")
    label = progress if isinstance(progress, str) else "train" if progress else None
    data = {"train": net._dataset(x, y)}
    for prefix, argument, given in (("val", "validation_data", validation_data),
                                    ("test", "test_data", test_data)):
        if given is not None:
            name = "x" if validation_split and prefix == "val" else f"{argument}[0]"
            data[prefix] = net._dataset(*given, name=name)
    return Plan(x, y, data, epochs, alpha, batch_size, test_data, validation_data, eval_every,
                bool(shuffle), early_stopping, on_divergence, label, on_epoch_end)


def _copy_all(targets, sources):
    for target, source in zip(targets, sources):
        np.copyto(target, source)


def run(net, plan):
    """Train net as planned; returns its History (also kept as ``net.history_``).

    Whatever ends the fit (the last epoch, early stopping, divergence, an interrupt), the
    network is left with the weights of an epoch the history records; with early stopping
    that restores the best epoch's weights, that epoch is the history's ``best_epoch``.
    """
    kernels, x, y, epochs = net._kernels, plan.x, plan.y, plan.epochs
    history = net.history_ = History(dict(
        epochs=epochs, alpha=plan.alpha, batch_size=plan.batch_size, n_train=len(x),
        eval_every=plan.eval_every, shuffle=plan.shuffle, book=net.book, dropout=net.dropout,
        loss=net.loss, bias=net.bias,
        n_validation=None if plan.validation_data is None else len(plan.validation_data[1])))
    datasets = {prefix: data for prefix, data in (("val", plan.validation_data),
                                                   ("test", plan.test_data)) if data is not None}

    def literal_data():
        """Every data set as literal rows (see below), built when first needed."""
        return (net._dataset(x, y, True),
                {prefix: net._dataset(inputs, labels, True)
                 for prefix, (inputs, labels) in datasets.items()})

    def workspace(data):
        return kernels.Workspace(
            data, *parameters, alpha=plan.alpha, batch_size=plan.batch_size, book=net.book,
            keep=1.0 - net.dropout, bit_generator=net._bit_generator, loss=net._loss_code,
            train_bias=net.bias, n_threads=net.n_threads)

    parameters = net._parameters  # the arrays themselves: assignments copy into them
    train = plan.data["train"]
    evaluations = {prefix: plan.data[prefix] for prefix in datasets}
    work = workspace(train)
    # The book's programs go on through inf and NaN with NumPy's dense arithmetic (0 * inf
    # is NaN); to print what they print, book mode redoes a diverging epoch that way.
    literal, replay = False, net.book and plan.on_divergence == "warn"
    order = np.arange(len(x), dtype=np.int64)
    # the parameters of the last finite epoch, restored if training diverges
    backup = [np.empty_like(p) for p in parameters]
    stopping = plan.early_stopping
    best = [np.empty_like(p) for p in parameters] if stopping else None
    if stopping is not None:
        stopping.reset()
    display = EpochProgress(epochs, description=plan.progress) if plan.progress and epochs else None
    recorded = True  # the parameters are those of the last epoch in the history
    try:
        for epoch in range(epochs):
            _copy_all(backup, parameters)
            recorded = False
            if plan.shuffle:
                # shuffled in place: int64 whatever numpy's default integer (32-bit on
                # Windows with numpy 1.x), as the kernels read it
                order = np.arange(len(x), dtype=np.int64)
                np.random.Generator(net._bit_generator).shuffle(order)
            stream = net._bit_generator.state if replay and not literal else None
            while True:
                error, correct, _, finite = work.train_epoch(order)
                if finite or stream is None:
                    break
                _copy_all(parameters, backup)
                net._bit_generator.state = stream
                literal, stream = True, None
                train, evaluations = literal_data()
                work = workspace(train)
            if not finite and plan.on_divergence == "warn":
                if history.stop_message is None:
                    history.stop_message = (
                        f"training diverged at epoch {epoch} (alpha={plan.alpha}): a weight "
                        f"or the error is not finite; going on as asked")
                    _warn(history.stop_message)
            elif not finite:
                _copy_all(parameters, backup)
                recorded = True
                history.stop_reason = "diverged"
                history.stop_message = (
                    f"training diverged at epoch {epoch} (alpha={plan.alpha}): a weight or the "
                    f"error is not finite")
                kept = f"the end of epoch {epoch - 1}" if epoch else "before this fit"
                break
            metrics = {"error": error / len(x), "accuracy": correct / len(x)}
            if epoch % plan.eval_every == 0 or epoch == epochs - 1:
                for prefix, data in evaluations.items():
                    metrics[f"{prefix}_error"], metrics[f"{prefix}_accuracy"] = (
                        net._evaluate(data, literal))
            history.append(epoch, **metrics)
            recorded = True
            stop = False
            if stopping is not None and "val_error" in metrics:
                stop = stopping.update(epoch, metrics[stopping.monitor])
                if stopping.best_epoch == epoch:
                    _copy_all(best, parameters)
            if display is not None:
                display.update(history.record())
            if plan.on_epoch_end is not None:
                plan.on_epoch_end(history.record())
            if stop:
                history.stop_reason = "early_stopping"
                history.stop_message = stopping.reason
                break
        else:
            history.stop_reason = "completed"
    except KeyboardInterrupt:
        # a signal is acted on when the kernel returns: an epoch may have finished
        # without being recorded; go back to the last recorded one
        if not recorded:
            _copy_all(parameters, backup)
        history.stop_reason = "interrupted"
        history.stop_message = "interrupted"
        kept = f"epoch {history.epoch[-1]}" if history.epoch else "before this fit"
        raise
    finally:
        if display is not None:
            display.close()
        if stopping is not None:
            history.best_epoch = stopping.best_epoch
            history.stopped_epoch = stopping.stopped_epoch
            if stopping.restore_best_weights and stopping.best_epoch is not None:
                _copy_all(parameters, best)
                kept = f"its best epoch, {stopping.best_epoch} (restored by early stopping)"
        if history.stop_reason in ("diverged", "interrupted"):
            history.stop_message += f"; the network keeps its weights from {kept}"
    if history.stop_reason == "diverged":
        _warn(history.stop_message)
    return history


def _warn(message):
    warn_user(message, RuntimeWarning)
