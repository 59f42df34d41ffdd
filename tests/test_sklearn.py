"""grokreg.sklearn.NetworkClassifier: scikit-learn's own checks, and the tools people use it with."""
import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone, is_classifier  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_iris, load_wine  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import (  # noqa: E402
    GridSearchCV, StratifiedKFold, cross_val_score, train_test_split)
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import grokreg  # noqa: E402
from grokreg.sklearn import NetworkClassifier  # noqa: E402


# scikit-learn's checks feed data of every scale and size on purpose; grokreg's warnings
# about them (inputs far from the weights' scale, a collapsed network, a batch larger than the
# data) are right, and tested elsewhere
@pytest.mark.filterwarnings("ignore::RuntimeWarning",
                            "ignore::sklearn.exceptions.ConvergenceWarning",
                            "ignore:batch_size=16 is more than:UserWarning")
@parametrize_with_checks([
    NetworkClassifier(),
    NetworkClassifier(hidden=16, batch_size=16, bias=False, shuffle=False,
                      early_stopping=True, dtype="float32", learning_rate_init=0.1,
                      learning_rate="invscaling", power_t=0.25, alpha=1e-3, momentum=0.5,
                      nesterovs_momentum=False, max_norm=3.0, class_weight="balanced"),
    NetworkClassifier(dropout=0.2, input_dropout=0.1, learning_rate="adaptive"),
], expected_failed_checks=lambda estimator: (
    # A sample given weight 2 trains as the same sample twice only when each step sees the
    # whole data set (batch_size="auto" on the checks' small data) with nothing random in
    # the step. Mini-batches of 16, a validation split and dropout masks all depend on the
    # samples' number and positions; scikit-learn expects this failure of SGDClassifier for
    # the same reason.
    {"check_sample_weight_equivalence_on_dense_data":
     "mini-batches, the validation split and dropout masks follow the samples' positions"}
    if estimator.batch_size != "auto" or estimator.early_stopping or estimator.dropout
    or estimator.input_dropout else {}))
def test_scikit_learns_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    return x_train[:600].reshape(600, -1), y_train[:600], x_test[:500].reshape(500, -1), y_test[:500]


def by_hand(x, labels, seed, network=(), fit=(), stop=True):
    """The network NetworkClassifier should train, built and trained with Network's own
    arguments: DEFAULTS written out, then network and fit's entries."""
    settings = dict(hidden=100, loss="softmax_cross_entropy", bias=True, seed=seed)
    settings.update(network)
    net = grokreg.Network(n_inputs=x.shape[1], n_outputs=10, **settings)
    options = dict(epochs=100, alpha=0.05, batch_size=min(200, len(x)), shuffle=True,
                   weight_decay=1e-4 / min(200, len(x)), momentum=0.9, nesterov=True)
    if stop:  # MLPClassifier's rule: n_iter_no_change + 1 epochs without tol's improvement
        options["early_stopping"] = grokreg.EarlyStopping(
            "error", patience=11, min_delta=1e-4, restore_best_weights=False)
    options.update(fit)
    net.fit(x, labels, **options)
    return net


def balanced(labels):
    counts = np.bincount(labels, minlength=10)
    return len(labels) / (10 * counts[labels])


# Each row: the estimator's arguments, and the Network and fit arguments that mean the same.
# Rows share hidden=12, epochs=3 (fast) unless they say otherwise.
SHORT = dict(hidden=12, epochs=3)
ORACLE = {
    "defaults": ({}, {}, {}),
    "hidden": (dict(hidden=7), dict(hidden=7), {}),
    "epochs": (dict(epochs=2), {}, dict(epochs=2)),
    "learning_rate_init": (dict(learning_rate_init=0.2), {}, dict(alpha=0.2)),
    "invscaling": (dict(learning_rate="invscaling", power_t=0.3), {},
                   dict(alpha=grokreg.InverseScaling(0.05, power_t=0.3))),
    "alpha": (dict(alpha=0.03), {}, dict(weight_decay=0.03 / 200)),
    "momentum": (dict(momentum=0.5), {}, dict(momentum=0.5)),
    "nesterovs_momentum": (dict(nesterovs_momentum=False), {}, dict(nesterov=False)),
    "max_norm": (dict(max_norm=0.4), {}, dict(max_norm=0.4)),
    "batch_size": (dict(batch_size=32), {}, dict(batch_size=32, weight_decay=1e-4 / 32)),
    "loss": (dict(loss="mse"), dict(loss="mse"), {}),
    "bias": (dict(bias=False), dict(bias=False), {}),
    "dtype": (dict(dtype="float32"), dict(dtype="float32"), {}),
    "shuffle": (dict(shuffle=False), {}, dict(shuffle=False)),
    "dropout": (dict(dropout=0.3), dict(dropout=0.3), {}),
    "input_dropout": (dict(input_dropout=0.2), dict(input_dropout=0.2), {}),
    "n_threads": (dict(n_threads=2), {}, {}),  # speed only: the same bits
    "class_weight": (dict(class_weight={0: 3.0, 7: 0.5}), {}, "class_weight"),
    "balanced": (dict(class_weight="balanced"), {}, "balanced"),
}


