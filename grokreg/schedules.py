"""Learning-rate schedules: what ``Network.fit(alpha=...)`` takes besides a number.

Each schedule is a ``grokreg.Callback`` holding the initial rate: it sets the fit's rate
before the first epoch and, after each epoch, the next one's (``History.history["alpha"]``
records each epoch's). A number is ``Constant(number)``.

========================  =====================================================  ==============
schedule                  the rate of an epoch                                   MLPClassifier
========================  =====================================================  ==============
``Constant(a)``           a                                                      "constant"
``InverseScaling(a, p)``  a / (t + 1) ** p, t the examples the network has       "invscaling"
                          trained on before the epoch (in all its fits)
``StepDecay(a, n, f)``    a * f ** (epochs of this fit // n)
``MultiStep(a, m, f)``    a * f ** (milestones in m passed by this fit)
``ReduceOnPlateau(a)``    divided by ``factor`` when the monitored metric has    "adaptive"
                          not improved by ``min_delta`` for ``patience``
                          epochs; below ``min_rate``, training stops
========================  =====================================================  ==============
"""
import math
import numbers

from ._validation import check_int, check_real
from .callbacks import Callback

__all__ = ["Schedule", "Constant", "InverseScaling", "StepDecay", "MultiStep",
           "ReduceOnPlateau", "as_schedule"]


class Schedule(Callback):
    """A learning-rate schedule: the rate of the first epoch (``alpha``) and of the next."""

    def __init__(self, alpha):
        self.alpha = check_real(alpha, "alpha", low=0.0, low_open=True)
        self._fit = None

    def on_fit_begin(self, fit):
        self._fit = fit
        fit.rate = self.first_rate(fit)

    def on_epoch_end(self, record):
        self._fit.rate = self.next_rate(self._fit, record)

    def first_rate(self, fit):
        return self.alpha

    def next_rate(self, fit, record):
        return fit.rate


class Constant(Schedule):
    """The same rate every epoch."""

    def __repr__(self):
        return f"Constant({self.alpha:g})"


class InverseScaling(Schedule):
    """alpha / (t + 1) ** power_t, t the examples trained on before the epoch, as
    scikit-learn's "invscaling" (t counts every fit of the network: ``partial_fit`` goes on
    where the last call stopped)."""

    def __init__(self, alpha, power_t=0.5):
        super().__init__(alpha)
        self.power_t = check_real(power_t, "power_t", low=0.0)

    def __repr__(self):
        return f"InverseScaling({self.alpha:g}, power_t={self.power_t:g})"

    def first_rate(self, fit):
        return self._at(fit.network.samples_seen_)

    def next_rate(self, fit, record):
        return self._at(fit.network.samples_seen_)

    def _at(self, samples):
        return self.alpha / (samples + 1) ** self.power_t


