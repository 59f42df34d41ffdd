"""grokreg as a scikit-learn classifier (``pip install "grokreg[sklearn]"``).

>>> from grokreg.sklearn import NetworkClassifier
>>> from sklearn.model_selection import cross_val_score
>>> cross_val_score(NetworkClassifier(hidden=40, epochs=20), x, y)  # doctest: +SKIP

``import grokreg`` never imports scikit-learn; this module does. The estimator trains a
``grokreg.Network`` through ``Network.fit`` (so through grokreg's one training loop) and
follows scikit-learn's rules: ``__init__`` stores its arguments, ``fit`` validates them and
returns self, fitted state ends in ``_``.
"""
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._validation import check_real
from .network import Network
from .regularization import EarlyStopping

__all__ = ["NetworkClassifier"]


class NetworkClassifier(ClassifierMixin, BaseEstimator):
    """The book's network, inputs -> hidden (ReLU) -> one output per class, as a classifier.

    Parameters
    ----------
    hidden : int
        Hidden units.
    dropout : float
        Probability of dropping a hidden unit in training (book mode: 0 or 0.5).
    epochs : int
        Passes over the training data per ``fit`` (``partial_fit``: one per call).
    learning_rate_init : float
        The step size, the book's ``alpha`` (constant: there is no schedule). Named as in
        ``MLPClassifier``: scikit-learn's ``alpha`` is an L2 penalty, which grokreg has not.
    batch_size : int
        1 for per-example gradient descent (the book's first experiments), else mini-batches
        (clipped to the number of samples, with a warning, as ``MLPClassifier`` does).
    loss : {"mse", "softmax_cross_entropy"}
        The book's squared error against one-hot targets, or softmax cross-entropy.
    bias : bool
        Trained biases in both layers (the book has none).
    dtype : {"float64", "float32"}
        Precision of the weights and the arithmetic.
    book : bool
        The book's arithmetic and random stream (see ``grokreg.Network``).
    shuffle : bool
        A new order every epoch (default mode only).
    random_state : int, RandomState instance or None
        Seeds the weights, the dropout masks, the shuffling and the validation split.
    n_threads : int or None
        OpenMP threads for mini-batches and prediction (None: every CPU this process may use,
        as ``grokreg.Network``); changes only speed. ``GridSearchCV(n_jobs=...)`` runs several
        fits at once: give 1 then.
    warm_start : bool
        ``fit`` continues from the fitted network instead of starting anew.
    early_stopping : bool
        Hold out ``validation_fraction`` of the training data (stratified, as
        ``MLPClassifier`` does, where every class has samples enough) and stop when its
        accuracy has not improved by ``tol`` for
        ``n_iter_no_change`` epochs; the best epoch's weights are restored.
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
    n_features_in_ : int
    feature_names_in_ : ndarray of str, when X had string column names
    """

    def __init__(self, hidden=40, *, dropout=0.0, epochs=10, learning_rate_init=0.005,
                 batch_size=1, loss="mse", bias=False, dtype="float64", book=False,
                 shuffle=False, random_state=None, n_threads=None, warm_start=False,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10,
                 tol=1e-4, verbose=False):
        self.hidden = hidden
        self.dropout = dropout
        self.epochs = epochs
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.loss = loss
        self.bias = bias
        self.dtype = dtype
        self.book = book
        self.shuffle = shuffle
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

    # -- fitting ----------------------------------------------------------------------------

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
        return Network(self.hidden, dropout=self.dropout, seed=self._seed(), book=self.book,
                       dtype=self.dtype, loss=self.loss, bias=self.bias, n_inputs=n_features,
                       n_outputs=len(self.classes_), n_threads=self.n_threads)

    def _train(self, X, labels, epochs):
        """Train network_ for epochs on (X, labels) and record what scikit-learn reads."""
        # the one hyper-parameter whose name differs from Network.fit's (alpha)
        learning_rate = check_real(self.learning_rate_init, "learning_rate_init", low=0.0,
                                   low_open=True)
        batch_size = self.batch_size
        if isinstance(batch_size, numbers.Integral) and not 1 <= batch_size <= len(X):
            warnings.warn(f"batch_size={batch_size} is outside 1..{len(X)} (the samples): "
                          f"clipped", UserWarning)
            batch_size = min(max(batch_size, 1), len(X))
        options = {}
        if self.early_stopping:
            split = dict(test_size=self.validation_fraction, random_state=self._seed())
            try:
                x_train, x_val, y_train, y_val = train_test_split(X, labels, stratify=labels,
                                                                  **split)
            except ValueError:  # too few samples of a class to stratify: a plain split
                x_train, x_val, y_train, y_val = train_test_split(X, labels, **split)
            X, labels = x_train, y_train
            batch_size = min(batch_size, len(X))
            options = dict(validation_data=(x_val, y_val), early_stopping=EarlyStopping(
                "val_accuracy", patience=self.n_iter_no_change, min_delta=self.tol))
        history = self.network_.fit(
            X, labels, epochs=epochs, alpha=learning_rate, batch_size=batch_size,
            shuffle=self.shuffle, progress=bool(self.verbose), **options)
        self.history_ = history
        self.loss_curve_ = getattr(self, "loss_curve_", []) + history.history["error"]
        self.n_iter_ = getattr(self, "n_iter_", 0) + len(history)
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

    def fit(self, X, y):
        """Train on (X, y); returns self. Labels may be of any sortable type."""
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
        return self._train(X, self._labels(y), self.epochs)

    def partial_fit(self, X, y, classes=None):
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
        return self._train(X, self._labels(y), 1)

    # -- prediction -------------------------------------------------------------------------

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
        """The softmax of the output layer, (n_samples, n_classes), columns as classes_.

        With ``loss="softmax_cross_entropy"`` these are the probabilities the network was
        trained to give. With the book's squared error (``loss="mse"``) the outputs were
        trained towards one-hot targets, not probabilities: their softmax ranks the classes
        as the outputs do (its argmax is ``predict``) and sums to 1, but is not calibrated.
        """
        outputs = self._outputs(X).astype(np.float64)
        shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
