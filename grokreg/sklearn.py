"""grokreg as a scikit-learn classifier (``pip install "grokreg[sklearn]"``).

>>> from grokreg.sklearn import NetworkClassifier
>>> from sklearn.model_selection import cross_val_score
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> cross_val_score(make_pipeline(StandardScaler(), NetworkClassifier()), x, y)  # doctest: +SKIP

``import grokreg`` never imports scikit-learn; this module does. The estimator trains a
``grokreg.Network`` through ``Network.fit`` (so through grokreg's one training loop) and
follows scikit-learn's rules: ``__init__`` stores its arguments, ``fit`` validates them and
returns self, fitted state ends in ``_``. Its hyper-parameters take ``MLPClassifier``'s
names and meanings where it has them (``alpha``, ``momentum``, ``nesterovs_momentum``,
``learning_rate``, ``power_t``, ``batch_size``, ``tol``, ``n_iter_no_change``...).
"""
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._validation import check_int, check_real
from .network import Network
from .regularization import EarlyStopping
from .schedules import InverseScaling, ReduceOnPlateau
from .training import CollapseWarning

__all__ = ["NetworkClassifier", "DEFAULTS", "BOOK"]

#: what the hyper-parameters left at None (and batch_size="auto") stand for: chosen on
#: scikit-learn's bundled data sets (bench/tabular.py) to do about as well as MLPClassifier()
DEFAULTS = dict(hidden=100, epochs=100, learning_rate_init=0.05, alpha=1e-4, momentum=0.9,
                nesterovs_momentum=True, loss="softmax_cross_entropy", bias=True, shuffle=True)
#: ... and with book=True: the book's network and per-example steps (chapter 8)
BOOK = dict(hidden=40, epochs=10, learning_rate_init=0.005, alpha=0.0, momentum=0.0,
            nesterovs_momentum=False, loss="mse", bias=False, shuffle=False)
LEARNING_RATES = ("constant", "invscaling", "adaptive")


