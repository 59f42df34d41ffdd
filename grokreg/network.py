"""The public network class: validation and bookkeeping around the compiled kernels."""
import os
import threading
import warnings

import numpy as np

try:
    from . import _kernels
except ImportError as exc:  # typically: the source tree, not the installed package, was imported
    raise ImportError(
        f"grokreg's compiled kernels are missing from {os.path.dirname(__file__)}: this is "
        "probably the source tree. Run grokreg from another directory, or build in place "
        "(pip install --no-build-isolation -e . or python setup.py build_ext --inplace)."
    ) from exc
from ._validation import (
    as_dataset,
    as_inputs,
    as_labels,
    check_dtype,
    check_int,
    check_real,
)
from .history import History
from .progress import EpochProgress

__all__ = ["Network"]


class Network:
    """A 3-layer network, inputs -> hidden (ReLU) -> outputs (linear), trained on squared error.

    Parameters
    ----------
    hidden : int
        Hidden units (the book: 40 for the overfitting experiment, 100 with dropout).
    dropout : float
        Probability of dropping a hidden unit during training, in [0, 1). Default mode uses
        inverted dropout (survivors scaled by 1/(1 - dropout)); book mode allows 0 or 0.5, the
        book's mask (survivors x2, the gradient masked but not scaled).
    seed : int, numpy.random.Generator, SeedSequence or None
        Seeds the initial weights and the dropout masks. Default mode passes it to
        ``numpy.random.default_rng`` (a Generator is used as is, and advanced). Book mode needs
        an int or None: ``numpy.random.RandomState(seed)`` draws the weights as the book does and
        its stream continues into the masks.
    book : bool
        Reproduce the book exactly: its ReLU derivative (always 1), its dropout mask, its batch
        loop (the update applied batch_size times per batch) and its random stream. Requires
        float64. Default (False): the mathematically correct model.
    dtype : {"float64", "float32"}
        Precision of the weights and of the arithmetic.
    n_inputs, n_outputs : int
        Layer sizes (MNIST: 784 pixels, 10 classes).

    Attributes
    ----------
    weights_0_1 : ndarray of shape (n_inputs, hidden)
    weights_1_2 : ndarray of shape (hidden, n_outputs)
    history_ : History or None
        The record of the latest ``fit``, kept up to date while it runs.

    Notes
    -----
    Both layers start uniform in [-0.1, 0.1) as in the book. Training minimises half the
    squared error: the update is ``w += alpha * activation * (target - output)``, the book's
    rule; mini-batches average the gradient over the batch. A network trains in one thread at
    a time (a second concurrent ``fit`` raises RuntimeError); the kernels release the GIL, so
    separate networks train in parallel threads.
    """

    def __init__(self, hidden=40, *, dropout=0.0, seed=None, book=False, dtype="float64",
                 n_inputs=784, n_outputs=10):
        self.hidden = check_int(hidden, "hidden", minimum=1)
        self.n_inputs = check_int(n_inputs, "n_inputs", minimum=1)
        self.n_outputs = check_int(n_outputs, "n_outputs", minimum=1)
        self.dropout = check_real(dropout, "dropout", low=0.0, high=1.0, high_open=True)
        if not isinstance(book, (bool, np.bool_)):
            raise TypeError(f"book must be True or False, got {type(book).__name__}")
        self.book = bool(book)
        self.dtype = check_dtype(dtype)
        shapes = (self.n_inputs, self.hidden), (self.hidden, self.n_outputs)
        if self.book:
            if self.dtype != np.float64:
                raise ValueError("book mode computes in float64, as the book does")
            if self.dropout not in (0.0, 0.5):
                raise ValueError(f"the book's dropout is 0.5 (or 0 for none), got {self.dropout}")
            if seed is not None:
                seed = check_int(seed, "seed", minimum=0, maximum=2**32 - 1)
            legacy = np.random.RandomState(seed)
            weights = [0.2 * legacy.random_sample(shape) - 0.1 for shape in shapes]
            # the masks continue the same MT19937 stream, as np.random.randint does in the book
            self._bit_generator = np.random.MT19937()
            self._bit_generator.state = {
                "bit_generator": "MT19937",
                "state": legacy.get_state(legacy=False)["state"],
            }
        else:
            try:
                generator = np.random.default_rng(seed)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"seed: {exc}") from exc
            weights = [0.2 * generator.random(shape) - 0.1 for shape in shapes]
            self._bit_generator = generator.bit_generator
        self._weights_0_1, self._weights_1_2 = (
            np.ascontiguousarray(w, dtype=self.dtype) for w in weights
        )
        self.history_ = None
        self._training = threading.Lock()

    def __repr__(self):
        return (
            f"Network(hidden={self.hidden}, dropout={self.dropout}, book={self.book}, "
            f"dtype={self.dtype.name!r}, n_inputs={self.n_inputs}, n_outputs={self.n_outputs})"
        )

    # -- weights ----------------------------------------------------------------------------

    def _set_weights(self, value, name, shape):
        array = np.asarray(value)
        if array.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
        if array.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be numeric, got dtype {array.dtype}")
        array = np.array(array, dtype=self.dtype, order="C")
        if not np.isfinite(array).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        return array

    @property
    def weights_0_1(self):
        """Input-to-hidden weights, shape (n_inputs, hidden); a read-only view."""
        view = self._weights_0_1.view()
        view.flags.writeable = False
        return view

    @weights_0_1.setter
    def weights_0_1(self, value):
        self._weights_0_1 = self._set_weights(value, "weights_0_1", self._weights_0_1.shape)

    @property
    def weights_1_2(self):
        """Hidden-to-output weights, shape (hidden, n_outputs); a read-only view."""
        view = self._weights_1_2.view()
        view.flags.writeable = False
        return view

    @weights_1_2.setter
    def weights_1_2(self, value):
        self._weights_1_2 = self._set_weights(value, "weights_1_2", self._weights_1_2.shape)

    # -- training ---------------------------------------------------------------------------

    def fit(self, x, y, *, epochs=1, alpha=0.005, batch_size=1, test_data=None, eval_every=1,
            progress=False, on_epoch_end=None):
        """Train on (x, y), continuing from the current weights.

        Parameters
        ----------
        x : array of shape (N, n_inputs) or (N, 28, 28)
            uint8 pixels (scaled by 1/255) or floating-point inputs (used as given).
        y : array of shape (N,) or (N, n_outputs)
            Integer labels or one-hot rows.
        epochs : int
            Passes over the data (0 trains nothing).
        alpha : float
            Learning rate, > 0. Per example in per-example training; on the batch-mean gradient
            in default-mode mini-batches (the book's batch experiment: 0.001 in book mode is
            about 0.1 here); in book mode the book's batch loop applies it batch_size times.
        batch_size : int
            1 for per-example gradient descent (the book's first experiments), or mini-batches.
        test_data : (x_test, y_test), optional
            Evaluated (without dropout) at epochs where ``epoch % eval_every == 0`` and at the
            last epoch. It never influences training.
        eval_every : int
            See test_data.
        progress : bool
            Show progress on stderr (tqdm if installed, else the book's ``\\r`` line).
        on_epoch_end : callable, optional
            Called as ``on_epoch_end(record)`` after each epoch with that epoch's metrics.

        Returns
        -------
        History
            Also kept as ``self.history_``.
        """
        x = as_inputs(x, self.n_inputs, self.dtype)
        y = as_labels(y, len(x), self.n_outputs)
        epochs = check_int(epochs, "epochs", minimum=0)
        alpha = check_real(alpha, "alpha", low=0.0, low_open=True)
        batch_size = check_int(batch_size, "batch_size", minimum=1, maximum=len(x))
        eval_every = check_int(eval_every, "eval_every", minimum=1)
        if test_data is not None:
            test_data = as_dataset(test_data, self.n_inputs, self.n_outputs, self.dtype,
                                   "test_data")
        if on_epoch_end is not None and not callable(on_epoch_end):
            raise TypeError("on_epoch_end must be callable")
        if not self._training.acquire(blocking=False):
            raise RuntimeError("this Network is already training in another thread")
        try:
            return self._fit(x, y, epochs, alpha, batch_size, test_data, eval_every, progress,
                             on_epoch_end)
        finally:
            self._training.release()

    def _fit(self, x, y, epochs, alpha, batch_size, test_data, eval_every, progress,
             on_epoch_end):
        history = self.history_ = History(
            dict(epochs=epochs, alpha=alpha, batch_size=batch_size, n_train=len(x),
                 eval_every=eval_every, book=self.book, dropout=self.dropout)
        )
        # the kernels read each data set as sparse rows, built once per fit
        train = _kernels.sparse_rows(x)
        if test_data is not None:
            test_data = (_kernels.sparse_rows(test_data[0]), test_data[1])
        order = np.arange(len(x), dtype=np.int64)
        keep = 1.0 - self.dropout
        # the weights of the last finite epoch, restored if training diverges
        backup = (np.empty_like(self._weights_0_1), np.empty_like(self._weights_1_2))
        display = EpochProgress(epochs) if progress and epochs else None
        try:
            for epoch in range(epochs):
                np.copyto(backup[0], self._weights_0_1)
                np.copyto(backup[1], self._weights_1_2)
                error, correct, _, finite = _kernels.train_epoch(
                    *train, y, order, self._weights_0_1, self._weights_1_2, alpha, batch_size,
                    self.book, keep, self._bit_generator)
                if not finite:
                    np.copyto(self._weights_0_1, backup[0])
                    np.copyto(self._weights_1_2, backup[1])
                    history.stop_reason = "diverged"
                    kept = f"the end of epoch {epoch - 1}" if epoch else "before this fit"
                    warnings.warn(
                        f"training diverged at epoch {epoch} (alpha={alpha}): a weight or the "
                        f"error stopped being finite; the network keeps its weights from {kept}",
                        RuntimeWarning, stacklevel=3)
                    return history
                metrics = {"error": error / len(x), "accuracy": correct / len(x)}
                if test_data is not None and (epoch % eval_every == 0 or epoch == epochs - 1):
                    metrics["test_error"], metrics["test_accuracy"] = self._evaluate(*test_data)
                history.append(epoch, **metrics)
                if display is not None:
                    display.update(history.record())
                if on_epoch_end is not None:
                    on_epoch_end(history.record())
        except KeyboardInterrupt:
            history.stop_reason = "interrupted"
            raise
        finally:
            if display is not None:
                display.close()
        history.stop_reason = "completed"
        return history

    # -- inference --------------------------------------------------------------------------

    def _evaluate(self, rows, y):
        error, correct = _kernels.evaluate(*rows, y, self._weights_0_1, self._weights_1_2)
        return error / len(y), correct / len(y)

    def evaluate(self, x, y):
        """(error, accuracy) on (x, y) without dropout.

        error is the squared error summed over outputs and averaged over examples (the book's
        Test-Err); accuracy the fraction whose largest output is the label.
        """
        x = as_inputs(x, self.n_inputs, self.dtype)
        y = as_labels(y, len(x), self.n_outputs)
        return self._evaluate(_kernels.sparse_rows(x), y)

    def score(self, x, y):
        """Accuracy on (x, y)."""
        return self.evaluate(x, y)[1]

    def predict(self, x):
        """Predicted class of each example: an int64 array of shape (N,)."""
        x = as_inputs(x, self.n_inputs, self.dtype)
        predictions = np.empty(len(x), dtype=np.int64)
        _kernels.evaluate(*_kernels.sparse_rows(x), None, self._weights_0_1, self._weights_1_2,
                          predictions)
        return predictions

    def decision_function(self, x):
        """The output layer for each example (no dropout): an array of shape (N, n_outputs)."""
        x = as_inputs(x, self.n_inputs, self.dtype)
        outputs = np.empty((len(x), self.n_outputs), dtype=self.dtype)
        _kernels.evaluate(*_kernels.sparse_rows(x), None, self._weights_0_1, self._weights_1_2,
                          None, outputs)
        return outputs
