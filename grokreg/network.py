"""The public network class: validation and bookkeeping around the compiled kernels."""
import os
import threading
import warnings

import numpy as np

try:
    from ._dispatch import kernels as _kernels
except ImportError as exc:  # typically: the source tree, not the installed package, was imported
    raise ImportError(
        f"grokreg's compiled kernels are missing from {os.path.dirname(__file__)}: this is "
        "probably the source tree. Run grokreg from another directory, or build in place "
        "(pip install --no-build-isolation -e . or python setup.py build_ext --inplace)."
    ) from exc
from . import _serialization
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
from .regularization import EarlyStopping

__all__ = ["Network"]

def _array_property(name, doc):
    """A property exposing the array self._<name> as a read-only view; assigning an array of
    the same shape replaces it (converted to the network's dtype, checked finite)."""
    attribute = "_" + name

    def get(self):
        view = getattr(self, attribute).view()
        view.flags.writeable = False
        return view

    def set(self, value):
        shape = getattr(self, attribute).shape
        array = np.asarray(value)
        if array.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
        if array.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be numeric, got dtype {array.dtype}")
        array = np.array(array, dtype=self.dtype, order="C")
        if not np.isfinite(array).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        setattr(self, attribute, array)

    return property(get, set, doc=doc)


def _copy_all(targets, sources):
    for target, source in zip(targets, sources):
        np.copyto(target, source)


def usable_cpus():
    """CPUs this process may run on (its affinity mask, where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


# What each uint8 pixel value stands for: pixel / 255 computed as NumPy does in the target
# precision (float64: the book's x / 255; float32: no float64 detour).
PIXEL_VALUES = {np.dtype(t): np.divide(np.arange(256, dtype=np.uint8), 255, dtype=t)
                for t in (np.float32, np.float64)}


def sparse_rows(x, dtype, keep_zeros=False):
    """The kernels' sparse rows of inputs from as_inputs: uint8 pixels are scaled on the way."""
    if x.dtype == np.uint8:
        return _kernels.sparse_pixels(x, PIXEL_VALUES[dtype], keep_zeros)
    return _kernels.sparse_rows(x, keep_zeros)


LOSSES = {"mse": _kernels.Loss.SQUARED_ERROR,
          "softmax_cross_entropy": _kernels.Loss.SOFTMAX_CROSS_ENTROPY}


