"""The training loop: epochs of the compiled kernels, with evaluation, divergence,
interruption and the fit's callbacks.

There is one such loop. ``Network.fit`` checks its arguments into a ``Plan`` (``plan``) and
runs it (``run``); ``grokreg.Ensemble`` and the scikit-learn estimator train through
``Network.fit``, so every way of training shares this code. The loop tells its callbacks
(``grokreg.callbacks``) of the fit's course and does nothing else for them: early stopping,
the learning-rate schedule, the progress display and a user's function are all callbacks.
"""
from dataclasses import dataclass, field

import numpy as np

from ._validation import (argument_error, as_dataset, as_inputs, as_labels, as_sample_weight,
                          check_int, check_real, warn_user)
from .callbacks import Callback, FunctionCallback, ProgressCallback
from .distortions import Distortion, image_shape, pixel_values
from .history import History
from .regularization import EarlyStopping
from .schedules import Constant, as_schedule

__all__ = ["Plan", "FitState", "CollapseWarning", "plan", "run"]


class CollapseWarning(RuntimeWarning):
    """A fit left the network unable to learn (no hidden unit active for any training
    example), or its training error blew up: usually inputs far from the weights' scale, or
    too large a learning rate. (scikit-learn's estimator reports it as its
    ConvergenceWarning.)"""


#: a training error this many times that of a network which outputs nothing has blown up
BLOWN_UP = 1000


@dataclass
class Plan:
    """A fit's data and settings, checked and converted (the arguments of ``Network.fit``):
    the inputs and labels, and the kernels' Datasets made of them (``data``: "train", and
    "val" and "test" where given)."""

    x: np.ndarray
    y: np.ndarray
    sample_weight: np.ndarray | None
    data: dict
    epochs: int
    schedule: object
    batch_size: int
    eval_every: int
    shuffle: bool
    on_divergence: str
    weight_decay: float = 0.0
    momentum: float = 0.0
    nesterov: bool = False
    max_norm: float | None = None
    callbacks: list = field(default_factory=list)
    datasets: dict = field(default_factory=dict)  # prefix -> (x, y, sample_weight) as given
    augment: object = None  # a grokreg.Distortion: new training images every epoch
    image_shape: tuple | None = None  # (height, width) of the images augment distorts


