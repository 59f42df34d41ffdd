"""Run calls into grokreg in a separate worker process, so that a crash (a segfault, an abort)
fails the one case that caused it instead of ending the test run.

The worker functions return ("ok", summary) or ("error", exception type, message); an exception
of any kind is data for the test to judge, and a dead worker is reported as a crash.
"""
import faulthandler
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
import multiprocessing

import numpy as np


class Crash(AssertionError):
    """The worker process died while running a case."""


class Isolated:
    """A worker process that is replaced after a crash."""

    def __init__(self):
        self._executor = None

    def run(self, function, *args):
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=faulthandler.enable)
        try:
            return self._executor.submit(function, *args).result(timeout=120)
        except BrokenProcessPool as exc:
            self._executor = None
            raise Crash(f"the worker process crashed running {function.__name__}{args!r}") from exc

    def close(self):
        if self._executor is not None:
            self._executor.shutdown()


def _outcome(call):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # divergence is reported this way
            return ("ok", call())
    except Exception as exc:  # noqa: BLE001 - every exception is data for the caller
        return ("error", type(exc).__name__, str(exc))


def plain(x, y, n_outputs):
    """The plain-array equivalent of inputs the API accepts: x as a native-endian,
    C-contiguous 2-D array of the same dtype and values; y as int64 labels."""
    x = np.ascontiguousarray(np.asarray(x).reshape(len(x), -1))
    x = x.astype(x.dtype.newbyteorder("="))
    y = np.asarray(y)
    y = y.argmax(axis=1) if y.ndim == 2 else y
    return x, y.astype(np.int64)


def train_and_predict(network_options, x, y, fit_options, compare_plain=False):
    """Network(**network_options).fit(x, y, **fit_options), then predict and evaluate on x;
    with compare_plain, also the same on plain(x, y), whose results must be identical."""
    import grokreg

    def run(x, y):
        net = grokreg.Network(**network_options)
        history = net.fit(x, y, **fit_options)
        predictions = net.predict(x)
        error, accuracy = net.evaluate(x, y)
        parameters = [net.weights_0_1, net.bias_1, net.weights_1_2, net.bias_2]
        return dict(n=len(predictions), predictions=predictions, error=error, accuracy=accuracy,
                    finite=all(np.isfinite(p).all() for p in parameters), epochs=len(history),
                    stop_reason=history.stop_reason, n_outputs=net.n_outputs,
                    parameters=[p.copy() for p in parameters],
                    outputs=net.decision_function(x))

    def call():
        result = run(x, y)
        if compare_plain:
            result["plain"] = run(*plain(x, y, result["n_outputs"]))
        return result

    return _outcome(call)


def read_idx_bytes(content, directory):
    import os

    import grokreg

    path = os.path.join(directory, "case.idx")
    with open(path, "wb") as f:
        f.write(content)
    return _outcome(lambda: grokreg.read_idx(path, max_bytes=1 << 20))


def load_network_bytes(content, directory):
    import os

    import grokreg

    path = os.path.join(directory, "case.npz")
    with open(path, "wb") as f:
        f.write(content)

    def call():
        net = grokreg.Network.load(path)
        return dict(config=repr(net), parameters=[p.copy() for p in net._parameters],
                    state=net._bit_generator.state)

    return _outcome(call)
