"""What the training loop tells of a fit's course, and to whom: the callback protocol.

``Network.fit`` runs one loop (``grokreg.training.run``), which tells each of a fit's
callbacks when the fit begins, when each epoch ends and when the fit ends, and does nothing
else for them. Early stopping (``grokreg.EarlyStopping``), the learning-rate schedules
(``grokreg.schedules``), the progress display and a user's own function are all callbacks.

>>> class Every10(grokreg.Callback):
...     def on_epoch_end(self, record):
...         if record["epoch"] % 10 == 0:
...             print(record["epoch"], record["error"])
>>> net.fit(x, y, epochs=50, callbacks=[Every10()])  # doctest: +SKIP
"""
from .progress import EpochProgress

__all__ = ["Callback", "FunctionCallback", "ProgressCallback"]


class Callback:
    """The protocol: subclass it and override what you need (each does nothing here).

    ``on_fit_begin(fit)`` is called once, before the first epoch, with the fit's state (a
    ``grokreg.training.FitState``: its network, history, learning ``rate``, epochs), which a
    callback keeps if it needs it later; ``on_epoch_end(record)`` after each epoch, with the
    epoch's metrics as ``History.record`` gives them; returning a sentence (or True) stops
    training after this epoch, the sentence becoming ``History.stop_message``;
    ``on_fit_end()`` once, however the fit ended (completed, stopped, diverged or
    interrupted). ``stop_reason`` names what a stop by this callback was, for
    ``History.stop_reason``.
    """

    stop_reason = "callback"

    def watches_validation(self):
        """Whether the callback needs validation data (the fit refuses to start without)."""
        return getattr(self, "monitor", "").startswith("val_")

    def on_fit_begin(self, fit):
        pass

    def on_epoch_end(self, record):
        return None

    def on_fit_end(self):
        pass


class FunctionCallback(Callback):
    """A plain function called with each epoch's record (``fit(on_epoch_end=function)``);
    what it returns stops training as ``Callback.on_epoch_end``'s return does."""

    def __init__(self, function):
        if not callable(function):
            raise TypeError("on_epoch_end must be callable")
        self.function = function

    def __repr__(self):
        return f"FunctionCallback({self.function!r})"

    def on_epoch_end(self, record):
        return self.function(record)


class ProgressCallback(Callback):
    """The progress display on stderr (``fit(progress=True)`` or a label): a bar counting
    epochs, with the latest Train-Err and Train-Acc."""

    def __init__(self, label):
        self.label = label
        self._display = None

    def on_fit_begin(self, fit):
        if fit.epochs:
            self._display = EpochProgress(fit.epochs, description=self.label)

    def on_epoch_end(self, record):
        if self._display is not None:
            self._display.update(record)

    def on_fit_end(self):
        if self._display is not None:
            self._display.close()
            self._display = None