def plan(net, x, y, *, epochs=1, alpha=0.005, batch_size=1, test_data=None,
         validation_data=None, validation_split=0.0, eval_every=1, shuffle=False,
         early_stopping=None, on_divergence="stop", progress=False, on_epoch_end=None,
         weight_decay=0.0, momentum=0.0, nesterov=False, max_norm=None, sample_weight=None,
         callbacks=None, augment=None):
    """Check and convert the arguments of ``net.fit`` (documented there) into a Plan."""
    image_shape = None
    if augment is not None:
        if not isinstance(augment, Distortion):
            raise TypeError(f"augment must be a grokreg.Affine, grokreg.Elastic or their sum, "
                            f"got {type(augment).__name__}")
        image_shape = augment_shape(augment, np.shape(x))
    x = as_inputs(x, net.n_inputs, net.dtype)
    y = as_labels(y, len(x), net.n_outputs)
    sample_weight = as_sample_weight(sample_weight, len(x))
    epochs = check_int(epochs, "epochs", minimum=0)
    schedule = as_schedule(alpha)
    eval_every = check_int(eval_every, "eval_every", minimum=1)
    validation_split = check_real(validation_split, "validation_split", low=0.0, high=1.0,
                                  high_open=True)
    weight_decay = check_real(weight_decay, "weight_decay", low=0.0)
    momentum = check_real(momentum, "momentum", low=0.0, high=1.0, high_open=True)
    if not isinstance(nesterov, (bool, np.bool_)):
        raise TypeError(f"nesterov must be True or False, got {type(nesterov).__name__}")
    if max_norm is not None:
        max_norm = check_real(max_norm, "max_norm", low=0.0, low_open=True)
    if net.book:
        refused = [name for name, on in (
            ("weight_decay", weight_decay), ("momentum", momentum), ("nesterov", nesterov),
            ("max_norm", max_norm is not None), ("sample_weight", sample_weight is not None),
            ("augment", augment is not None),
            ("alpha", not isinstance(schedule, Constant))) if on]
        if refused:
            what = "a learning-rate schedule" if refused[0] == "alpha" else "this option"
            raise argument_error(refused[0], f"is not in book mode: the book's programs have "
                                 f"no {what} (book=False for the correct model)")
    if validation_split and validation_data is not None:
        raise ValueError("give validation_data or validation_split, not both")
    datasets = {}
    if validation_split:
        n_validation = int(len(x) * validation_split)
        if not 0 < n_validation < len(x):
            raise ValueError(f"validation_split={validation_split} leaves no examples on "
                             f"one side of {len(x)}")
        weights = None if sample_weight is None else sample_weight[-n_validation:]
        datasets["val"] = (x[-n_validation:], y[-n_validation:], weights, "x")
        x, y = x[:-n_validation], y[:-n_validation]
        if sample_weight is not None:
            sample_weight = sample_weight[:-n_validation]
    elif validation_data is not None:
        datasets["val"] = (*as_dataset(validation_data, net.n_inputs, net.n_outputs, net.dtype,
                                       "validation_data"), "validation_data[0]")
    batch_size = check_int(batch_size, "batch_size", minimum=1, maximum=len(x))
    if test_data is not None:
        datasets["test"] = (*as_dataset(test_data, net.n_inputs, net.n_outputs, net.dtype,
                                        "test_data"), "test_data[0]")
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError("shuffle must be True or False")
    if shuffle and net.book:
        raise ValueError("book mode does not shuffle (the book trains in data order)")
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise TypeError("early_stopping must be a grokreg.EarlyStopping")
    if on_divergence not in ("stop", "warn"):
        raise ValueError(f"on_divergence must be 'stop' or 'warn', got {on_divergence!r}")
    if not isinstance(progress, (bool, np.bool_, str)):
        raise TypeError(f"progress must be True, False or a label, got {type(progress).__name__}")
    callbacks = [] if callbacks is None else list(callbacks)
    for index, callback in enumerate(callbacks):
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks[{index}] must be a grokreg.Callback, got "
                            f"{type(callback).__name__}")
    # the schedule first (it sets the first epoch's rate), the display last (it shows the
    # record the others saw)
    callbacks = [schedule, *([early_stopping] if early_stopping is not None else []),
                 *callbacks, *([FunctionCallback(on_epoch_end)] if on_epoch_end is not None
                               else [])]
    if progress:
        callbacks.append(ProgressCallback(progress if isinstance(progress, str) else "train"))
    for callback in callbacks:
        if callback.watches_validation() and "val" not in datasets:
            raise ValueError(f"{type(callback).__name__} watches {callback.monitor}: give "
                             f"validation_data or validation_split (it never watches the "
                             f"test data)")
    # distortions train on new images every epoch: x itself is only checked (the dense
    # layout holds it as it is, without building its sparse rows)
    data = {"train": net._dataset(x, y, sample_weight=sample_weight, training=True,
                                  layout="auto" if augment is None else "dense")}
    for prefix, (inputs, labels, weights, name) in datasets.items():
        data[prefix] = net._dataset(inputs, labels, sample_weight=weights, name=name)
    return Plan(x, y, sample_weight, data, epochs, schedule, batch_size, eval_every,
                bool(shuffle), on_divergence, weight_decay, momentum, bool(nesterov), max_norm,
                callbacks, {prefix: given[:3] for prefix, given in datasets.items()}, augment,
                image_shape)


def augment_shape(augment, x_shape):
    """(height, width) of the images augment is to distort: x's as given, (N, height,
    width), or square rows; else a ValueError naming augment."""
    try:
        return image_shape(x_shape, getattr(augment, "shape", None))
    except ValueError as exc:
        raise argument_error("augment", f"needs images: {exc}") from None


class FitState:
    """What a fit's callbacks see of it (``Callback.on_fit_begin``): the network, its history,
    the fit's epochs, whether it has validation data, and the learning ``rate`` of the next
    epoch, which a schedule sets. ``snapshot()`` copies the network's parameters, and
    ``restore`` puts a copy back (what early stopping does with its best epoch)."""

    def __init__(self, network, history, epochs, validated):
        self.network, self.history, self.epochs = network, history, epochs
        self.validated = validated
        self.kept = None  # the weights the network keeps, in words, when a callback chose
        self._rate = None

    @property
    def rate(self):
        return self._rate

    @rate.setter
    def rate(self, value):
        self._rate = check_real(value, "the learning rate", low=0.0, low_open=True)

    def snapshot(self):
        return [p.copy() for p in self.network._parameters]

    def restore(self, copies):
        _copy_all(self.network._parameters, copies)


