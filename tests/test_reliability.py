"""No input crashes the interpreter, and no run loses work.

Property tests drive the public API with random shapes, dtypes, values and hyper-parameters in a
worker process (tests/crash_isolation.py): a crash fails that case, with its inputs, rather than
ending the run. Every call must return a correct, finite result or raise a clear ValueError or
TypeError.
"""
import _thread
import gzip
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
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


def judge(outcome):
    """The property: a correct, finite result, or a clear error that says something."""
    if outcome[0] == "error":
        _, kind, message = outcome
        assert kind in CLEAR_ERRORS, f"unclear error {kind}: {message}"
        assert len(message) > 10, f"{kind} without an explanation: {message!r}"
        return None
    return outcome[1]


dtypes = st.sampled_from(["uint8", "float64", "float32", "float16", "int64", "bool", "complex64",
                          ">f8", "<f4"])


@st.composite
def inputs(draw):
    n = draw(st.integers(0, 6))
    width = draw(st.sampled_from([N_INPUTS, N_INPUTS, N_INPUTS, 0, 1, N_INPUTS + 1]))
    shape = draw(st.sampled_from([(n, width), (n,), (n, 2, 3), (n, width, 1)]))
    dtype = np.dtype(draw(dtypes))
    elements = None
    if dtype.kind == "f":
        elements = st.floats(allow_nan=True, allow_infinity=True, width=8 * min(dtype.itemsize, 4))
    x = draw(hnp.arrays(dtype, shape, elements=elements))
    if draw(st.booleans()) and x.ndim == 2 and x.shape[0] > 1:
        x = x[::-1]  # negative strides
    return x


@st.composite
def labels(draw, n):
    kind = draw(st.sampled_from(["int", "int", "one_hot", "float", "bad_shape"]))
    if kind == "int":
        return draw(hnp.arrays(np.int64, (n,), elements=st.integers(-2, N_OUTPUTS + 2)))
    if kind == "one_hot":
        return draw(hnp.arrays(np.float64, (n, N_OUTPUTS), elements=st.sampled_from([0.0, 1.0])))
    if kind == "float":
        return draw(hnp.arrays(np.float64, (n,), elements=st.floats(-1, 4)))
    return draw(hnp.arrays(np.int64, (n, 2), elements=st.integers(0, 2)))


network_options = st.fixed_dictionaries({
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

fit_options = st.fixed_dictionaries({
    "epochs": st.integers(-1, 3),
    "alpha": st.one_of(st.sampled_from([0.0, -0.1, float("nan"), float("inf"), 10.0, 1e6]),
                       st.floats(1e-4, 1.0)),
    "batch_size": st.integers(-1, 8),
    "eval_every": st.integers(0, 3),
    "shuffle": st.booleans(),
})


@PROPERTY
@given(data=st.data())
def test_training_and_inference_never_crash(worker, data):
    x = data.draw(inputs(), label="x")
    y = data.draw(labels(len(x)), label="y")
    options = data.draw(network_options, label="network")
    fit = data.draw(fit_options, label="fit")
    result = judge(worker.run(crash_isolation.train_and_predict, options, x, y, fit))
    if result is not None:
        assert result["n"] == len(x)
        assert result["finite"], "the network kept non-finite parameters"
        assert np.isfinite(result["error"]) and 0 <= result["accuracy"] <= 1
        assert ((result["predictions"] >= 0) & (result["predictions"] < N_OUTPUTS)).all()


@PROPERTY
@given(content=st.one_of(
    st.binary(max_size=64),
    st.builds(lambda dims, body: bytes([0, 0, 8, len(dims)]) + b"".join(
        d.to_bytes(4, "big") for d in dims) + body,
        st.lists(st.integers(0, 2**32 - 1), max_size=4), st.binary(max_size=64)),
))
def test_read_idx_never_crashes(worker, tmp_path_factory, content):
    directory = str(tmp_path_factory.mktemp("idx"))
    for data in (content, gzip.compress(content)):
        judge(worker.run(crash_isolation.read_idx_bytes, data, directory))


@pytest.fixture(scope="module")
def saved_network(tmp_path_factory):
    """The path of a small saved network, to damage."""
    path = tmp_path_factory.mktemp("npz") / "net.npz"
    grokreg.Network(4, seed=0, n_inputs=6, n_outputs=3, bias=True).save(path)
    return path


@PROPERTY
@given(positions=st.lists(st.integers(0, 10**6), max_size=8), value=st.integers(0, 255),
       cut=st.one_of(st.none(), st.integers(0, 10**6)))
def test_loading_damaged_files_never_crashes(worker, tmp_path_factory, saved_network, positions,
                                            value, cut):
    content = bytearray(saved_network.read_bytes())
    for position in positions:
        content[position % len(content)] = value
    if cut is not None:
        content = content[:cut % len(content)]
    judge(worker.run(crash_isolation.load_network_bytes, bytes(content),
                     str(tmp_path_factory.mktemp("load"))))


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