@pytest.mark.parametrize("name", ORACLE)
def test_each_hyper_parameter_trains_as_networks_own_argument(digits, name):
    """The estimator against a Network built and trained by hand, bit for bit, one
    hyper-parameter at a time."""
    x, y, x_test, _ = digits
    given, network, fit = ORACLE[name]
    if fit == "class_weight":
        fit = dict(sample_weight=np.where(y == 0, 3.0, np.where(y == 7, 0.5, 1.0)))
    elif fit == "balanced":
        fit = dict(sample_weight=balanced(y))
    # MLPClassifier divides alpha by the batch's total weight (its size times the mean)
    if "sample_weight" in fit:
        fit["weight_decay"] = 1e-4 / (200 * fit["sample_weight"].mean())
    short = {**SHORT, **given} if name != "defaults" else {}
    data = x if name != "defaults" else x[:300]
    estimator = NetworkClassifier(random_state=4, **short).fit(data, y[:len(data)])
    net = by_hand(data, y[:len(data)], 4,
                  network={**({k: v for k, v in SHORT.items() if k == "hidden"}
                              if name != "defaults" else {}), **network},
                  fit={**({"epochs": 3} if name != "defaults" else {}), **fit})
    for trained, expected in zip(estimator.network_._parameters, net._parameters):
        assert trained.dtype == expected.dtype and np.array_equal(trained, expected)
    assert estimator.loss_curve_ == net.history_.history["error"]
    assert estimator.n_iter_ == len(net.history_) and estimator.t_ == net.samples_seen_
    assert np.array_equal(estimator.predict(x_test), net.predict(x_test))


def test_sample_weight_and_class_weight_multiply(digits):
    x, y, _, _ = digits
    weights = np.linspace(0.5, 2.0, len(y))
    estimator = NetworkClassifier(class_weight={3: 2.0}, random_state=1, **SHORT).fit(
        x, y, sample_weight=weights)
    both = weights * np.where(y == 3, 2.0, 1.0)
    net = by_hand(x, y, 1, network=dict(hidden=12),
                  fit=dict(epochs=3, sample_weight=both,
                           weight_decay=1e-4 / (200 * both.mean())))
    assert np.array_equal(estimator.network_.weights_0_1, net.weights_0_1)


