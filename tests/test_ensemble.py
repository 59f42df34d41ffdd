"""Pickling networks, and ensembles: section 8.8's claim as a feature."""
import copy
import io
import json
import pickle
import zipfile

import numpy as np
import pytest

import grokreg
from grokreg import Ensemble, Network


@pytest.fixture(scope="module")
def small(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    return x_train[:300], y_train[:300], x_test[:500], y_test[:500]


@pytest.mark.parametrize("options", [dict(), dict(book=True, dropout=0.5),
                                     dict(dropout=0.3, dtype="float32", bias=True)])
@pytest.mark.parametrize("dumps, loads", [
    (pickle.dumps, pickle.loads),
    (lambda net: pytest.importorskip("cloudpickle").dumps(net), pickle.loads),
    (copy.deepcopy, lambda net: net),
])
def test_a_network_pickles_and_goes_on_training_as_the_original(small, options, dumps, loads):
    x, y, x_test, _ = small
    net = Network(16, seed=3, **options)
    net.fit(x, y, epochs=2, shuffle=not net.book)
    twin = loads(dumps(net))
    assert twin is not net and np.array_equal(twin.decision_function(x_test),
                                              net.decision_function(x_test))
    for each in (net, twin):  # the random stream (dropout, shuffling) continues the same
        each.fit(x, y, epochs=2, shuffle=not net.book)
    assert np.array_equal(twin.weights_0_1, net.weights_0_1)
    assert twin.history_.history == net.history_.history
    twin.fit(x, y, epochs=1)  # its own lock, released


def test_a_networks_parameters_start_on_a_cache_line_however_it_was_made(tmp_path):
    # as the kernels read them fastest (see _kernels.aligned_empty); numpy promises 16 bytes
    net = Network(100, dropout=0.5, dtype="float32", seed=0)
    made = (net, pickle.loads(pickle.dumps(net)), copy.deepcopy(net),
            Network.load(net.save(tmp_path / "net.npz")))
    for each in made:
        assert [p.ctypes.data % 64 for p in each._parameters] == [0, 0, 0, 0]


def test_a_network_pickled_while_training_is_unlocked(small):
    x, y, _, _ = small
    net = Network(8, seed=0)
    copies = []
    net.fit(x, y, epochs=1, on_epoch_end=lambda record: copies.append(pickle.dumps(net)))
    copy_ = pickle.loads(copies[0])  # the network as that epoch left it, free to train
    assert np.array_equal(copy_.weights_0_1, net.weights_0_1)
    copy_.fit(x, y, epochs=1)
    net.fit(x, y, epochs=1)
    assert np.array_equal(copy_.weights_0_1, net.weights_0_1)
    assert copy_.history_.history == net.history_.history


def test_an_ensemble_is_its_networks_trained_alone_and_averaged(small):
    x, y, x_test, y_test = small
    ensemble = Ensemble(3, 16, seed=7, dropout=0.5)
    histories = ensemble.fit(x, y, epochs=3, test_data=(x_test, y_test))
    seeds = np.random.SeedSequence(7).spawn(3)
    alone = []
    for seed, history in zip(seeds, histories):
        net = Network(16, seed=seed, dropout=0.5)
        assert net.fit(x, y, epochs=3, test_data=(x_test, y_test)).history == history.history
        alone.append(net)
    for net, member in zip(alone, ensemble.networks):
        assert np.array_equal(net.weights_0_1, member.weights_0_1)
    average = (alone[0].decision_function(x_test) + alone[1].decision_function(x_test)
               + alone[2].decision_function(x_test)) / 3
    assert np.array_equal(ensemble.decision_function(x_test), average)
    assert np.array_equal(ensemble.predict(x_test), average.argmax(axis=1))
    error, accuracy = ensemble.evaluate(x_test, y_test)
    assert accuracy == np.mean(average.argmax(axis=1) == y_test)
    assert error == pytest.approx(((np.eye(10)[y_test] - average) ** 2).sum(axis=1).mean(),
                                  rel=1e-12)


def test_a_cross_entropy_ensemble_is_measured_on_its_averaged_outputs(small):
    x, y, x_test, y_test = small
    ensemble = Ensemble(3, 16, seed=2, loss="softmax_cross_entropy", bias=True)
    ensemble.fit(x, y, epochs=2, alpha=0.05, batch_size=10)
    average = sum(net.decision_function(x_test) for net in ensemble.networks) / 3
    # -log softmax(average)[label], written as log-sum-exp minus the label's output
    expected = np.mean(np.log(np.exp(average).sum(axis=1))
                       - average[np.arange(len(y_test)), y_test])
    error, accuracy = ensemble.evaluate(x_test, y_test)
    assert error == pytest.approx(expected, rel=1e-12) and error > 0
    assert accuracy == np.mean(average.argmax(axis=1) == y_test)


def test_book_mode_members_are_the_books_network_with_the_next_seeds(small):
    x, y, x_test, _ = small
    ensemble = Ensemble(2, 10, seed=1, book=True)
    ensemble.fit(x, y, epochs=2)
    for offset, member in enumerate(ensemble.networks):
        net = Network(10, seed=1 + offset, book=True)
        net.fit(x, y, epochs=2)
        assert np.array_equal(member.weights_1_2, net.weights_1_2)


def test_an_ensemble_saves_and_loads_exactly(small, tmp_path):
    x, y, x_test, _ = small
    ensemble = Ensemble(3, 8, seed=2, dtype="float32")
    ensemble.fit(x, y, epochs=1)
    path = ensemble.save(tmp_path / "ensemble.zip")
    loaded = Ensemble.load(path)
    assert len(loaded) == 3
    assert np.array_equal(loaded.decision_function(x_test), ensemble.decision_function(x_test))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ensemble.zip"]
    copy_of = pickle.loads(pickle.dumps(ensemble))
    assert np.array_equal(copy_of.predict(x_test), ensemble.predict(x_test))


def test_load_refuses_what_is_not_an_ensemble(small, tmp_path):
    Network(4, seed=0).save(tmp_path / "net.npz")
    with pytest.raises(ValueError, match="not a grokreg ensemble"):
        Ensemble.load(tmp_path / "net.npz")
    good = Ensemble(2, 4, seed=0).save(tmp_path / "good.zip")
    with zipfile.ZipFile(good) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    for name, content in ((n, c) for n, c in members.items() if n != "ensemble.json"):
        members[name] = content[: len(content) // 2]  # a truncated member
        break
    damaged = io.BytesIO()
    with zipfile.ZipFile(damaged, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    (tmp_path / "bad.zip").write_bytes(damaged.getvalue())
    with pytest.raises(ValueError, match="network-0000.npz"):
        Ensemble.load(tmp_path / "bad.zip")


def _rewritten(good, path, header=None, extra=None, drop=None):
    """A copy of the ensemble file good with its header replaced (bytes), a member added or
    one left out."""
    with zipfile.ZipFile(good) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    if header is not None:
        members["ensemble.json"] = header
    if extra is not None:
        members[extra] = members["network-0000.npz"]
    if drop is not None:
        del members[drop]
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


HEADER = {"format": "grokreg-ensemble", "format_version": 1, "n_networks": 2}


@pytest.mark.parametrize("change, message", [
    (dict(header=json.dumps(HEADER).ljust(4097).encode()),
     "not a grokreg ensemble file (its ensemble.json is too large)"),
    (dict(header=b"[2]"), "not a grokreg ensemble file (its ensemble.json is not an object)"),
    (dict(header=json.dumps({**HEADER, "n_networks": 0}).encode()),
     "not a grokreg ensemble file (unknown format)"),
    (dict(header=json.dumps({**HEADER, "n_networks": "2"}).encode()),
     "not a grokreg ensemble file (unknown format)"),
    (dict(header=json.dumps({**HEADER, "format": "grokreg-network"}).encode()),
     "not a grokreg ensemble file (unknown format)"),
    (dict(header=json.dumps({**HEADER, "format_version": 2}).encode()),
     "not a grokreg ensemble file (unknown format)"),
    (dict(header=json.dumps({**HEADER, "n_networks": 1}).encode()),
     "not a grokreg ensemble file (its members are not those its header lists)"),
    (dict(extra="network-0002.npz"),
     "not a grokreg ensemble file (its members are not those its header lists)"),
    (dict(drop="network-0001.npz"),
     "not a grokreg ensemble file (its members are not those its header lists)"),
    (dict(header=b'{"format": "grokreg-ensemble"}'),
     "damaged or not a grokreg ensemble file ('n_networks')"),
])
def test_load_refuses_a_tampered_ensemble(tmp_path, change, message):
    good = Ensemble(2, 4, seed=0).save(tmp_path / "good.zip")
    bad = _rewritten(good, tmp_path / "bad.zip", **change)
    with pytest.raises(ValueError) as refused:
        Ensemble.load(bad)
    assert str(refused.value) == f"{bad}: {message}"


def test_load_takes_a_header_of_4096_bytes_and_an_ensemble_of_one(small, tmp_path):
    x, y, x_test, _ = small
    one = Ensemble(1, 4, seed=3)
    one.fit(x, y, epochs=1)
    path = _rewritten(one.save(tmp_path / "one.zip"), tmp_path / "padded.zip",
                      header=json.dumps({**HEADER, "n_networks": 1}).ljust(4096).encode())
    loaded = Ensemble.load(path)
    assert len(loaded) == 1
    assert np.array_equal(loaded.decision_function(x_test), one.decision_function(x_test))


def test_load_refuses_networks_that_differ(tmp_path):
    first = Ensemble(2, 4, seed=0).save(tmp_path / "a.zip")
    other = Ensemble(2, 4, seed=0, dtype="float32").save(tmp_path / "b.zip")
    with zipfile.ZipFile(first) as a, zipfile.ZipFile(other) as b:
        members = {"ensemble.json": a.read("ensemble.json"),
                   "network-0000.npz": a.read("network-0000.npz"),
                   "network-0001.npz": b.read("network-0001.npz")}
    with zipfile.ZipFile(tmp_path / "mixed.zip", "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(ValueError, match="its networks differ in inputs, outputs, dtype or loss"):
        Ensemble.load(tmp_path / "mixed.zip")


@pytest.mark.parametrize("options, error, message", [
    (dict(n_networks=0), ValueError, "n_networks must be >= 1"),
    (dict(n_jobs=0), ValueError, "n_jobs must be >= 1"),
    (dict(n_threads=2), TypeError, "n_jobs"),
    (dict(book=True, seed=2**32 - 1), ValueError, "seed"),
    (dict(hidden=0), ValueError, "hidden"),
])
def test_ensemble_refuses(options, error, message):
    with pytest.raises(error, match=message):
        Ensemble(**{"n_networks": 2, **options})


def test_reproduce_ensemble_prints_the_chapters_claim():
    out = io.StringIO()
    result = grokreg.recipes.reproduce_ensemble(networks=3, book=True, epochs=40, n_train=300,
                                                n_test=1000, out=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Ensemble, book mode: 3 networks 784-40-10, 40 epochs on 300 images"
    rows = result["rows"]
    assert [row["model"] for row in rows] == [
        "network 1", "network 2", "network 3", "mean of the 3 networks",
        "ensemble: their outputs averaged", "one network with dropout"]
    # network 1 is the book's overfit network: reproduce prints the same last line
    book = io.StringIO()
    grokreg.reproduce("overfit", book=True, epochs=40, n_train=300, n_test=1000, out=book)
    assert f"Test-Acc:{rows[0]['test_accuracy']}" in book.getvalue().splitlines()[-1]
    assert lines[4] == f"| network 1 | 40 | 0 | {rows[0]['test_accuracy']:.4f} | " \
                       f"{rows[0]['best']:.4f} ({rows[0]['best_epoch']}) |"
    mean = np.mean([row["test_accuracy"] for row in rows[:3]])
    assert rows[3]["test_accuracy"] == pytest.approx(mean)
    # section 8.8's claim: the averaged network beats the networks' mean (here 0.719 vs 0.679)
    assert rows[4]["test_accuracy"] > rows[3]["test_accuracy"] + 0.01