def _copy_all(targets, sources):
    for target, source in zip(targets, sources):
        np.copyto(target, source)


def run(net, plan):
    """Train net as planned; returns its History (also kept as ``net.history_``).

    Whatever ends the fit (the last epoch, a callback, divergence, an interrupt), the network
    is left with the weights of an epoch the history records; with early stopping that
    restores the best epoch's weights, that epoch is the history's ``best_epoch``.
    """
    kernels, x, y, epochs = net._kernels, plan.x, plan.y, plan.epochs
    history = net.history_ = History(dict(
        epochs=epochs, alpha=plan.schedule.alpha, schedule=repr(plan.schedule),
        batch_size=plan.batch_size, n_train=len(x), eval_every=plan.eval_every,
        shuffle=plan.shuffle, book=net.book, dropout=net.dropout,
        input_dropout=net.input_dropout, loss=net.loss, bias=net.bias,
        weight_decay=plan.weight_decay, momentum=plan.momentum, nesterov=plan.nesterov,
        max_norm=plan.max_norm, sample_weight=plan.sample_weight is not None,
        augment=None if plan.augment is None else repr(plan.augment),
        n_validation=len(plan.datasets["val"][1]) if "val" in plan.datasets else None))
    state = FitState(net, history, epochs, "val" in plan.data)
    parameters = net._parameters  # the arrays themselves: assignments copy into them
    velocities = net._velocities_for(plan.momentum)

    def workspace(data):
        return kernels.Workspace(
            data, *parameters, alpha=state.rate, batch_size=plan.batch_size, book=net.book,
            keep=1.0 - net.dropout, bit_generator=net._bit_generator, loss=net._loss_code,
            train_bias=net.bias, n_threads=net.n_threads, weight_decay=plan.weight_decay,
            momentum=plan.momentum, nesterov=plan.nesterov, max_norm=plan.max_norm or 0.0,
            input_keep=1.0 - net.input_dropout, input_generator=net._bit_generator,
            velocities=velocities)

    def literal_data():
        """Every data set as literal rows (see below), built when first needed."""
        return (net._dataset(x, y, True),
                {prefix: net._dataset(inputs, labels, True)
                 for prefix, (inputs, labels, _) in plan.datasets.items()})

    train = plan.data["train"]
    evaluations = {prefix: plan.data[prefix] for prefix in plan.datasets}
    if plan.augment is not None:
        # every epoch's distorted images go into this one array (the data set's size, made
        # once a fit), and train as a data set of their own, its rows counted as distorted
        # and stored where the previous epoch's were
        distorted = kernels.aligned_empty(x.shape, net.dtype)
        counts = np.empty(len(x), dtype=np.int64)
        values = pixel_values(x, net.dtype)
        previous = []

        def distorted_epoch():
            plan.augment.distort_into(x, distorted, int(net._bit_generator.random_raw()),
                                      *plan.image_shape, net.n_threads, values, counts)
            data = kernels.Dataset(distorted, y, dtype=net.dtype,
                                   sample_weight=plan.sample_weight, n_threads=net.n_threads,
                                   counts=counts, reuse=previous.pop() if previous else None)
            previous.append(data)
            return data
    # The book's programs go on through inf and NaN with NumPy's dense arithmetic (0 * inf
    # is NaN); to print what they print, book mode redoes a diverging epoch that way.
    literal, replay = False, net.book and plan.on_divergence == "warn"
    order = np.arange(len(x), dtype=np.int64)
    # the parameters of the last finite epoch, restored if training diverges
    backup = [np.empty_like(p) for p in parameters]
    velocity_backup = [np.empty_like(v) for v in velocities or ()]
    recorded = True  # the parameters are those of the last epoch in the history
    begun = []  # the callbacks told of the fit's beginning, to be told of its end
    try:
        for callback in plan.callbacks:
            callback.on_fit_begin(state)
            begun.append(callback)
        work = workspace(train)
        for epoch in range(epochs):
            _copy_all(backup, parameters)
            _copy_all(velocity_backup, velocities or ())
            recorded = False
            if plan.shuffle:
                # shuffled in place: int64 whatever numpy's default integer (32-bit on
                # Windows with numpy 1.x), as the kernels read it
                order = np.arange(len(x), dtype=np.int64)
                np.random.Generator(net._bit_generator).shuffle(order)
            if plan.augment is not None:
                work = workspace(distorted_epoch())
            rate = state.rate
            work.alpha = rate
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
                        f"training diverged at epoch {epoch} (alpha={rate}): a weight "
                        f"or the error is not finite; going on as asked")
                    _warn(history.stop_message)
            elif not finite:
                _copy_all(parameters, backup)
                _copy_all(velocities or (), velocity_backup)
                recorded = True
                history.stop_reason = "diverged"
                history.stop_message = (
                    f"training diverged at epoch {epoch} (alpha={rate}): a weight or the "
                    f"error is not finite")
                state.kept = f"the end of epoch {epoch - 1}" if epoch else "before this fit"
                break
            net.samples_seen_ += len(x)
            if not literal:
                _watch_blow_up(net, history, epoch, error / train.weight_total, rate)
            # the book divides by every image, a last partial batch dropped or not
            metrics = {"error": error / train.weight_total,
                       "accuracy": correct / train.weight_total, "alpha": rate}
            if epoch % plan.eval_every == 0 or epoch == epochs - 1:
                for prefix, data in evaluations.items():
                    metrics[f"{prefix}_error"], metrics[f"{prefix}_accuracy"] = (
                        net._evaluate(data, literal))
            history.append(epoch, **metrics)
            recorded = True
            stopper = None
            for callback in plan.callbacks:
                reason = callback.on_epoch_end(history.record())
                if reason and stopper is None:
                    stopper = (callback, reason)
            if stopper is not None:
                callback, reason = stopper
                history.stop_reason = callback.stop_reason
                history.stop_message = reason if isinstance(reason, str) else (
                    f"stopped by {type(callback).__name__}")
                break
        else:
            history.stop_reason = "completed"
    except KeyboardInterrupt:
        # a signal is acted on when the kernel returns: an epoch may have finished
        # without being recorded; go back to the last recorded one
        if not recorded:
            _copy_all(parameters, backup)
            _copy_all(velocities or (), velocity_backup)
        history.stop_reason = "interrupted"
        history.stop_message = "interrupted"
        state.kept = f"epoch {history.epoch[-1]}" if history.epoch else "before this fit"
        raise
    finally:
        for callback in begun:
            callback.on_fit_end()
        if history.epoch:
            net.rate_ = history.history["alpha"][-1]
        if history.stop_reason in ("diverged", "interrupted"):
            history.stop_message += f"; the network keeps its weights from {state.kept}"
    # the weights the fit leaves, if they are the last epoch's: can they still learn? (an
    # epoch in which no unit was active for any example changed no first-layer weight but
    # by weight decay or momentum)
    if (history.stop_reason in ("completed", "early_stopping", "callback", "learning_rate")
            and history.epoch and state.kept is None and not literal
            and work.active_units == 0):
        _warn_collapse(history, f"no hidden unit was active for any training example in "
                       f"epoch {history.epoch[-1]}: the network can no longer learn, and "
                       f"every prediction is the same", net.rate_)
    if history.stop_reason == "diverged":
        _warn(history.stop_message)
    return history


def _warn(message):
    warn_user(message, RuntimeWarning)


def _watch_blow_up(net, history, epoch, error, rate):
    """Warn (CollapseWarning) when the epoch's training error blew up: orders of magnitude
    above that of a network which outputs nothing."""
    # each one-hot target's squared error against zeros is 1; the softmax of zeros gives each
    # class 1 / n_outputs
    nothing = 1.0 if net.loss == "mse" else float(np.log(net.n_outputs))
    if np.isfinite(error) and error > BLOWN_UP * nothing:
        _warn_collapse(history, f"the training error blew up to {error:.3g} in epoch {epoch} "
                       f"(a network that outputs nothing has {nothing:.3g})", rate)


def _warn_collapse(history, what, rate):
    """Warn once a fit (CollapseWarning), saying what to do; the history keeps the message."""
    if history.collapse is None:
        history.collapse = (f"{what}: scale the inputs (sklearn.preprocessing.StandardScaler) "
                            f"or lower the learning rate (alpha={rate:g})")
        warn_user(history.collapse, CollapseWarning)