def test_the_stopping_rule_is_mlpclassifiers(digits):
    """Without early_stopping, training stops once the training loss has not improved by tol
    for more than n_iter_no_change epochs; with it, on validation accuracy, restoring the
    best epoch, the validation split stratified as MLPClassifier's."""
    x, y, _, _ = digits
    on_loss = NetworkClassifier(hidden=12, epochs=60, tol=0.05, n_iter_no_change=2,
                                random_state=3).fit(x, y)
    net = by_hand(x, y, 3, network=dict(hidden=12), stop=False, fit=dict(
        epochs=60, early_stopping=grokreg.EarlyStopping(
            "error", patience=3, min_delta=0.05, restore_best_weights=False)))
    assert on_loss.n_iter_ == len(net.history_) < 60
    assert on_loss.history_.stop_reason == "early_stopping"
    assert np.array_equal(on_loss.network_.weights_0_1, net.weights_0_1)

    estimator = NetworkClassifier(hidden=16, epochs=200, early_stopping=True,
                                  n_iter_no_change=3, validation_fraction=0.2,
                                  random_state=0).fit(x, y)
    x_fit, x_val, y_fit, y_val = train_test_split(x, y, test_size=0.2, stratify=y,
                                                  random_state=0)
    net = by_hand(x_fit, y_fit, 0, network=dict(hidden=16), stop=False, fit=dict(
        epochs=200, validation_data=(x_val, y_val),
        weight_decay=1e-4 / min(200, len(x_fit)), batch_size=min(200, len(x_fit)),
        early_stopping=grokreg.EarlyStopping("val_accuracy", patience=4, min_delta=1e-4)))
    assert estimator.n_iter_ == len(net.history_) < 200
    assert np.array_equal(estimator.network_.weights_0_1, net.weights_0_1)
    assert estimator.validation_scores_ == net.history_.history["val_accuracy"]
    best = net.history_.best_epoch
    assert estimator.best_validation_score_ == net.history_.history["val_accuracy"][best]


def test_adaptive_divides_the_rate_by_five_where_the_rule_would_stop(digits):
    x, y, _, _ = digits
    estimator = NetworkClassifier(hidden=12, epochs=40, learning_rate="adaptive", tol=0.05,
                                  n_iter_no_change=2, random_state=5).fit(x, y)
    net = by_hand(x, y, 5, network=dict(hidden=12), stop=False, fit=dict(
        epochs=40, alpha=grokreg.ReduceOnPlateau(0.05, "error", factor=5.0, patience=2,
                                                 min_delta=0.05, min_rate=1e-6)))
    rates = estimator.history_.history["alpha"]
    assert rates == net.history_.history["alpha"] and rates[-1] < 0.05 / 5
    assert np.array_equal(estimator.network_.weights_0_1, net.weights_0_1)


def test_book_mode_is_the_books_network(digits):
    """book=True: 40 hidden units, squared error, no biases, 10 epochs of per-example steps
    at 0.005 in data order; and Network's defaults are the book's."""
    x, y, x_test, _ = digits
    estimator = NetworkClassifier(book=True, random_state=4).fit(x, y)
    net = grokreg.Network(40, seed=4, book=True)
    net.fit(x, y, epochs=10)
    assert np.array_equal(estimator.network_.weights_0_1, net.weights_0_1)
    assert np.array_equal(estimator.predict(x_test), net.predict(x_test))
    assert estimator.loss_curve_ == net.history_.history["error"] and estimator.n_iter_ == 10
    with pytest.raises(ValueError, match="sample_weight"):
        estimator.fit(x, y, sample_weight=np.ones(len(y)))


def test_labels_of_any_kind_and_probabilities(digits):
    x, y, x_test, y_test = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])
    by_name = NetworkClassifier(random_state=0, **SHORT).fit(x, names[y])
    by_number = NetworkClassifier(random_state=0, **SHORT).fit(x, y + 1)
    assert list(by_name.classes_) == sorted(names)
    assert list(by_number.classes_) == list(range(1, 11))
    # output k stands for classes_[k]: the network is the one trained on those indices
    for estimator, labels in ((by_name, names[y]), (by_number, y + 1)):
        net = by_hand(x, np.searchsorted(estimator.classes_, labels), 0,
                      network=dict(hidden=12), fit=dict(epochs=3))
        assert np.array_equal(estimator.network_.weights_1_2, net.weights_1_2)
        assert np.array_equal(estimator.predict(x_test), estimator.classes_[net.predict(x_test)])
    assert np.array_equal(by_number.predict(x_test) - 1,
                          NetworkClassifier(random_state=0, **SHORT).fit(x, y).predict(x_test))
    probabilities = by_name.predict_proba(x_test)
    assert probabilities.shape == (500, 10) and np.allclose(probabilities.sum(axis=1), 1)
    assert np.array_equal(by_name.classes_[probabilities.argmax(axis=1)], by_name.predict(x_test))
    outputs = by_name.network_.decision_function(x_test)
    expected = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    assert np.allclose(probabilities, expected / expected.sum(axis=1, keepdims=True), rtol=1e-12)


