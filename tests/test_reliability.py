"""No input crashes the interpreter, and no run loses work.

Property tests drive the public API with random shapes, dtypes, values and hyper-parameters in a
worker process (tests/crash_isolation.py): a crash fails that case, with its inputs, rather than
ending the run. Each case is judged against what the API promises, decided independently here
(problems()): a valid call must succeed with correct-shaped, finite results equal, bit for
bit, to the same call on plain arrays; an invalid one must raise a ValueError or TypeError
naming a wrong argument. Files read back must equal what was written.
"""
import _thread
import gzip
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import crash_isolation
import grokreg

CLEAR_ERRORS = ("ValueError", "TypeError")
N_INPUTS, N_OUTPUTS = 6, 3
PROPERTY = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def worker():
    isolated = crash_isolation.Isolated()
    yield isolated
    isolated.close()


# -- what the API promises: which arguments of a call are wrong, decided here, independently
# of grokreg's own checks (the README's contract, written out) --------------------------------

def is_int(value, minimum):
    return (isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
            and value >= minimum)


def problems(network, x, y, fit):
    """The set of argument names that the call Network(**network).fit(x, y, **fit) gets wrong
    (empty: the call must succeed)."""
    wrong = set()
    book = network["book"]
    if not is_int(network["hidden"], 1):
        wrong.add("hidden")
    dropout = network["dropout"]
    if not (0 <= dropout < 1) or (book and dropout not in (0.0, 0.5)):
        wrong.add("dropout")
    seed = network["seed"]
    if seed is not None and not (is_int(seed, 0) and seed < 2**32):
        wrong.add("seed")
    if network["dtype"] not in ("float64", "float32") or (book and network["dtype"] != "float64"):
        wrong.add("dtype")
    loss = network["loss"]
    if loss not in ("mse", "softmax_cross_entropy") or (book and loss != "mse"):
        wrong.add("loss")
    if not isinstance(network["bias"], bool) or (book and network["bias"]):
        wrong.add("bias")
    threads = network["n_threads"]
    if threads is not None and not is_int(threads, 1):
        wrong.add("n_threads")
    # x: uint8 pixels or floating point, (N, 6) or (N, H, W) with H * W == 6, N >= 1, finite in
    # the network's dtype
    flat = x.reshape(len(x), x.shape[1] * x.shape[2]) if x.ndim == 3 else x
    if (x.dtype.kind not in "f" and x.dtype != np.uint8) or x.ndim not in (2, 3) \
            or flat.shape[1:] != (N_INPUTS,) or len(x) == 0:
        wrong.add("x")
    elif x.dtype.kind == "f":
        dtype = network["dtype"] if network["dtype"] in ("float64", "float32") else "float64"
        with np.errstate(over="ignore", invalid="ignore"):
            if not np.isfinite(x.astype(dtype)).all():
                wrong.add("x")
    # y: integer labels (whole-number floats too) in 0..2, or one-hot rows
    if y.ndim == 1:
        whole = y.dtype.kind in "iu" or (np.isfinite(y).all() and (y == np.round(y)).all())
        if not whole or (len(y) and (y.min() < 0 or y.max() >= N_OUTPUTS)):
            wrong.add("y")
    elif y.ndim != 2 or y.shape[1] != N_OUTPUTS or not (
            np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
        wrong.add("y")
    if fit["epochs"] < 0:
        wrong.add("epochs")
    alpha = fit["alpha"]
    if not (np.isfinite(alpha) and alpha > 0):
        wrong.add("alpha")
    if not 1 <= fit["batch_size"] <= max(len(x), 1):
        wrong.add("batch_size")
    if fit["eval_every"] < 1:
        wrong.add("eval_every")
    if fit["shuffle"] and book:
        wrong.add("shuffle")
    return wrong


def names(message, argument):
    """Whether message names argument (as a word: 'x' must not match 'expected')."""
    return re.search(rf"(^|[^\w]){argument}([^\w]|$)", message) is not None


def judge(outcome, wrong):
    """The property: a valid call succeeds; an invalid one raises a clear ValueError or
    TypeError whose message names one of the wrong arguments."""
    if outcome[0] == "ok":
        assert not wrong, f"accepted wrong arguments {sorted(wrong)}"
        return outcome[1]
    _, kind, message = outcome
    assert wrong, f"a valid call raised {kind}: {message}"
    assert kind in CLEAR_ERRORS, f"unclear error {kind}: {message}"
    assert any(names(message, argument) for argument in wrong), (
        f"{kind}({message!r}) names none of the wrong arguments {sorted(wrong)}")
    return None


def check_result(result, x):
    assert result["n"] == len(x)
    assert result["finite"], "the network kept non-finite parameters"
    assert result["outputs"].shape == (len(x), N_OUTPUTS)
    largest = max(np.abs(p).max() for p in result["parameters"])
    if largest < 1e100:  # finite weights near the float range may still overflow the outputs
        assert np.isfinite(result["outputs"]).all()
        # the squared error of finite outputs overflows from ~1e154 on (float64's sqrt(max))
        if np.abs(result["outputs"]).max() < 1e150:
            assert np.isfinite(result["error"])
    assert 0 <= result["accuracy"] <= 1
    assert ((result["predictions"] >= 0) & (result["predictions"] < N_OUTPUTS)).all()
    assert np.array_equal(result["predictions"], result["outputs"].argmax(axis=1))
    plain = result.get("plain")  # the same call on plain arrays: the same numbers, bit for bit
    if plain is None:  # seed=None: each network its own weights
        return
    for found, expected in zip(result["parameters"], plain["parameters"]):
        assert np.array_equal(found, expected)
    assert np.array_equal(result["predictions"], plain["predictions"])
    assert result["error"] == plain["error"] and result["accuracy"] == plain["accuracy"]


dtypes = st.sampled_from(["uint8", "float64", "float32", "float16", "int64", "bool", "complex64",
                          ">f8", "<f4"])


@st.composite
def inputs(draw, valid=False):
    n = draw(st.integers(1 if valid else 0, 6))
    width = N_INPUTS if valid else draw(st.sampled_from([N_INPUTS] * 3 + [0, 1, N_INPUTS + 1]))
    shape = draw(st.sampled_from([(n, width), (n, 2, 3)] if valid else
                                 [(n, width), (n,), (n, 2, 3), (n, width, 1)]))
    dtype = np.dtype(draw(st.sampled_from(["uint8", "float64", "float32", ">f8", "<f4"])
                          if valid else dtypes))
    elements = None
    if dtype.kind == "f":
        elements = (st.floats(0, 2, width=32) if valid else
                    st.floats(allow_nan=True, allow_infinity=True,
                              width=8 * min(dtype.itemsize, 4)))
    x = draw(hnp.arrays(dtype, shape, elements=elements))
    if draw(st.booleans()) and x.ndim == 2 and x.shape[0] > 1:
        x = x[::-1]  # negative strides
    return x


@st.composite
def labels(draw, n, valid=False):
    kinds = ["int", "int", "one_hot", "whole_float"] + ([] if valid else ["float", "bad_shape"])
    kind = draw(st.sampled_from(kinds))
    if kind == "int":
        low, high = (0, N_OUTPUTS - 1) if valid else (-2, N_OUTPUTS + 2)
        return draw(hnp.arrays(np.int64, (n,), elements=st.integers(low, high)))
    if kind == "one_hot":
        if valid:
            return np.eye(N_OUTPUTS)[draw(hnp.arrays(np.int64, (n,),
                                                     elements=st.integers(0, N_OUTPUTS - 1)))]
        return draw(hnp.arrays(np.float64, (n, N_OUTPUTS), elements=st.sampled_from([0.0, 1.0])))
    if kind == "whole_float":
        return draw(hnp.arrays(np.float64, (n,), elements=st.sampled_from([0.0, 1.0, 2.0])))
    if kind == "float":
        return draw(hnp.arrays(np.float64, (n,), elements=st.floats(-1, 4)))
    return draw(hnp.arrays(np.int64, (n, 2), elements=st.integers(0, 2)))


def network_options(valid=False):
    if valid:
        return st.fixed_dictionaries({
            "hidden": st.integers(1, 9), "dropout": st.sampled_from([0.0, 0.5]),
            "seed": st.integers(0, 2**32 - 1),
            "book": st.booleans(), "dtype": st.just("float64"), "loss": st.just("mse"),
            "bias": st.just(False), "n_inputs": st.just(N_INPUTS),
            "n_outputs": st.just(N_OUTPUTS), "n_threads": st.sampled_from([1, 2, None])})
    return st.fixed_dictionaries({
        "hidden": st.one_of(st.integers(-1, 9), st.sampled_from([2.5, "4", None])),
        "dropout": st.one_of(st.sampled_from([0.0, 0.5, 0.9, 1.0, -0.1, float("nan")]),
                             st.floats(0, 0.99)),
        "seed": st.one_of(st.integers(0, 2**32 - 1), st.just(None), st.just(-3)),
        "book": st.booleans(),
        "dtype": st.sampled_from(["float64", "float32", "float16", "int8", "nonsense"]),
        "loss": st.sampled_from(["mse", "mse", "softmax_cross_entropy", "l1"]),
        "bias": st.sampled_from([False, True, 1]),
        "n_inputs": st.just(N_INPUTS),
        "n_outputs": st.just(N_OUTPUTS),
        "n_threads": st.sampled_from([1, 1, 2, 3, 0, None, 1.5]),
    })


def fit_options(n, valid=False):
    if valid:
        return st.fixed_dictionaries({
            "epochs": st.integers(0, 3), "alpha": st.floats(1e-4, 1.0),
            "batch_size": st.integers(1, n), "eval_every": st.integers(1, 3),
            "shuffle": st.just(False)})
    return st.fixed_dictionaries({
        "epochs": st.integers(-1, 3),
        "alpha": st.one_of(st.sampled_from([0.0, -0.1, float("nan"), float("inf"), 10.0, 1e6]),
                           st.floats(1e-4, 1.0)),
        "batch_size": st.integers(-1, 8),
        "eval_every": st.integers(0, 3),
        "shuffle": st.booleans(),
    })


def test_the_oracle_knows_a_valid_call_from_a_wrong_one():
    """problems() itself, on calls whose verdict is known."""
    network = dict(hidden=4, dropout=0.0, seed=0, book=False, dtype="float64", loss="mse",
                   bias=False, n_inputs=N_INPUTS, n_outputs=N_OUTPUTS, n_threads=1)
    x, y = np.zeros((3, N_INPUTS)), np.array([0, 1, 2])
    fit = dict(epochs=1, alpha=0.1, batch_size=1, eval_every=1, shuffle=False)
    assert problems(network, x, y, fit) == set()
    assert problems(dict(network, book=True, dtype="float32"), x, y, fit) == {"dtype"}
    assert problems(network, x.astype(np.int64), y + 1, dict(fit, batch_size=4)) == {
        "x", "y", "batch_size"}
    assert names("x must be uint8", "x") and not names("expected an index", "x")


@PROPERTY
@given(data=st.data())
def test_any_call_succeeds_or_names_what_is_wrong(worker, data):
    x = data.draw(inputs(), label="x")
    y = data.draw(labels(len(x)), label="y")
    options = data.draw(network_options(), label="network")
    fit = data.draw(fit_options(len(x)), label="fit")
    wrong = problems(options, x, y, fit)
    seeded = options["seed"] is not None
    result = judge(worker.run(crash_isolation.train_and_predict, options, x, y, fit,
                              seeded and not wrong), wrong)
    if result is not None:
        check_result(result, x)


@PROPERTY
@given(data=st.data())
def test_valid_calls_succeed_with_the_plain_arrays_results(worker, data):
    """Drawn only from valid calls: an API that refused them all would fail here."""
    x = data.draw(inputs(valid=True), label="x")
    y = data.draw(labels(len(x), valid=True), label="y")
    options = data.draw(network_options(valid=True), label="network")
    fit = data.draw(fit_options(len(x), valid=True), label="fit")
    assert not problems(options, x, y, fit)
    check_result(judge(worker.run(crash_isolation.train_and_predict, options, x, y, fit, True),
                       set()), x)


IDX_CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype(">i2"): 0x0B,
             np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def idx_bytes(array):
    header = bytes([0, 0, IDX_CODES[array.dtype], array.ndim])
    return header + b"".join(d.to_bytes(4, "big") for d in array.shape) + array.tobytes()


@PROPERTY
@given(array=hnp.arrays(st.sampled_from(list(IDX_CODES)), hnp.array_shapes(min_dims=1, max_dims=3,
                                                                           max_side=5)))
def test_read_idx_returns_what_was_written(worker, tmp_path_factory, array):
    directory = str(tmp_path_factory.mktemp("idx"))
    for content in (idx_bytes(array), gzip.compress(idx_bytes(array))):
        outcome = worker.run(crash_isolation.read_idx_bytes, content, directory)
        assert outcome[0] == "ok", outcome
        found = outcome[1]
        assert found.shape == array.shape and found.dtype == array.dtype.newbyteorder("=")
        assert found.tobytes() == array.astype(found.dtype).tobytes()  # NaN payloads too


@PROPERTY
@given(content=st.one_of(
    st.binary(max_size=64),
    st.builds(lambda dims, body: bytes([0, 0, 8, len(dims)]) + b"".join(
        d.to_bytes(4, "big") for d in dims) + body,
        st.lists(st.integers(0, 2**32 - 1), max_size=4), st.binary(max_size=64)),
))
def test_read_idx_reads_exactly_its_bytes_or_refuses_them(worker, tmp_path_factory, content):
    """Random bytes: a ValueError, or (rarely) a well-formed file read back exactly."""
    directory = str(tmp_path_factory.mktemp("idx"))
    for data in (content, gzip.compress(content)):
        outcome = worker.run(crash_isolation.read_idx_bytes, data, directory)
        if outcome[0] == "ok":
            array = outcome[1]
            big_endian = array.astype(array.dtype.newbyteorder(">"))
            assert idx_bytes(big_endian) == content
        else:
            assert outcome[1] == "ValueError" and "case.idx" in outcome[2], outcome


ORIGINAL = dict(hidden=4, seed=0, n_inputs=6, n_outputs=3, bias=True)


@pytest.fixture(scope="module")
def saved_network(tmp_path_factory):
    """The path of a small saved network, to damage."""
    path = tmp_path_factory.mktemp("npz") / "net.npz"
    grokreg.Network(**ORIGINAL).save(path)
    return path


@PROPERTY
@given(positions=st.lists(st.integers(0, 10**6), max_size=8), value=st.integers(0, 255),
       cut=st.one_of(st.none(), st.integers(0, 10**6)))
@example(positions=[255, 278], value=248, cut=None)  # a member's name no longer UTF-8
def test_a_damaged_file_loads_as_saved_or_is_refused(worker, tmp_path_factory, saved_network,
                                                     positions, value, cut):
    original = grokreg.Network(**ORIGINAL)
    content = bytearray(saved_network.read_bytes())
    for position in positions:
        content[position % len(content)] = value
    if cut is not None:
        content = content[:cut % len(content)]
    outcome = worker.run(crash_isolation.load_network_bytes, bytes(content),
                         str(tmp_path_factory.mktemp("load")))
    if outcome[0] == "ok":  # the damage missed everything that matters: the same network
        loaded = outcome[1]
        assert loaded["config"] == repr(original)
        for found, expected in zip(loaded["parameters"], original._parameters):
            assert np.array_equal(found, expected)
        assert loaded["state"] == original._bit_generator.state
    else:
        assert outcome[1] == "ValueError" and "case.npz" in outcome[2], outcome


def test_a_member_flagged_as_encrypted_is_a_damaged_file(saved_network, tmp_path):
    """zipfile raises RuntimeError for encrypted members; load reports a damaged file instead."""
    content = bytearray(saved_network.read_bytes())
    for signature, flags_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = content.find(signature)
        while start != -1:
            content[start + flags_offset] |= 1  # bit 0 of the general-purpose flags: encrypted
            start = content.find(signature, start + 1)
    path = tmp_path / "encrypted.npz"
    path.write_bytes(bytes(content))
    with pytest.raises(ValueError, match="damaged or not a grokreg network file.*encrypted"):
        grokreg.Network.load(path)


# -- interrupted work -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def images(mnist):
    (x, y), _ = mnist
    return x[:1000], y[:1000]


def test_keyboard_interrupt_keeps_weights_and_history_consistent(images):
    """An interrupt mid-fit leaves the weights of the last recorded epoch, whatever its timing."""
    x, y = images
    for delay in (0.05, 0.13, 0.31):
        net = grokreg.Network(40, seed=3, dropout=0.3)
        timer = threading.Timer(delay, _thread.interrupt_main)
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            net.fit(x, y, epochs=10_000)
        timer.join()
        history = net.history_
        assert history.stop_reason == "interrupted" and "interrupted" in history.stop_message
        replay = grokreg.Network(40, seed=3, dropout=0.3)
        replay.fit(x, y, epochs=len(history))
        assert np.array_equal(net.weights_0_1, replay.weights_0_1), delay
        net.fit(x[:10], y[:10], epochs=1)  # and the network is usable afterwards


@pytest.mark.skipif(sys.platform == "win32", reason="Windows has no SIGINT to send to a process")
def test_interrupted_reproduce_exits_cleanly_with_complete_lines():
    process = subprocess.Popen(
        [sys.executable, "-P", "-m", "grokreg", "reproduce", "dropout", "--book",
         "--eval-every", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = process.stdout.readline()  # training has started
    process.send_signal(signal.SIGINT)
    rest, errors = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in errors and "Traceback" not in errors
    lines = (first + rest).splitlines()
    assert lines[0] == "I:0 Test-Err:0.641 Test-Acc:0.6333 Train-Err:0.891 Train-Acc:0.413"
    assert all(line.startswith("I:") and line.count("Acc:") == 2 for line in lines)


# -- threads and memory -----------------------------------------------------------------------

def test_sharing_a_network_across_threads_raises_clearly(images):
    x, y = images
    net = grokreg.Network(8, seed=0)
    training, release = threading.Event(), threading.Event()

    def hold(record):
        training.set()
        release.wait(30)

    thread = threading.Thread(target=net.fit, args=(x[:50], y[:50]),
                              kwargs=dict(epochs=1, on_epoch_end=hold))
    thread.start()
    assert training.wait(30)
    with pytest.raises(RuntimeError, match="already training in another thread"):
        net.fit(x[:50], y[:50])
    release.set()
    thread.join()
    assert len(net.history_) == 1


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux's /proc")
def test_repeated_calls_do_not_leak(images):
    """1,000 fit + predict + evaluate calls grow the resident set by less than 8 MB."""
    x, y = images
    x, y = x[:40], y[:40]
    net = grokreg.Network(16, seed=0, dropout=0.2)

    def cycle():
        net.fit(x, y, epochs=1, batch_size=4, test_data=(x, y))
        net.predict(x)
        net.evaluate(x, y)

    for _ in range(100):  # warm up allocator pools and caches
        cycle()
    before = resident_bytes()
    started = time.perf_counter()
    for _ in range(1000):
        cycle()
    growth = resident_bytes() - before
    assert growth < 8 * 2**20, f"resident set grew by {growth / 2**20:.1f} MB"
    assert time.perf_counter() - started < 60
