"""What a fit records, epoch by epoch."""
import math

__all__ = ["History"]


class History:
    """Per-epoch metrics of one ``Network.fit`` call, in the manner of Keras' ``History``.

    Attributes
    ----------
    epoch : list of int
        The epochs trained, from 0.
    history : dict of str to list of float
        ``error`` and ``accuracy`` on the training data (measured during the training pass, so
        with dropout active, as the book does) for every epoch; ``test_error`` and
        ``test_accuracy`` when test data were given. Lists are aligned with ``epoch``; epochs
        that were not evaluated hold NaN.
    stop_reason : str
        ``"completed"``, ``"diverged"`` (a weight or the error stopped being finite; the network
        keeps the weights of the last finite epoch) or ``"interrupted"`` (KeyboardInterrupt).
    params : dict
        The fit's settings.
    """

    def __init__(self, params=None):
        self.epoch = []
        self.history = {"error": [], "accuracy": []}
        self.stop_reason = None
        self.params = dict(params or {})

    def append(self, epoch, **metrics):
        """Record one epoch; metrics absent this epoch are stored as NaN."""
        for key in metrics:
            self.history.setdefault(key, [math.nan] * len(self.epoch))
        self.epoch.append(epoch)
        for key, values in self.history.items():
            values.append(float(metrics.get(key, math.nan)))

    def record(self, index=-1):
        """The metrics of one recorded epoch as a dict (NaN where not evaluated)."""
        return {"epoch": self.epoch[index], **{k: v[index] for k, v in self.history.items()}}

    def evaluated(self, key):
        """(epochs, values) at the epochs where ``key`` was measured."""
        pairs = [(e, v) for e, v in zip(self.epoch, self.history[key]) if not math.isnan(v)]
        return [e for e, _ in pairs], [v for _, v in pairs]

    def __len__(self):
        return len(self.epoch)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)}, stop_reason={self.stop_reason!r})"


def book_line(record, test_first=False):
    """One line in the book's format: errors as str(value)[0:5], accuracies as str(value)."""
    train = f"Train-Err:{str(record['error'])[0:5]} Train-Acc:{record['accuracy']}"
    test = f"Test-Err:{str(record['test_error'])[0:5]} Test-Acc:{record['test_accuracy']}"
    return f"I:{record['epoch']} " + (f"{test} {train}" if test_first else f"{train} {test}")