class NetworkClassifier(ClassifierMixin, BaseEstimator):
    """grokreg's network, inputs -> hidden (ReLU) -> one output per class, as a classifier.

    Left at their defaults (None, "auto"), the hyper-parameters give a network for a user's
    own data, chosen to do about as well as ``MLPClassifier()`` (``DEFAULTS``: 100 hidden
    units, softmax cross-entropy with biases, mini-batches of min(200, n_samples) at 0.05 with
    Nesterov momentum 0.9, shuffled, up to 100 epochs, stopping once the training loss has not
    improved by ``tol`` for more than ``n_iter_no_change`` epochs). ``book=True`` gives the
    book's network instead (``BOOK``: 40 hidden units, squared error, no biases, 10 epochs of
    per-example steps at 0.005, in data order). Scale the features first
    (``StandardScaler``): raw features in the thousands warn, as a network that collapses
    does (``ConvergenceWarning``).

    Parameters
    ----------
    hidden : int, default None (100; book 40)
        Hidden units.
    dropout : float
        Probability of dropping a hidden unit in training (book mode: 0 or 0.5).
    input_dropout : float
        Probability of dropping an input in training.
    epochs : int, default None (100; book 10)
        Most epochs per ``fit`` (``partial_fit``: one per call), as MLPClassifier's
        ``max_iter``.
    learning_rate_init : float, default None (0.05; book 0.005)
        The initial step size, the book's ``alpha``.
    learning_rate : {"constant", "invscaling", "adaptive"}
        The schedule, as MLPClassifier's: "invscaling" is ``learning_rate_init / (t + 1) **
        power_t`` (t the samples trained on), "adaptive" divides the rate by 5 each time the
        stopping rule would stop (``grokreg.ReduceOnPlateau``), stopping below 1e-6.
    power_t : float
        "invscaling"'s exponent.
    alpha : float, default None (1e-4; book 0)
        L2 penalty, as MLPClassifier's (divided by a batch's total sample weight, its size
        when unweighted): trains exactly as ``Network.fit(weight_decay=alpha /
        batch_size)`` (with sample weights, ``alpha / (batch_size * their mean)``).
    momentum : float, default None (0.9; book 0)
    nesterovs_momentum : bool, default None (True; book False)
    max_norm : float, optional
        Each unit's incoming weights rescaled to this norm at most after every step.
    batch_size : int or "auto"
        "auto": min(200, n_samples) (book: 1, per-example steps); a number larger than the
        samples is clipped, with a warning, as MLPClassifier does.
    loss : {"mse", "softmax_cross_entropy"}, default None (cross-entropy; book "mse")
    bias : bool, default None (True; book False)
        Trained biases in both layers.
    dtype : {"float64", "float32"}
    book : bool
        The book's arithmetic and random stream (see ``grokreg.Network``), and its
        hyper-parameters where left at None.
    shuffle : bool, default None (True; book False)
        A new order every epoch (default mode only).
    class_weight : None, "balanced" or dict
        Each class's weight in the loss (each sample's weight is its class's, times its
        ``sample_weight``); "balanced": n_samples / (n_classes * the class's count).
    random_state : int, RandomState instance or None
        Seeds the weights, the dropout masks, the shuffling and the validation split.
    n_threads : int or None
        OpenMP threads for mini-batches and prediction (None: every CPU this process may use,
        as ``grokreg.Network``); changes only speed. ``GridSearchCV(n_jobs=...)`` runs several
        fits at once: give 1 then.
    warm_start : bool
        ``fit`` continues from the fitted network instead of starting anew.
    early_stopping : bool
        Hold out ``validation_fraction`` of the training data (stratified, as MLPClassifier
        does, where every class has samples enough) and stop when its accuracy has not
        improved by ``tol`` for more than ``n_iter_no_change`` epochs; the best epoch's
        weights are restored. Without it (and out of book mode), training stops on the
        training loss by the same rule.
    validation_fraction, n_iter_no_change, tol
        See ``early_stopping``.
    verbose : bool
        Show progress on stderr.

    Attributes
    ----------
    classes_ : ndarray
        The labels, in the order of the network's outputs.
    network_ : grokreg.Network
    history_ : grokreg.History of the last ``fit`` or ``partial_fit``
    loss_curve_ : list of float
        The training loss (squared error or cross-entropy per sample) of every epoch trained.
    validation_scores_ : list of float or None
        Validation accuracy per epoch, with early stopping.
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs trained.
    t_ : int
        Samples trained on (``invscaling``'s t).
    n_features_in_ : int
    feature_names_in_ : ndarray of str, when X had string column names
    """

    def __init__(self, hidden=None, *, dropout=0.0, input_dropout=0.0, epochs=None,
                 learning_rate_init=None, learning_rate="constant", power_t=0.5, alpha=None,
                 momentum=None, nesterovs_momentum=None, max_norm=None, batch_size="auto",
                 loss=None, bias=None, dtype="float64", book=False, shuffle=None,
                 class_weight=None, random_state=None, n_threads=None, warm_start=False,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10,
                 tol=1e-4, verbose=False):
        self.hidden = hidden
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.epochs = epochs
        self.learning_rate_init = learning_rate_init
        self.learning_rate = learning_rate
        self.power_t = power_t
        self.alpha = alpha
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.max_norm = max_norm
        self.batch_size = batch_size
        self.loss = loss
        self.bias = bias
        self.dtype = dtype
        self.book = book
        self.shuffle = shuffle
        self.class_weight = class_weight
        self.random_state = random_state
        self.n_threads = n_threads
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags

    # -- settings -----------------------------------------------------------------------------

    def _setting(self, name):
        """A hyper-parameter as given, or what None stands for (DEFAULTS, or BOOK)."""
        value = getattr(self, name)
        if value is None:
            return (BOOK if self.book else DEFAULTS)[name]
        return value

    def _batch_size(self, n_samples):
        if isinstance(self.batch_size, str):
            if self.batch_size != "auto":
                raise ValueError(f"batch_size must be a positive int or 'auto', got "
                                 f"{self.batch_size!r}")
            return 1 if self.book else min(200, n_samples)
        batch_size = check_int(self.batch_size, "batch_size", minimum=1)
        if batch_size > n_samples:
            warnings.warn(f"batch_size={batch_size} is more than the {n_samples} samples: "
                          f"clipped", UserWarning, stacklevel=4)  # fit's caller
        return min(batch_size, n_samples)

    # -- fitting ------------------------------------------------------------------------------

    def _inputs(self, X, reset, *y):
        """X (and y, if passed) checked by scikit-learn; uint8 images kept as pixels (grokreg
        scales them by 1/255), anything else converted to the network's float type."""
        keep = getattr(X, "dtype", None) == np.uint8
        dtype = None if keep else [np.dtype(self.dtype).type, np.float64, np.float32]
        return validate_data(self, X, *y, reset=reset, dtype=dtype)

    def _seed(self):
        """A seed for the network: the int given, else one drawn from random_state."""
        if isinstance(self.random_state, numbers.Integral) and not isinstance(
                self.random_state, bool) and 0 <= self.random_state < 2**32:
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(2**32 - 1))

    def _new_network(self, n_features):
        self.t_, self._schedule = 0, None
        return Network(self._setting("hidden"), dropout=self.dropout,
                       input_dropout=self.input_dropout, seed=self._seed(), book=self.book,
                       dtype=self.dtype, loss=self._setting("loss"), bias=self._setting("bias"),
                       n_inputs=n_features, n_outputs=len(self.classes_),
                       n_threads=self.n_threads)

    def _weights(self, labels, sample_weight, X):
        """Each sample's weight: its class's (class_weight) times its own, or None.

        "balanced" weighs a class by the total weight over n_classes times the class's weight,
        its samples' weights counted (as many repeated samples would be), so that integer
        weights still train as repetitions."""
        if sample_weight is None and self.class_weight is None:
            return None
        weights = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if self.class_weight is None:
            return weights
        if isinstance(self.class_weight, str):
            if self.class_weight != "balanced":
                raise ValueError(f"class_weight must be None, 'balanced' or a dict of classes "
                                 f"to weights, got {self.class_weight!r}")
            per_class = np.bincount(labels, weights=weights, minlength=len(self.classes_))
            present = per_class > 0
            factors = np.zeros(len(self.classes_))
            factors[present] = weights.sum() / (present.sum() * per_class[present])
        elif isinstance(self.class_weight, dict):  # keyed by the labels as given
            factors = np.array([float(self.class_weight.get(c, 1.0)) for c in self.classes_])
            if not (np.isfinite(factors).all() and (factors >= 0).all()):
                raise ValueError("class_weight's weights must be finite and non-negative")
        else:
            raise ValueError("class_weight must be None, 'balanced' or a dict of classes to "
                             "weights")
        return weights * factors[labels]

    def _check_weighted_classes(self, labels, weights, where=""):
        """Refuse weights that leave fewer than two classes to learn from."""
        if weights is None:
            return
        counted = np.unique(labels[weights > 0])
        if len(counted) < 2:
            raise ValueError(
                f"sample_weight (times class_weight) leaves {len(counted)} class with a "
                f"positive weight{where}: NetworkClassifier needs at least 2 classes")

    def _schedule_for(self, learning_rate, monitor):
        """The learning rate of Network.fit: a number, or a schedule."""
        if self.learning_rate not in LEARNING_RATES:
            raise ValueError(f"learning_rate must be one of {LEARNING_RATES}, got "
                             f"{self.learning_rate!r}")
        if self.learning_rate == "invscaling":
            return InverseScaling(learning_rate, check_real(self.power_t, "power_t", low=0.0))
        if self.learning_rate == "adaptive":
            # kept from call to call (partial_fit, warm_start): the rate it has reached
            if self._schedule is None or self._schedule.monitor != monitor:
                self._schedule = ReduceOnPlateau(
                    learning_rate, monitor, factor=5.0, patience=self.n_iter_no_change,
                    min_delta=self.tol, min_rate=1e-6)
            return self._schedule
        return learning_rate

    def _train(self, X, labels, sample_weight, epochs):
        """Train network_ for epochs on (X, labels) and record what scikit-learn reads."""
        learning_rate = check_real(self._setting("learning_rate_init"), "learning_rate_init",
                                   low=0.0, low_open=True)
        n_iter_no_change = check_int(self.n_iter_no_change, "n_iter_no_change", minimum=1)
        tol = check_real(self.tol, "tol", low=0.0)
        weights = self._weights(labels, sample_weight, X)
        self._check_weighted_classes(labels, weights)
        options = {}
        if self.early_stopping:
            split = dict(test_size=self.validation_fraction, random_state=self._seed())
            arrays = [X, labels] + ([weights] if weights is not None else [])
            try:
                parts = train_test_split(*arrays, stratify=labels, **split)
            except ValueError:  # too few samples of a class to stratify: a plain split
                parts = train_test_split(*arrays, **split)
            X, labels, weights = parts[0], parts[2], parts[4] if weights is not None else None
            if weights is not None and not (parts[5] > 0).any():
                raise ValueError(
                    f"early_stopping: every sample held out for validation "
                    f"(validation_fraction={self.validation_fraction}) has zero weight "
                    f"(sample_weight times class_weight): give more samples a positive "
                    f"weight, or a larger validation_fraction")
            self._check_weighted_classes(labels, weights, " after the validation split")
            options["validation_data"] = ((parts[1], parts[3], parts[5])
                                          if weights is not None else (parts[1], parts[3]))
        batch_size = self._batch_size(len(X))
        monitor = "val_accuracy" if self.early_stopping else "error"
        schedule = self._schedule_for(learning_rate, monitor)
        if self.book and not self.early_stopping:
            pass  # the book's programs train every epoch
        elif self.learning_rate == "adaptive":  # it divides the rate where the rule stops
            if self.early_stopping:  # ... and the best epoch is still restored
                options["early_stopping"] = EarlyStopping(monitor, patience=epochs + 1)
        else:
            # MLPClassifier stops after n_iter_no_change + 1 epochs without improvement
            options["early_stopping"] = EarlyStopping(
                monitor, patience=n_iter_no_change + 1, min_delta=tol,
                restore_best_weights=self.early_stopping)
        if not self.book:
            # MLPClassifier divides alpha by a batch's total weight: its length, unweighted
            alpha = check_real(self._setting("alpha"), "alpha", low=0.0)
            batch_weight = batch_size * (1.0 if weights is None else float(np.mean(weights)))
            options.update(weight_decay=alpha / batch_weight if batch_weight > 0 else 0.0,
                           momentum=self._setting("momentum"),
                           nesterov=bool(self._setting("nesterovs_momentum")),
                           max_norm=self.max_norm)
        if weights is not None:
            options["sample_weight"] = weights
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CollapseWarning)  # reported below, in sklearn's terms
            history = self.network_.fit(
                X, labels, epochs=epochs, alpha=schedule, batch_size=batch_size,
                shuffle=bool(self._setting("shuffle")), progress=bool(self.verbose),
                **options)
        if history.collapse is not None:
            # attributed to the caller of fit or partial_fit
            # the estimator's name for the learning rate: its alpha is the L2 penalty
            advice = history.collapse.replace("learning rate (alpha=",
                                              "learning rate (learning_rate_init=")
            warnings.warn(f"NetworkClassifier: {advice}", ConvergenceWarning, stacklevel=3)
        self.history_ = history
        self.loss_curve_ = getattr(self, "loss_curve_", []) + history.history["error"]
        self.n_iter_ = getattr(self, "n_iter_", 0) + len(history)
        self.t_ = self.network_.samples_seen_
        if self.early_stopping:
            self.validation_scores_ = history.history["val_accuracy"]
            self.best_validation_score_ = (None if history.best_epoch is None else
                                           max(self.validation_scores_))
        else:
            self.validation_scores_ = self.best_validation_score_ = None
        return self

    def _labels(self, y):
        check_classification_targets(y)
        if not np.isin(y, self.classes_).all():
            unseen = np.setdiff1d(np.unique(y), self.classes_)
            raise ValueError(f"y holds labels {unseen.tolist()} not among classes_ "
                             f"{self.classes_.tolist()}")
        return np.searchsorted(self.classes_, y)

    def fit(self, X, y, sample_weight=None):
        """Train on (X, y), each sample weighted by sample_weight (and class_weight); returns
        self. Labels may be of any sortable type."""
        X, y = self._inputs(X, not (self.warm_start and hasattr(self, "network_")), y)
        check_classification_targets(y)
        classes = np.unique(y)
        if self.warm_start and hasattr(self, "network_"):
            if not np.isin(classes, self.classes_).all():
                raise ValueError(f"warm_start: y holds labels outside classes_ "
                                 f"{self.classes_.tolist()}")
        else:
            if len(classes) < 2:
                raise ValueError(f"NetworkClassifier needs at least 2 classes in y; got "
                                 f"{len(classes)} class")
            self.classes_ = classes
            self.network_ = self._new_network(X.shape[1])
            self.loss_curve_, self.n_iter_ = [], 0
        epochs = check_int(self._setting("epochs"), "epochs", minimum=0)
        return self._train(X, self._labels(y), sample_weight, epochs)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch on (X, y), continuing from the last call. The first call needs classes
        (every label the data will hold)."""
        first = not hasattr(self, "network_")
        X, y = self._inputs(X, first, y)
        if first:
            if classes is None:
                raise ValueError("classes must be given on the first call to partial_fit "
                                 "(every label the data will hold)")
            self.classes_ = np.unique(classes)
            if len(self.classes_) < 2:
                raise ValueError("NetworkClassifier needs at least 2 classes")
            self.network_ = self._new_network(X.shape[1])
            self.loss_curve_, self.n_iter_ = [], 0
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes {np.unique(classes).tolist()} differ from the first "
                             f"call's {self.classes_.tolist()}")
        return self._train(X, self._labels(y), sample_weight, 1)

    # -- prediction ---------------------------------------------------------------------------

    def _outputs(self, X):
        check_is_fitted(self)
        return self.network_.decision_function(self._inputs(X, False))

    def decision_function(self, X):
        """The output layer, (n_samples, n_classes); for two classes output 1 - output 0
        (n_samples,), as scikit-learn's binary classifiers give."""
        outputs = self._outputs(X)
        return outputs[:, 1] - outputs[:, 0] if len(self.classes_) == 2 else outputs

    def predict(self, X):
        """The label of the largest output."""
        outputs = self._outputs(X)
        return self.classes_[outputs.argmax(axis=1)]

    def predict_proba(self, X):
        """The softmax of the output layer, (n_samples, n_classes), columns as ``classes_``.

        With ``loss="softmax_cross_entropy"`` these are the probabilities the network was
        trained to give. With the book's squared error (``loss="mse"``) the outputs were
        trained towards one-hot targets, not probabilities: their softmax ranks the classes
        as the outputs do (its argmax is ``predict``) and sums to 1, but is not calibrated.
        """
        outputs = self._outputs(X).astype(np.float64)
        shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
