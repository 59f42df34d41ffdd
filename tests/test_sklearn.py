"""grokreg.sklearn.NetworkClassifier: scikit-learn's own checks, and the tools people use it with."""
import pickle

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone, is_classifier  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import grokreg  # noqa: E402
from grokreg.sklearn import NetworkClassifier  # noqa: E402


@parametrize_with_checks([
    NetworkClassifier(),
    NetworkClassifier(batch_size=16, loss="softmax_cross_entropy", bias=True, dropout=0.2,
                      shuffle=True, early_stopping=True, dtype="float32",
                      learning_rate_init=0.1),
    NetworkClassifier(book=True, dropout=0.5),
    # no check is expected to fail: the list scikit-learn takes stays empty
], expected_failed_checks=lambda estimator: {})
def test_scikit_learns_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    return x_train[:600].reshape(600, -1), y_train[:600], x_test[:500].reshape(500, -1), y_test[:500]


def test_it_is_the_network_it_wraps(digits):
    """Same seed, same hyper-parameters: the estimator's network is Network's, bit for bit."""
    x, y, x_test, y_test = digits
    estimator = NetworkClassifier(hidden=20, epochs=3, random_state=4).fit(x, y)
    net = grokreg.Network(hidden=20, seed=4)
    net.fit(x, y, epochs=3, alpha=0.005)
    assert np.array_equal(estimator.network_.weights_0_1, net.weights_0_1)
    assert np.array_equal(estimator.predict(x_test), net.predict(x_test))
    assert estimator.score(x_test, y_test) == net.score(x_test, y_test)
    assert estimator.loss_curve_ == net.history_.history["error"] and estimator.n_iter_ == 3
    assert estimator.n_features_in_ == 784 and list(estimator.classes_) == list(range(10))


def test_labels_of_any_kind_and_probabilities(digits):
    x, y, x_test, y_test = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])
    by_name = NetworkClassifier(hidden=20, epochs=3, random_state=0).fit(x, names[y])
    by_number = NetworkClassifier(hidden=20, epochs=3, random_state=0).fit(x, y + 1)
    assert list(by_name.classes_) == sorted(names)
    assert list(by_number.classes_) == list(range(1, 11))
    # output k stands for classes_[k]: the network is the one trained on those indices
    for estimator, labels in ((by_name, names[y]), (by_number, y + 1)):
        net = grokreg.Network(hidden=20, seed=0)
        net.fit(x, np.searchsorted(estimator.classes_, labels), epochs=3)
        assert np.array_equal(estimator.network_.weights_1_2, net.weights_1_2)
        assert np.array_equal(estimator.predict(x_test), estimator.classes_[net.predict(x_test)])
    assert np.array_equal(by_number.predict(x_test) - 1,
                          NetworkClassifier(hidden=20, epochs=3, random_state=0).fit(x, y)
                          .predict(x_test))
    probabilities = by_name.predict_proba(x_test)
    assert probabilities.shape == (500, 10) and np.allclose(probabilities.sum(axis=1), 1)
    assert np.array_equal(by_name.classes_[probabilities.argmax(axis=1)], by_name.predict(x_test))
    outputs = by_name.network_.decision_function(x_test)
    expected = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    assert np.allclose(probabilities, expected / expected.sum(axis=1, keepdims=True), rtol=1e-12)


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
