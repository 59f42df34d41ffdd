"""What a fit records, epoch by epoch."""
import csv
import io
import json
import math
import os

__all__ = ["History", "book_line"]


class History:
    """Per-epoch metrics of one ``Network.fit`` call, in the manner of Keras' ``History``.

    Attributes
    ----------
    epoch : list of int
        The epochs trained, from 0.
    history : dict of str to list of float
        ``error`` and ``accuracy`` on the training data (measured during the training pass, so
        with dropout active, as the book does) for every epoch; ``val_error``/``val_accuracy``
        and ``test_error``/``test_accuracy`` at evaluated epochs when validation or test data
        were given. Lists are aligned with ``epoch``; epochs not evaluated hold NaN. ``error``
        is the loss: the squared error summed over outputs (the book's), or the cross-entropy.
    stop_reason : str
        ``"completed"``, ``"early_stopping"``, ``"diverged"`` (a weight or the error stopped
        being finite; the network keeps the weights of the last finite epoch) or
        ``"interrupted"`` (KeyboardInterrupt).
    stop_message : str or None
        Why training stopped, in a sentence, when it stopped before the last epoch.
    best_epoch : int or None
        With early stopping, the best evaluated epoch (whose weights are restored).
    stopped_epoch : int or None
        With early stopping, the epoch after which training stopped, if it stopped early.
    params : dict
        The fit's settings.
    collapse : str or None
        Why the fit could no longer learn or blew up, when it did (see
        ``grokreg.CollapseWarning``).
    """

    def __init__(self, params=None):
        self.epoch = []
        self.history = {"error": [], "accuracy": []}
        self.stop_reason = None
        self.stop_message = None
        self.best_epoch = None
        self.stopped_epoch = None
        self.collapse = None
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
        return (f"History(epochs={len(self.epoch)}, keys={list(self.history)}, "
                f"stop_reason={self.stop_reason!r})")

    # -- export -----------------------------------------------------------------------------

    def to_csv(self, path=None):
        """One row per epoch (empty cells where not evaluated); writes to path, or returns text."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["epoch", *self.history])
        for index, epoch in enumerate(self.epoch):
            writer.writerow([epoch, *("" if math.isnan(v[index]) else repr(v[index])
                                      for v in self.history.values())])
        return _emit(out.getvalue(), path)

    def to_dict(self):
        """Everything recorded, JSON-ready (NaN becomes None)."""
        return {
            "epoch": list(self.epoch),
            "history": {k: [None if math.isnan(x) else x for x in v]
                        for k, v in self.history.items()},
            "stop_reason": self.stop_reason,
            "stop_message": self.stop_message,
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
            "collapse": self.collapse,
            "params": self.params,
        }

    def to_json(self, path=None):
        """to_dict() as JSON; writes to path, or returns text."""
        return _emit(json.dumps(self.to_dict(), indent=1) + "\n", path)

    def book_lines(self, test_first=False):
        """The evaluated epochs as text in the book's format, one line each."""
        return "".join(book_line(self.record(i), test_first) + "\n"
                       for i in range(len(self.epoch))
                       if not math.isnan(self.history.get("test_accuracy", [math.nan])[i]))


def _emit(text, path):
    if path is None:
        return text
    with open(os.fspath(path), "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return None


def book_line(record, test_first=False):
    """One line in the book's format: errors as str(value)[0:5], accuracies as str(value).

    Validation metrics, when present, follow as Val-Err and Val-Acc.
    """
    train = f"Train-Err:{str(record['error'])[0:5]} Train-Acc:{record['accuracy']}"
    test = f"Test-Err:{str(record['test_error'])[0:5]} Test-Acc:{record['test_accuracy']}"
    line = f"I:{record['epoch']} " + (f"{test} {train}" if test_first else f"{train} {test}")
    if not math.isnan(record.get("val_accuracy", math.nan)):
        line += f" Val-Err:{str(record['val_error'])[0:5]} Val-Acc:{record['val_accuracy']}"
    return line