class StepDecay(Schedule):
    """alpha * factor ** (the fit's epochs so far // every): the rate falls by factor every
    ``every`` epochs."""

    def __init__(self, alpha, every=10, factor=0.5):
        super().__init__(alpha)
        self.every = check_int(every, "every", minimum=1)
        self.factor = check_real(factor, "factor", low=0.0, high=1.0, low_open=True)

    def __repr__(self):
        return f"StepDecay({self.alpha:g}, every={self.every}, factor={self.factor:g})"

    def next_rate(self, fit, record):
        return self.alpha * self.factor ** ((record["epoch"] + 1) // self.every)


class MultiStep(Schedule):
    """alpha * factor ** (the milestones passed): the rate falls by factor at the start of
    each milestone epoch (PyTorch's MultiStepLR)."""

    def __init__(self, alpha, milestones, factor=0.1):
        super().__init__(alpha)
        if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
            raise TypeError(f"milestones must be a list of epochs, got "
                            f"{type(milestones).__name__}")
        self.milestones = sorted(check_int(m, "milestones", minimum=1) for m in milestones)
        self.factor = check_real(factor, "factor", low=0.0, high=1.0, low_open=True)

    def __repr__(self):
        return f"MultiStep({self.alpha:g}, milestones={self.milestones}, factor={self.factor:g})"

    def next_rate(self, fit, record):
        passed = sum(record["epoch"] + 1 >= milestone for milestone in self.milestones)
        return self.alpha * self.factor ** passed


class ReduceOnPlateau(Schedule):
    """Divide the rate by ``factor`` when ``monitor`` has not improved on its best by
    ``min_delta`` for more than ``patience`` epochs, as scikit-learn's "adaptive" does
    (``monitor="error"``, the training loss, or ``"val_accuracy"`` with early stopping;
    factor 5, min_delta its tol, patience its n_iter_no_change); when the rate would then
    fall to ``min_rate`` or below, training stops instead.

    The schedule's state (the rate it reached, its best value and count) lives in it:
    passing the same schedule to the next fit goes on from there.
    """

    stop_reason = "learning_rate"

    def __init__(self, alpha, monitor="val_error", *, factor=5.0, patience=10, min_delta=1e-4,
                 min_rate=1e-6, mode="auto"):
        super().__init__(alpha)
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a string, got {type(monitor).__name__}")
        if monitor.startswith("test_"):
            raise ValueError(f"monitor={monitor!r}: a schedule must never look at the test "
                             "data; monitor the training or validation metrics")
        if monitor not in ("error", "accuracy", "val_error", "val_accuracy"):
            raise ValueError(f"monitor must be 'error', 'accuracy', 'val_error' or "
                             f"'val_accuracy', got {monitor!r}")
        if mode not in ("auto", "max", "min"):
            raise ValueError(f"mode must be 'auto', 'max' or 'min', got {mode!r}")
        self.monitor = monitor
        self.mode = ("max" if monitor.endswith("accuracy") else "min") if mode == "auto" else mode
        self.factor = check_real(factor, "factor", low=1.0, low_open=True)
        self.patience = check_int(patience, "patience", minimum=0)
        self.min_delta = abs(check_real(min_delta, "min_delta"))
        self.min_rate = check_real(min_rate, "min_rate", low=0.0)
        self.rate = self.alpha
        self.best = None
        self.count = 0

    def __repr__(self):
        return (f"ReduceOnPlateau({self.alpha:g}, monitor={self.monitor!r}, "
                f"factor={self.factor:g}, patience={self.patience}, "
                f"min_delta={self.min_delta:g}, min_rate={self.min_rate:g})")

    def first_rate(self, fit):
        return self.rate

    def on_epoch_end(self, record):
        value = record.get(self.monitor, math.nan)
        if math.isnan(value):  # an epoch not evaluated
            return None
        better = (self.best is None or (value > self.best if self.mode == "max"
                                        else value < self.best))
        improved = (self.best is None or (value > self.best + self.min_delta if self.mode == "max"
                                          else value < self.best - self.min_delta))
        self.count = 0 if improved else self.count + 1
        if better:
            self.best = value
        if self.count > self.patience:
            self.count = 0
            if self.rate / self.factor <= self.min_rate:
                return (f"{self.monitor} did not improve by {self.min_delta:g} for "
                        f"{self.patience + 1} epochs, and the learning rate is at its "
                        f"smallest ({self.rate:g}; min_rate {self.min_rate:g})")
            self.rate /= self.factor
        self._fit.rate = self.rate
        return None


def as_schedule(alpha):
    """alpha as fit's schedule: a Schedule as it is, a number as Constant(number)."""
    if isinstance(alpha, Schedule):
        return alpha
    if isinstance(alpha, numbers.Real) and not isinstance(alpha, bool):
        return Constant(alpha)
    raise TypeError(f"alpha must be a number or a grokreg schedule (Constant, InverseScaling, "
                    f"StepDecay, ReduceOnPlateau), got {type(alpha).__name__}")