class Network:
    """A 3-layer network, inputs -> hidden (ReLU) -> outputs (linear), trained by gradient descent.

    Parameters
    ----------
    hidden : int
        Hidden units (the book: 40 for the overfitting experiment, 100 with dropout).
    dropout : float
        Probability of dropping a hidden unit during training, in [0, 1). Default mode uses
        inverted dropout (survivors scaled by 1/(1 - dropout)); book mode allows 0 or 0.5, the
        book's mask (survivors x2, the gradient masked but not scaled).
    seed : int, numpy.random.Generator, SeedSequence or None
        Seeds the initial weights and the dropout masks (and shuffling). Default mode passes it
        to ``numpy.random.default_rng`` (a Generator is used as is, and advanced). Book mode needs
        an int or None: ``numpy.random.RandomState(seed)`` draws the weights as the book does and
        its stream continues into the masks.
    book : bool
        Reproduce the book exactly: its ReLU derivative (always 1), its dropout mask, its batch
        loop (the update applied batch_size times per batch) and its random stream. Requires
        float64, ``loss="mse"`` and no biases. Default (False): the mathematically correct model.
    dtype : {"float64", "float32"}
        Precision of the parameters and of the arithmetic.
    loss : {"mse", "softmax_cross_entropy"}
        "mse", the book's: squared error against one-hot targets (half of it is minimised).
        "softmax_cross_entropy": the outputs are logits; their softmax's cross-entropy.
    bias : bool
        Add trained biases to the hidden and output layers (the book has none).
    n_inputs, n_outputs : int
        Layer sizes (MNIST: 784 pixels, 10 classes).
    n_threads : int or None
        Threads that share out each mini-batch and each evaluation (OpenMP; ``None``: every CPU
        this process may use). Results are identical, bit for bit, whatever the number.
        Per-example training (batch_size=1) is sequential and uses one. A run-time setting: it
        can be changed at any time and is not saved with the network.

    Attributes
    ----------
    weights_0_1 : ndarray of shape (n_inputs, hidden)
    weights_1_2 : ndarray of shape (hidden, n_outputs)
    bias_1, bias_2 : ndarrays of shape (hidden,) and (n_outputs,), zero without biases
    history_ : History or None
        The record of the latest ``fit``, kept up to date while it runs.

    Notes
    -----
    Both weight layers start uniform in [-0.1, 0.1) as in the book; biases start at zero. The
    update is ``w += alpha * activation * (target - prediction)``, the book's rule;
    mini-batches average the gradient over the batch. A network trains in one thread at a time
    (a second concurrent ``fit`` raises RuntimeError); the kernels release the GIL, so separate
    networks train in parallel Python threads (keep ``n_threads=1`` for each, then).
    """

    def __init__(self, hidden=40, *, dropout=0.0, seed=None, book=False, dtype="float64",
                 loss="mse", bias=False, n_inputs=784, n_outputs=10, n_threads=1):
        self.hidden = check_int(hidden, "hidden", minimum=1)
        self.n_threads = n_threads
        self.n_inputs = check_int(n_inputs, "n_inputs", minimum=1, maximum=2**31 - 1)
        self.n_outputs = check_int(n_outputs, "n_outputs", minimum=1)
        self.dropout = check_real(dropout, "dropout", low=0.0, high=1.0, high_open=True)
        for name, value in (("book", book), ("bias", bias)):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
        self.book, self.bias = bool(book), bool(bias)
        self.dtype = check_dtype(dtype)
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
        self.loss = loss
        shapes = (self.n_inputs, self.hidden), (self.hidden, self.n_outputs)
        if self.book:
            if self.dtype != np.float64:
                raise ValueError("book mode computes in float64, as the book does")
            if self.dropout not in (0.0, 0.5):
                raise ValueError(f"the book's dropout is 0.5 (or 0 for none), got {self.dropout}")
            if self.loss != "mse" or self.bias:
                raise ValueError("the book's network has loss='mse' and no biases")
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
        self._bias_1 = np.zeros(self.hidden, dtype=self.dtype)
        self._bias_2 = np.zeros(self.n_outputs, dtype=self.dtype)
        self.history_ = None
        self._training = threading.Lock()

    def __repr__(self):
        return (
            f"Network(hidden={self.hidden}, dropout={self.dropout}, book={self.book}, "
            f"dtype={self.dtype.name!r}, loss={self.loss!r}, bias={self.bias}, "
            f"n_inputs={self.n_inputs}, n_outputs={self.n_outputs})"
        )

    @property
    def n_threads(self):
        """Threads used by mini-batch training and evaluation (see the class docstring)."""
        return self._n_threads

    @n_threads.setter
    def n_threads(self, value):
        if value is None:
            value = usable_cpus()
        self._n_threads = check_int(value, "n_threads", minimum=1, maximum=1024)
        if self._n_threads > 1 and not _kernels.OPENMP:
            warnings.warn("grokreg was built without OpenMP: n_threads > 1 runs in one thread",
                          RuntimeWarning, stacklevel=2)

    # -- parameters -------------------------------------------------------------------------

    @property
    def _parameters(self):
        return self._weights_0_1, self._bias_1, self._weights_1_2, self._bias_2

    weights_0_1 = _array_property("weights_0_1", "Input-to-hidden weights, (n_inputs, hidden).")
    weights_1_2 = _array_property("weights_1_2", "Hidden-to-output weights, (hidden, n_outputs).")
    bias_1 = _array_property("bias_1", "Hidden-layer biases, (hidden,); zeros without biases.")
    bias_2 = _array_property("bias_2", "Output-layer biases, (n_outputs,); zeros without biases.")

    # -- training ---------------------------------------------------------------------------

    def fit(self, x, y, *, epochs=1, alpha=0.005, batch_size=1, test_data=None,
            validation_data=None, validation_split=0.0, eval_every=1, shuffle=False,
            early_stopping=None, on_divergence="stop", progress=False, on_epoch_end=None):
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
            last epoch. It never influences training, nor early stopping.
        validation_data : (x_val, y_val), optional
            Evaluated at the same epochs; the data early stopping watches.
        validation_split : float
            Instead of validation_data: hold out this fraction of (x, y), taken from the end
            before any shuffling (as Keras does).
        eval_every : int
            See test_data.
        shuffle : bool
            Train each epoch in a fresh random order drawn from the network's generator
            (default mode only: the book does not shuffle).
        early_stopping : EarlyStopping, optional
            Stop when the monitored validation metric stops improving (needs validation data).
        on_divergence : {"stop", "warn"}
            When a weight or the error stops being finite: "stop" ends training at that epoch
            and keeps the weights of the last finite one; "warn" goes on (as the book's
            programs do, printing nan), warning once. Both warn naming the epoch.
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
            validation_data = as_dataset(validation_data, self.n_inputs, self.n_outputs,
                                         self.dtype, "validation_data")
        batch_size = check_int(batch_size, "batch_size", minimum=1, maximum=len(x))
        if test_data is not None:
            test_data = as_dataset(test_data, self.n_inputs, self.n_outputs, self.dtype,
                                   "test_data")
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError("shuffle must be True or False")
        if shuffle and self.book:
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
        if not self._training.acquire(blocking=False):
            raise RuntimeError("this Network is already training in another thread")
        try:
            return self._fit(x, y, epochs, alpha, batch_size, test_data, validation_data,
                             eval_every, bool(shuffle), early_stopping, on_divergence, progress,
                             on_epoch_end)
        finally:
            self._training.release()

    def _fit(self, x, y, epochs, alpha, batch_size, test_data, validation_data, eval_every,
             shuffle, early_stopping, on_divergence, progress, on_epoch_end):
        history = self.history_ = History(
            dict(epochs=epochs, alpha=alpha, batch_size=batch_size, n_train=len(x),
                 eval_every=eval_every, shuffle=shuffle, book=self.book, dropout=self.dropout,
                 loss=self.loss, bias=self.bias,
                 n_validation=None if validation_data is None else len(validation_data[1])))
        datasets = {prefix: data for prefix, data in (("val", validation_data),
                                                       ("test", test_data)) if data is not None}

        def as_rows(keep_zeros):
            """Every data set as the kernels read it: sparse rows, built once per fit."""
            return (sparse_rows(x, self.dtype, keep_zeros),
                    {prefix: (sparse_rows(inputs, self.dtype, keep_zeros), labels)
                     for prefix, (inputs, labels) in datasets.items()})

        train, evaluations = as_rows(False)
        # The book's programs go on through inf and NaN with NumPy's dense arithmetic (0 * inf
        # is NaN); to print what they print, book mode redoes a diverging epoch that way.
        dense, replay = False, self.book and on_divergence == "warn"
        order = np.arange(len(x), dtype=np.int64)
        keep = 1.0 - self.dropout
        loss_code = LOSSES[self.loss]
        # the parameters of the last finite epoch, restored if training diverges
        backup = [np.empty_like(p) for p in self._parameters]
        best = [np.empty_like(p) for p in self._parameters] if early_stopping else None
        if early_stopping is not None:
            early_stopping.reset()
        display = EpochProgress(epochs) if progress and epochs else None
        recorded = True  # the parameters are those of the last epoch in the history
        try:
            for epoch in range(epochs):
                _copy_all(backup, self._parameters)
                recorded = False
                if shuffle:
                    order = np.random.Generator(self._bit_generator).permutation(len(x))
                stream = self._bit_generator.state if replay and not dense else None
                while True:
                    error, correct, _, finite = _kernels.train_epoch(
                        *train, y, order, *self._parameters, alpha, batch_size, self.book, keep,
                        self._bit_generator, loss_code, self.bias, dense, self._n_threads)
                    if finite or stream is None:
                        break
                    _copy_all(self._parameters, backup)
                    self._bit_generator.state = stream
                    dense, stream = True, None
                    train, evaluations = as_rows(True)
                if not finite and on_divergence == "warn":
                    if history.stop_message is None:
                        history.stop_message = (
                            f"training diverged at epoch {epoch} (alpha={alpha}): a weight or "
                            f"the error stopped being finite; going on as asked")
                        warnings.warn(history.stop_message, RuntimeWarning, stacklevel=3)
                elif not finite:
                    _copy_all(self._parameters, backup)
                    history.stop_reason = "diverged"
                    kept = f"the end of epoch {epoch - 1}" if epoch else "before this fit"
                    history.stop_message = (
                        f"training diverged at epoch {epoch} (alpha={alpha}): a weight or the "
                        f"error stopped being finite; the network keeps its weights from {kept}")
                    warnings.warn(history.stop_message, RuntimeWarning, stacklevel=3)
                    return history
                metrics = {"error": error / len(x), "accuracy": correct / len(x)}
                if epoch % eval_every == 0 or epoch == epochs - 1:
                    for prefix, (rows, labels) in evaluations.items():
                        metrics[f"{prefix}_error"], metrics[f"{prefix}_accuracy"] = (
                            self._evaluate(rows, labels, dense))
                history.append(epoch, **metrics)
                recorded = True
                stop = False
                if early_stopping is not None and "val_error" in metrics:
                    stop = early_stopping.update(epoch, metrics[early_stopping.monitor])
                    if early_stopping.best_epoch == epoch:
                        _copy_all(best, self._parameters)
                if display is not None:
                    display.update(history.record())
                if on_epoch_end is not None:
                    on_epoch_end(history.record())
                if stop:
                    history.stop_reason = "early_stopping"
                    history.stop_message = early_stopping.reason
                    break
            else:
                history.stop_reason = "completed"
        except KeyboardInterrupt:
            # a signal is acted on when the kernel returns: an epoch may have finished
            # without being recorded; go back to the last recorded one
            if not recorded:
                _copy_all(self._parameters, backup)
            history.stop_reason = "interrupted"
            history.stop_message = (f"interrupted; the network keeps the weights of epoch "
                                    f"{history.epoch[-1]}" if history.epoch else
                                    "interrupted before the first epoch ended")
            raise
        finally:
            if display is not None:
                display.close()
        if early_stopping is not None:
            history.best_epoch = early_stopping.best_epoch
            history.stopped_epoch = early_stopping.stopped_epoch
            if early_stopping.restore_best_weights and early_stopping.best_epoch is not None:
                _copy_all(self._parameters, best)
        return history

    # -- inference --------------------------------------------------------------------------

    def _evaluate(self, rows, y, dense=False):
        error, correct = _kernels.evaluate(*rows, y, *self._parameters, LOSSES[self.loss],
                                           dense=dense, n_threads=self._n_threads)
        return error / len(y), correct / len(y)

    def evaluate(self, x, y):
        """(error, accuracy) on (x, y) without dropout.

        error is the loss averaged over examples: for "mse" the squared error summed over
        outputs (the book's Test-Err); accuracy the fraction whose largest output is the label.
        """
        x = as_inputs(x, self.n_inputs, self.dtype)
        y = as_labels(y, len(x), self.n_outputs)
        return self._evaluate(sparse_rows(x, self.dtype), y)

    def score(self, x, y):
        """Accuracy on (x, y)."""
        return self.evaluate(x, y)[1]

    def predict(self, x):
        """Predicted class of each example: an int64 array of shape (N,)."""
        x = as_inputs(x, self.n_inputs, self.dtype)
        predictions = np.empty(len(x), dtype=np.int64)
        _kernels.evaluate(*sparse_rows(x, self.dtype), None, *self._parameters, LOSSES[self.loss],
                          predictions, n_threads=self._n_threads)
        return predictions

    def decision_function(self, x):
        """The output layer for each example (no dropout; logits for cross-entropy)."""
        x = as_inputs(x, self.n_inputs, self.dtype)
        outputs = np.empty((len(x), self.n_outputs), dtype=self.dtype)
        _kernels.evaluate(*sparse_rows(x, self.dtype), None, *self._parameters, LOSSES[self.loss],
                          None, outputs, n_threads=self._n_threads)
        return outputs

    # -- persistence ------------------------------------------------------------------------

    def save(self, path):
        """Write the network to an ``.npz`` file (layout: ``grokreg._serialization``).

        Written to a temporary file beside ``path`` and renamed into place, so a crash never
        leaves a half-written model. Returns the path.
        """
        return _serialization.save(self, path)

    @classmethod
    def load(cls, path, *, n_threads=1):
        """Read a network written by ``save``; refuses anything else with ValueError."""
        net = _serialization.load(cls, path)
        net.n_threads = n_threads
        return net