@pytest.mark.warning_location
def test_raw_tabular_features_warn_and_scaled_ones_do_not():
    """Raw breast_cancer (features up to 4,254): a RuntimeWarning before training, and the
    collapse that follows as a ConvergenceWarning, each saying what to do."""
    x, y = load_breast_cancer(return_X_y=True)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        NetworkClassifier(random_state=0).fit(x, y)
    rms = np.sqrt(np.mean(x ** 2))
    assert [(w.category, str(w.message)) for w in record] == [
        (RuntimeWarning, f"x's values have a root mean square of {rms:.3g} (up to 4254), far "
         f"from the scale the weights start for (-0.1 to 0.1, for inputs of about 1): the "
         f"first steps may kill every hidden unit or blow up. Scale the inputs "
         f"(sklearn.preprocessing.StandardScaler, or to [0, 1])"),
        (ConvergenceWarning, "NetworkClassifier: the training error blew up to 8.01e+04 in "
         "epoch 0 (a network that outputs nothing has 0.693): scale the inputs "
         "(sklearn.preprocessing.StandardScaler) or lower the learning rate "
         "(learning_rate_init=0.05)")]
    assert [w.filename for w in record] == [__file__] * 2  # the line that called fit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = cross_val_score(make_pipeline(StandardScaler(),
                                               NetworkClassifier(random_state=0)), x, y)
    assert scores.mean() > 0.96


# MLPClassifier()'s 5-fold accuracy with a StandardScaler in front (bench/tabular.py, the
# mean of 3 seeds): NetworkClassifier() is to come within 0.02 of it
MLP_SCALED = {"iris": 0.951, "wine": 0.978}


@pytest.mark.parametrize("name", MLP_SCALED)
def test_the_defaults_do_about_as_well_as_mlpclassifiers(name):
    x, y = {"iris": load_iris, "wine": load_wine}[name](return_X_y=True)
    for seed in range(3):
        scores = cross_val_score(make_pipeline(StandardScaler(),
                                               NetworkClassifier(random_state=seed)), x, y)
        assert scores.mean() >= MLP_SCALED[name] - 0.02


def test_weights_leaving_one_class_are_refused(digits):
    x, y, _, _ = digits
    with pytest.raises(ValueError, match=r"^sample_weight \(times class_weight\) leaves 1 "
                                         r"class with a positive weight: NetworkClassifier "
                                         r"needs at least 2 classes$"):
        NetworkClassifier(**SHORT).fit(x, y, sample_weight=(y == 3).astype(float))
    # the split MLPClassifier's way (stratified, seeded by random_state), and zero weights
    # for every sample it holds out
    _, held_out = train_test_split(np.arange(len(y)), test_size=0.1, stratify=y,
                                   random_state=0)
    weights = np.ones(len(y))
    weights[held_out] = 0
    with pytest.raises(ValueError, match=r"^early_stopping: every sample held out for "
                                         r"validation \(validation_fraction=0.1\) has zero "
                                         r"weight \(sample_weight times class_weight\): give "
                                         r"more samples a positive weight, or a larger "
                                         r"validation_fraction$"):
        NetworkClassifier(early_stopping=True, random_state=0, **SHORT).fit(
            x, y, sample_weight=weights)


def test_it_is_a_classifier_that_clones_pickles_and_refuses_before_fit(digits):
    x, y, x_test, _ = digits
    estimator = NetworkClassifier(hidden=12, epochs=2, random_state=1)
    assert is_classifier(estimator)
    with pytest.raises(NotFittedError):
        estimator.predict(x_test)
    estimator.fit(x, y)
    copy = pickle.loads(pickle.dumps(estimator))
    assert np.array_equal(copy.decision_function(x_test), estimator.decision_function(x_test))
    fresh = clone(estimator)
    assert fresh.get_params() == estimator.get_params() and not hasattr(fresh, "network_")


