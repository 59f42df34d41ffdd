"""Regularisation that lives outside the kernels: early stopping.

(Dropout, input dropout, weight decay, momentum and max-norm are ``Network`` and ``fit``
parameters: they run in the kernels.)
"""
import math

from ._validation import check_int, check_real
from .callbacks import Callback

__all__ = ["EarlyStopping"]

MONITORS = ("val_accuracy", "val_error", "accuracy", "error")


class EarlyStopping(Callback):
    """Stop training when a metric stops improving, as Keras' EarlyStopping.

    Pass it as ``Network.fit(..., early_stopping=EarlyStopping(...))`` (or among its
    ``callbacks``), with validation data for a validation metric. It is checked at every
    epoch that measured the metric (every ``eval_every`` epochs and the last for validation
    metrics), and it never looks at the test data.

    Parameters
    ----------
    monitor : {"val_accuracy", "val_error", "accuracy", "error"}
        The metric to watch: a validation metric, or the training loss or accuracy (as
        scikit-learn's MLPClassifier stops on its training loss without early stopping).
    patience : int
        Evaluations without improvement after which training stops (with ``eval_every=10``,
        patience 3 stops 30 epochs after the best; 0 stops at the first evaluation without
        improvement).
    min_delta : float
        The least change that counts as an improvement.
    mode : {"auto", "max", "min"}
        Whether the metric should rise or fall; "auto" infers it from the name (accuracy rises,
        error falls).
    baseline : float, optional
        Training stops unless the metric beats this value within ``patience`` evaluations.
    start_from_epoch : int
        Epochs to train before watching (the metric is not compared before it).
    restore_best_weights : bool
        At the end of training, return the network to the weights of its best epoch.

    Attributes
    ----------
    best_epoch, best_value : int and float, or None
        After a fit: the best evaluated epoch and its metric (None if none was watched).
    stopped_epoch : int or None
        After a fit: the epoch after which training stopped early.
    reason : str or None
        After a fit: a sentence saying why training stopped.
    """

    stop_reason = "early_stopping"

    def __init__(self, monitor="val_accuracy", *, patience=5, min_delta=0.0, mode="auto",
                 baseline=None, start_from_epoch=0, restore_best_weights=True):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a string, got {type(monitor).__name__}")
        if monitor.startswith("test_"):
            raise ValueError(
                f"monitor={monitor!r}: early stopping must never look at the test data; "
                "monitor a validation metric (val_accuracy or val_error)")
        if monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {MONITORS}, got {monitor!r}")
        if mode not in ("auto", "max", "min"):
            raise ValueError(f"mode must be 'auto', 'max' or 'min', got {mode!r}")
        self.monitor = monitor
        self.patience = check_int(patience, "patience", minimum=0)
        self.min_delta = abs(check_real(min_delta, "min_delta"))
        self.mode = ("max" if monitor.endswith("accuracy") else "min") if mode == "auto" else mode
        self.baseline = None if baseline is None else check_real(baseline, "baseline")
        self.start_from_epoch = check_int(start_from_epoch, "start_from_epoch", minimum=0)
        if not isinstance(restore_best_weights, bool):
            raise TypeError("restore_best_weights must be True or False")
        self.restore_best_weights = restore_best_weights
        self.reset()

    def __repr__(self):
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"min_delta={self.min_delta}, mode={self.mode!r}, baseline={self.baseline}, "
                f"start_from_epoch={self.start_from_epoch}, "
                f"restore_best_weights={self.restore_best_weights})")

    def reset(self):
        """Forget any previous fit (called at the start of each fit)."""
        self.best_epoch = None
        self.best_value = None
        self.stopped_epoch = None
        self.reason = None
        self._wait = 0
        self._reference = self.baseline  # what the next value must beat
        self._fit = self._best_weights = None

    # -- the callback: the training loop's side ------------------------------------------------

    def on_fit_begin(self, fit):
        self.reset()
        self._fit = fit

    def on_epoch_end(self, record):
        value = record.get(self.monitor, math.nan)
        if math.isnan(value) and self.monitor.startswith("val_"):
            return None  # not evaluated this epoch
        stop = self.update(record["epoch"], value)
        if self.best_epoch == record["epoch"]:
            self._best_weights = self._fit.snapshot()
        return self.reason if stop else None

    def on_fit_end(self):
        fit, history = self._fit, self._fit.history
        history.best_epoch, history.stopped_epoch = self.best_epoch, self.stopped_epoch
        if self.restore_best_weights and self._best_weights is not None:
            fit.restore(self._best_weights)
            fit.kept = f"its best epoch, {self.best_epoch} (restored by early stopping)"
        self._best_weights = None

    def _improves(self, value):
        if self._reference is None:
            return True
        if self.mode == "max":
            return value > self._reference + self.min_delta
        return value < self._reference - self.min_delta

    def update(self, epoch, value):
        """Take the metric of an evaluated epoch; returns True when training should stop.

        A new best is recorded whenever the value beats the best so far (by min_delta);
        with a baseline, the first best must also beat the baseline.
        """
        if epoch < self.start_from_epoch:
            return False
        if not math.isfinite(value):
            raise ValueError(f"{self.monitor} is {value} at epoch {epoch}")
        if self._improves(value):
            self.best_epoch, self.best_value = epoch, value
            self._reference = value
            self._wait = 0
            return False
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_epoch = epoch
            if self.best_epoch is None:
                self.reason = (f"{self.monitor} did not beat the baseline {self.baseline} in "
                               f"{self._wait} evaluations (patience {self.patience})")
            else:
                self.reason = (f"{self.monitor} did not improve on {self.best_value:.4g} "
                               f"(epoch {self.best_epoch}) in {self._wait} evaluations "
                               f"(patience {self.patience}, min_delta {self.min_delta})")
            return True
        return False
