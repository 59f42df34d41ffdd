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
from . import _serialization, training
from ._validation import (PIXEL_VALUES, argument_error, as_inputs, as_labels, as_sample_weight,
                          check_dtype, check_int, check_real, check_values)

__all__ = ["Network", "usable_cpus"]

def padded_width(hidden, dtype):
    """The row width the kernels get for weights_0_1 and bias_1: hidden rounded up to whole
    blocks of 32 bytes (8 float32, 4 float64: an AVX2 vector, two of SSE2's, half of
    AVX-512's, whose kernels end a row with a half vector), so that every row is read in whole
    vectors (see grokreg/_kernels.pyx), the same layout whichever build runs; the padding is
    zeros and stays so. (Whole 64-byte cache lines, 112 instead of 104 float32 for 100
    units, cost 7% more time in the first layer's passes and update with AVX2, and 8% more
    arithmetic in the AVX-512 build's tiles.) Any width of at least hidden computes the same
    numbers."""
    lanes = ROW_BYTES // np.dtype(dtype).itemsize
    return -(-hidden // lanes) * lanes


#: what the rows of weights_0_1 are padded to, in bytes (padded_width)
ROW_BYTES = 32


def _read_only(array):
    view = array.view()
    view.flags.writeable = False
    return view


def _array_property(name, doc):
    """A property exposing the parameter self._<name> as a read-only view (weights_0_1 and
    bias_1 without their padding); assigning an array of that shape copies it in (converted
    to the network's dtype, checked finite)."""

    def get(self):
        return _read_only(self._views[name])

    def set(self, value):
        target = self._views[name]
        array = np.asarray(value)
        if array.shape != target.shape:
            raise ValueError(f"{name} must have shape {target.shape}, got {array.shape}")
        if array.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be numeric, got dtype {array.dtype}")
        array = np.asarray(array, dtype=self.dtype)
        if not np.isfinite(array).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        np.copyto(target, array)

    return property(get, set, doc=doc)


def usable_cpus():
    """CPUs this process may use: its affinity mask (where the system has one), capped by
    ``OMP_NUM_THREADS`` where that is set (Dask sets it to 1 in its workers)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    try:
        # OpenMP reads a list ("4,2" for nested levels): the first entry is the outer level
        limit = int(os.environ.get("OMP_NUM_THREADS", "").split(",")[0])
    except ValueError:
        limit = cpus
    return max(1, min(cpus, limit))


def dataset(x, y, dtype, literal=False, n_threads=1, name="x", sample_weight=None,
            training=False, layout="auto"):
    """The kernels' Dataset of inputs from as_inputs (and labels from as_labels, or None; and
    weights from as_sample_weight), its values checked (check_values, naming the argument):
    uint8 pixels stand for pixel / 255; the layout follows the inputs' density unless given."""
    values = PIXEL_VALUES[dtype] if x.dtype == np.uint8 else None
    data = _kernels.Dataset(x, y, dtype=dtype, literal=literal, values=values,
                            sample_weight=sample_weight, n_threads=n_threads, layout=layout)
    check_values(data, x, name, training)
    return data


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
    input_dropout : float
        Probability of dropping an input during training, in [0, 1) (default mode only):
        survivors scaled by 1/(1 - input_dropout), as the hidden units are; evaluation and
        prediction see every input. Each example's mask comes from its own place in the
        random stream, so the bits do not depend on the number of threads.
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
        Threads that share out each mini-batch, each evaluation and the conversion of the data
        (OpenMP). ``None`` (the default): every CPU this process may use (its affinity mask,
        and no more than ``OMP_NUM_THREADS`` where that is set, as Dask sets it to 1 in its
        workers). Results are identical, bit for bit, whatever the number. Per-example training
        (batch_size=1) is sequential and uses one. Choose 1 when several networks train at
        once in parallel threads (``grokreg.Ensemble`` does). A run-time setting: it can be
        changed at any time and is not saved with the network.

    Attributes
    ----------
    weights_0_1 : ndarray of shape (n_inputs, hidden)
    weights_1_2 : ndarray of shape (hidden, n_outputs)
    bias_1, bias_2 : ndarrays of shape (hidden,) and (n_outputs,), zero without biases
    history_ : History or None
        The record of the latest ``fit``, kept up to date while it runs.
    velocities_ : tuple of 4 ndarrays, or None
        With momentum, each parameter's velocity (the shapes of weights_0_1, bias_1,
        weights_1_2, bias_2), kept between fits so that a fit with momentum goes on where
        the last one stopped; None until a fit uses momentum.
    samples_seen_ : int
        Examples trained on, over every fit (``InverseScaling`` counts with it).
    rate_ : float or None
        The learning rate of the last epoch trained.

    Notes
    -----
    Both weight layers start uniform in [-0.1, 0.1) as in the book; biases start at zero. The
    update is ``w += alpha * activation * (target - prediction)``, the book's rule;
    mini-batches average the gradient over the batch. A network trains in one thread at a time
    (a second concurrent ``fit`` raises RuntimeError); the kernels release the GIL, so separate
    networks train in parallel Python threads (give each ``n_threads=1``, then).
    """

    def __init__(self, hidden=40, *, dropout=0.0, input_dropout=0.0, seed=None, book=False,
                 dtype="float64", loss="mse", bias=False, n_inputs=784, n_outputs=10,
                 n_threads=None):
        self.hidden = check_int(hidden, "hidden", minimum=1)
        self.n_threads = n_threads
        self.n_inputs = check_int(n_inputs, "n_inputs", minimum=1, maximum=2**31 - 1)
        self.n_outputs = check_int(n_outputs, "n_outputs", minimum=1)
        self.dropout = check_real(dropout, "dropout", low=0.0, high=1.0, high_open=True)
        self.input_dropout = check_real(input_dropout, "input_dropout", low=0.0, high=1.0,
                                        high_open=True)
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
                raise argument_error("dtype", "must be float64 in book mode: the book computes "
                                     "in float64")
            if self.dropout not in (0.0, 0.5):
                raise argument_error("dropout", f"must be 0.5 (or 0 for none) in book mode, "
                                     f"the book's, got {self.dropout}")
            if self.loss != "mse" or self.bias:
                raise argument_error("loss" if self.loss != "mse" else "bias",
                                     "must be 'mse' with no biases in book mode: the book's "
                                     "network has loss='mse' and no biases")
            if self.input_dropout:
                raise argument_error("input_dropout", "must be 0 in book mode: the book drops "
                                     "hidden units only")
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
        width = padded_width(self.hidden, self.dtype)
        # on a cache line, as the kernels read them fastest (see _kernels.aligned_empty)
        self._weights_0_1 = _kernels.aligned_zeros((self.n_inputs, width), self.dtype)
        self._weights_0_1[:, :self.hidden] = weights[0]
        self._weights_1_2 = _kernels.aligned_copy(weights[1], self.dtype)
        self._bias_1 = _kernels.aligned_zeros(width, self.dtype)
        self._bias_2 = _kernels.aligned_zeros(self.n_outputs, self.dtype)
        self.history_ = None
        self._velocities = None
        self.samples_seen_ = 0
        self.rate_ = None
        self._training = threading.Lock()

    def __repr__(self):
        return (
            f"Network(hidden={self.hidden}, dropout={self.dropout}, "
            f"input_dropout={self.input_dropout}, book={self.book}, "
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
        """The four arrays the kernels read and write (weights_0_1 and bias_1 padded)."""
        return self._weights_0_1, self._bias_1, self._weights_1_2, self._bias_2

    @property
    def _views(self):
        """The parameters as the user sees them, by name: views without the padding."""
        return dict(weights_0_1=self._weights_0_1[:, :self.hidden],
                    bias_1=self._bias_1[:self.hidden], weights_1_2=self._weights_1_2,
                    bias_2=self._bias_2)

    @property
    def velocities_(self):
        """With momentum, each parameter's velocity as read-only views (see the class
        docstring); None until a fit uses momentum."""
        if self._velocities is None:
            return None
        views = (self._velocities[0][:, :self.hidden], self._velocities[1][:self.hidden],
                 *self._velocities[2:])
        return tuple(_read_only(v) for v in views)

    def _velocities_for(self, momentum):
        """The kernels' velocities for a fit with this momentum (made, zero, when first
        needed), or None without momentum."""
        if not momentum:
            return None
        if self._velocities is None:
            self._velocities = tuple(_kernels.aligned_zeros(p.shape, self.dtype)
                                     for p in self._parameters)
        return self._velocities

    weights_0_1 = _array_property("weights_0_1", "Input-to-hidden weights, (n_inputs, hidden).")
    weights_1_2 = _array_property("weights_1_2", "Hidden-to-output weights, (hidden, n_outputs).")
    bias_1 = _array_property("bias_1", "Hidden-layer biases, (hidden,); zeros without biases.")
    bias_2 = _array_property("bias_2", "Output-layer biases, (n_outputs,); zeros without biases.")

    # -- training ---------------------------------------------------------------------------

    def fit(self, x, y, *, epochs=1, alpha=0.005, batch_size=1, test_data=None,
            validation_data=None, validation_split=0.0, eval_every=1, shuffle=False,
            early_stopping=None, on_divergence="stop", progress=False, on_epoch_end=None,
            weight_decay=0.0, momentum=0.0, nesterov=False, max_norm=None,
            sample_weight=None, callbacks=None, augment=None):
        """Train on (x, y), continuing from the current weights (and velocities).

        Parameters
        ----------
        x : array of shape (N, n_inputs) or (N, 28, 28)
            uint8 pixels (scaled by 1/255) or floating-point inputs (used as given).
        y : array of shape (N,) or (N, n_outputs)
            Integer labels or one-hot rows.
        epochs : int
            Passes over the data (0 trains nothing).
        alpha : float or schedule
            Learning rate, > 0. Per example in per-example training; on the batch-mean gradient
            in default-mode mini-batches (the book's batch experiment: 0.001 in book mode is
            about 0.1 here); in book mode the book's batch loop applies it batch_size times.
            Or a schedule (default mode): ``grokreg.schedules.Constant``,
            ``InverseScaling``, ``StepDecay`` or ``ReduceOnPlateau``; the history records each
            epoch's rate (``history["alpha"]``).
        batch_size : int
            1 for per-example gradient descent (the book's first experiments), or mini-batches.
        test_data : (x_test, y_test), optional
            Evaluated (without dropout) at epochs where ``epoch % eval_every == 0`` and at the
            last epoch. It never influences training, nor early stopping.
        validation_data : (x_val, y_val) or (x_val, y_val, sample_weight), optional
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
        progress : bool or str
            Show progress on stderr (tqdm if installed, else the book's ``\\r`` line); a
            string names the run on the bar. Print lines meanwhile with
            ``grokreg.progress.write`` so that the bar does not garble them.
        on_epoch_end : callable, optional
            Called as ``on_epoch_end(record)`` after each epoch with that epoch's metrics;
            returning a sentence (or True) stops training after that epoch.
        weight_decay : float
            L2 penalty on both weight matrices (not the biases), >= 0 (default mode): every
            step is ``W -= alpha * (g + weight_decay * W)``, g the step's gradient (the batch
            mean), whatever the batch size, so that weight_decay means the same at any batch
            size. (scikit-learn's MLPClassifier divides its ``alpha`` by the batch size:
            ``MLPClassifier(alpha=a, batch_size=b)`` decays as ``weight_decay=a / b``.)
        momentum : float
            In [0, 1) (default mode), as scikit-learn's SGDOptimizer: ``v = momentum * v -
            alpha * (g + weight_decay * W); W += v``, a velocity for every parameter, biases
            included, kept on the network (``velocities_``) between fits. Per-example steps
            with momentum move every weight (the velocities decay everywhere).
        nesterov : bool
            Nesterov's momentum: ``W += momentum * v - alpha * (g + weight_decay * W)`` with
            the new v.
        max_norm : float, optional
            After every step, each unit's incoming weights (a column of weights_0_1 for a
            hidden unit, of weights_1_2 for an output; not the biases) whose L2 norm exceeds
            max_norm are scaled to norm max_norm (Srivastava et al. 2014), > 0 (default mode).
        sample_weight : array of shape (N,), optional
            How much each example counts (default mode): a batch's gradient is the weighted
            mean sum(w_i g_i) / sum(w_i), as scikit-learn's MLP takes it, so integer weights
            train as those examples repeated within one batch (a per-example step's mean is
            its example's gradient, at any weight but 0); the losses and accuracies recorded
            are weighted likewise. Non-negative, finite, not all zero.
        callbacks : list of grokreg.Callback, optional
            Told when the fit begins, after each epoch (where they may stop it) and when it
            ends; see ``grokreg.callbacks``.
        augment : grokreg.Affine, grokreg.Elastic or their sum, optional
            Distort every training image anew each epoch (default mode): x's images,
            (N, height, width) or square rows, drawn from the network's random stream, each
            image from its own place in it (the same network at any thread count). The
            validation and test data are never distorted. See ``grokreg.distortions``.

        Returns
        -------
        History
            Also kept as ``self.history_``.
        """
        plan = training.plan(
            self, x, y, epochs=epochs, alpha=alpha, batch_size=batch_size, test_data=test_data,
            validation_data=validation_data, validation_split=validation_split,
            eval_every=eval_every, shuffle=shuffle, early_stopping=early_stopping,
            on_divergence=on_divergence, progress=progress, on_epoch_end=on_epoch_end,
            weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
            max_norm=max_norm, sample_weight=sample_weight, callbacks=callbacks,
            augment=augment)
        if not self._training.acquire(blocking=False):
            raise RuntimeError("this Network is already training in another thread")
        try:
            return training.run(self, plan)
        finally:
            self._training.release()

    # -- inference --------------------------------------------------------------------------

    # what the training loop (grokreg.training) reads of the network
    _kernels = _kernels

    @property
    def _loss_code(self):
        return LOSSES[self.loss]

    def _dataset(self, x, y=None, literal=False, name="x", sample_weight=None, training=False,
                 layout="auto"):
        return dataset(x, y, self.dtype, literal, self._n_threads, name, sample_weight,
                       training, layout)

    def _evaluate(self, data, literal=False):
        """(error, accuracy) on a labelled Dataset, each example weighted by its weight."""
        error, correct = _kernels.evaluate(data, *self._parameters, LOSSES[self.loss],
                                           literal=literal, n_threads=self._n_threads)
        return error / data.weight_total, correct / data.weight_total

    def evaluate(self, x, y, sample_weight=None):
        """(error, accuracy) on (x, y) without dropout.

        error is the loss averaged over examples: for "mse" the squared error summed over
        outputs (the book's Test-Err); accuracy the fraction whose largest output is the label.
        With sample_weight, both are weighted means.
        """
        x = as_inputs(x, self.n_inputs, self.dtype)
        y = as_labels(y, len(x), self.n_outputs)
        weights = as_sample_weight(sample_weight, len(x))
        return self._evaluate(self._dataset(x, y, sample_weight=weights))

    def score(self, x, y, sample_weight=None):
        """Accuracy on (x, y) (weighted, with sample_weight)."""
        return self.evaluate(x, y, sample_weight)[1]

    def predict(self, x):
        """Predicted class of each example: an int64 array of shape (N,)."""
        x = as_inputs(x, self.n_inputs, self.dtype)
        predictions = np.empty(len(x), dtype=np.int64)
        _kernels.evaluate(self._dataset(x), *self._parameters, LOSSES[self.loss], predictions,
                          n_threads=self._n_threads)
        return predictions

    def decision_function(self, x):
        """The output layer for each example (no dropout; logits for cross-entropy)."""
        x = as_inputs(x, self.n_inputs, self.dtype)
        outputs = np.empty((len(x), self.n_outputs), dtype=self.dtype)
        _kernels.evaluate(self._dataset(x), *self._parameters, LOSSES[self.loss], None, outputs,
                          n_threads=self._n_threads)
        return outputs

    # -- persistence ------------------------------------------------------------------------

    def __getstate__(self):
        # the lock guards a fit in progress in this process: a copy starts unlocked
        state = self.__dict__.copy()
        del state["_training"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        # unpickled arrays start wherever numpy allocated them: on a cache line again
        self._weights_0_1, self._bias_1, self._weights_1_2, self._bias_2 = self._laid_out(
            self._parameters)
        if self._velocities is not None:
            self._velocities = self._laid_out(self._velocities)
        self._training = threading.Lock()

    def _laid_out(self, arrays):
        """Four arrays shaped as the parameters (weights_0_1 and bias_1 with at least hidden
        columns), as the kernels read them: aligned, the first two padded with zeros."""
        width = padded_width(self.hidden, self.dtype)
        first = _kernels.aligned_zeros((self.n_inputs, width), self.dtype)
        first[:, :self.hidden] = arrays[0][:, :self.hidden]
        second = _kernels.aligned_zeros(width, self.dtype)
        second[:self.hidden] = arrays[1][:self.hidden]
        return (first, second, _kernels.aligned_copy(arrays[2], self.dtype),
                _kernels.aligned_copy(arrays[3], self.dtype))

    def save(self, path):
        """Write the network to an ``.npz`` file (layout: ``grokreg._serialization``).

        Written to a temporary file beside ``path`` and renamed into place, so a crash never
        leaves a half-written model. Returns the path.
        """
        return _serialization.save(self, path)

    @classmethod
    def load(cls, path, *, n_threads=None):
        """Read a network written by ``save``; refuses anything else with ValueError."""
        net = _serialization.load(cls, path)
        net.n_threads = n_threads
        return net