def test_cross_validation_search_and_pipeline(digits):
    x, y, _, _ = digits
    estimator = NetworkClassifier(hidden=16, epochs=2, random_state=0)
    scores = cross_val_score(estimator, x, y, cv=3)
    expected = [clone(estimator).fit(x[train], y[train]).score(x[test], y[test])
                for train, test in StratifiedKFold(3).split(x, y)]
    assert list(scores) == expected
    search = GridSearchCV(NetworkClassifier(epochs=2, random_state=0),
                          {"hidden": [8, 16], "learning_rate_init": [0.005, 0.01]}, cv=2,
                          n_jobs=2).fit(x, y)
    assert set(search.best_params_) == {"hidden", "learning_rate_init"}
    # the best setting's score is the mean of its folds, as computed in the worker processes
    best = search.best_index_
    assert search.best_score_ == search.cv_results_["mean_test_score"][best]
    pipeline = make_pipeline(FunctionTransformer(lambda images: images / 255.0),
                             NetworkClassifier(hidden=16, epochs=2, random_state=0)).fit(x, y)
    direct = NetworkClassifier(hidden=16, epochs=2, random_state=0).fit(x / 255.0, y)
    assert np.array_equal(pipeline.predict(x), direct.predict(x / 255.0))


def test_dataframes_name_their_features(digits):
    pandas = pytest.importorskip("pandas")
    x, y, _, _ = digits
    frame = pandas.DataFrame(x / 255.0, columns=[f"pixel{i}" for i in range(784)])
    estimator = NetworkClassifier(hidden=8, epochs=1, random_state=0).fit(frame, y)
    assert list(estimator.feature_names_in_[:2]) == ["pixel0", "pixel1"]
    plain = NetworkClassifier(hidden=8, epochs=1, random_state=0).fit(x / 255.0, y)
    assert not hasattr(plain, "feature_names_in_")
    assert np.array_equal(estimator.predict(frame), plain.predict(x / 255.0))


def test_partial_fit_and_warm_start_continue_training(digits):
    x, y, _, _ = digits
    stepwise = NetworkClassifier(hidden=10, random_state=2)
    with pytest.raises(ValueError, match="classes must be given"):
        stepwise.partial_fit(x, y)
    for _ in range(3):
        stepwise.partial_fit(x, y, classes=np.arange(10))
    warm = NetworkClassifier(hidden=10, epochs=1, random_state=2, warm_start=True)
    for _ in range(3):
        warm.fit(x, y)
    at_once = NetworkClassifier(hidden=10, epochs=3, random_state=2).fit(x, y)
    for estimator in (stepwise, warm):
        assert np.array_equal(estimator.network_.weights_0_1, at_once.network_.weights_0_1)
        assert estimator.n_iter_ == 3 and estimator.loss_curve_ == at_once.loss_curve_


def test_early_stopping_as_mlpclassifier_spells_it(digits):
    x, y, _, _ = digits
    estimator = NetworkClassifier(hidden=16, epochs=200, early_stopping=True, n_iter_no_change=3,
                                  validation_fraction=0.2, random_state=0).fit(x, y)
    assert estimator.n_iter_ < 200 and estimator.history_.stop_reason == "early_stopping"
    assert estimator.best_validation_score_ == max(estimator.validation_scores_)
    best = estimator.history_.best_epoch
    assert estimator.validation_scores_[best] == estimator.best_validation_score_


@pytest.mark.parametrize("options, message", [
    (dict(hidden=0), "hidden"),
    (dict(learning_rate_init=-1), "learning_rate_init must be > 0"),
    (dict(dropout=1.5), "dropout"),
    (dict(loss="hinge"), "loss"),
    (dict(book=True, dtype="float32"), "float64"),
])
def test_bad_hyper_parameters_are_refused_in_fit(digits, options, message):
    x, y, _, _ = digits
    estimator = NetworkClassifier(**options)  # stored as given
    with pytest.raises(ValueError, match=message):
        estimator.fit(x[:50], y[:50])


def test_searches_run_on_a_dask_cluster(digits, dask_client):
    joblib = pytest.importorskip("joblib")
    x, y, _, _ = digits
    grid = {"hidden": [8, 16]}
    local = GridSearchCV(NetworkClassifier(epochs=2, random_state=0), grid, cv=2).fit(x, y)
    with joblib.parallel_config(backend="dask"):
        remote = GridSearchCV(NetworkClassifier(epochs=2, random_state=0), grid, cv=2,
                              n_jobs=-1).fit(x, y)
    assert np.array_equal(local.cv_results_["mean_test_score"],
                          remote.cv_results_["mean_test_score"])
