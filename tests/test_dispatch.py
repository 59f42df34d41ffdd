"""The choice between the portable and the AVX2 build of the kernels, and their equality."""
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from grokreg import _dispatch, _kernels

_kernels_avx2 = None
if _kernels.cpu_has_avx2():  # importing the AVX2 build on another CPU may stop the process
    try:
        from grokreg import _kernels_avx2
    except ImportError:  # built for a CPU family without the variant (not x86-64, or MSVC)
        pass

needs_avx2 = pytest.mark.skipif(_kernels_avx2 is None,
                                reason="no AVX2 build, or a CPU without AVX2")


def test_the_fastest_build_this_cpu_runs_is_chosen():
    # unless this run was told to use the portable build (as CI's second run is)
    forced = os.environ.get("GROKREG_KERNELS") == "baseline"
    runs_avx2 = _kernels_avx2 is not None and not forced
    assert _dispatch.BUILD == ("avx2" if runs_avx2 else "baseline")
    assert _dispatch.kernels is (_kernels_avx2 if runs_avx2 else _kernels)
    assert not _kernels.AVX2 and (_kernels_avx2 is None or _kernels_avx2.AVX2)


@pytest.mark.parametrize("cpu_has_avx2", [False, True])
def test_without_avx2_or_its_build_the_portable_build_is_chosen(monkeypatch, cpu_has_avx2):
    # the AVX2 build missing (as on arm64 or MSVC); a CPU with or without AVX2
    monkeypatch.setitem(sys.modules, "grokreg._kernels_avx2", None)
    monkeypatch.delattr(sys.modules["grokreg"], "_kernels_avx2", raising=False)
    monkeypatch.setattr(_dispatch, "_baseline",
                        types.SimpleNamespace(cpu_has_avx2=lambda: cpu_has_avx2))
    assert _dispatch._choose("auto") == (_dispatch._baseline, "baseline")
    # on a CPU without AVX2 the CPU is asked first: the build is never even imported
    reason = ("this grokreg was built without the AVX2 kernels" if cpu_has_avx2
              else "this CPU has no AVX2")
    with pytest.raises(RuntimeError, match=f"GROKREG_KERNELS=avx2, but {reason}"):
        _dispatch._choose("avx2")


def build_chosen_with(value, directory):
    """(returncode, output) of importing grokreg with GROKREG_KERNELS=value, in a new process
    started in directory (not the source tree, which has no compiled kernels)."""
    env = {**os.environ, "GROKREG_KERNELS": value}
    result = subprocess.run([sys.executable, "-c", "import grokreg._dispatch as d; print(d.BUILD)"],
                            capture_output=True, text=True, env=env, cwd=directory)
    return result.returncode, result.stdout.strip() + result.stderr


def test_grokreg_kernels_forces_a_build(tmp_path):
    assert build_chosen_with("baseline", tmp_path) == (0, "baseline")
    code, output = build_chosen_with("sse9", tmp_path)
    assert code != 0 and "GROKREG_KERNELS='sse9': choose one of auto, baseline, avx2" in output
    code, output = build_chosen_with("avx2", tmp_path)
    if _kernels_avx2 is not None:
        assert (code, output) == (0, "avx2")
    else:
        assert code != 0 and "GROKREG_KERNELS=avx2, but" in output


def train_and_evaluate(kernels, dtype, n_hidden, batch_size, keep, book):
    """Every result of three epochs and an evaluation, as bytes: weights, losses, outputs."""
    rng = np.random.default_rng(n_hidden)
    images = rng.integers(0, 256, size=(150, 50)).astype(np.uint8)
    images[images < 190] = 0
    labels = rng.integers(0, 10, size=150).astype(np.int64)
    rows = kernels.sparse_pixels(images, np.divide(np.arange(256), 255, dtype=dtype))
    parameters = [(0.2 * rng.random((50, n_hidden)) - 0.1).astype(dtype), np.zeros(n_hidden, dtype),
                  (0.2 * rng.random((n_hidden, 10)) - 0.1).astype(dtype), np.zeros(10, dtype)]
    bit_generator = np.random.MT19937(1) if book else np.random.PCG64(1)
    alpha = 0.01 if batch_size == 1 or not book else 0.0005
    epochs = [kernels.train_epoch(*rows, labels, np.arange(150, dtype=np.int64), *parameters,
                                  alpha, batch_size, book, keep, bit_generator, n_threads=2)
              for _ in range(3)]
    outputs = np.empty((150, 10), dtype)
    evaluation = kernels.evaluate(*rows, labels, *parameters, outputs=outputs)
    assert all(finite for *_, finite in epochs)  # NaN payloads may differ between builds
    return epochs, evaluation, [p.tobytes() for p in parameters], outputs.tobytes()


@needs_avx2
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_hidden", [3, 40, 100, 131])  # every kind of block, one pass or more
@pytest.mark.parametrize("batch_size, keep, book", [(1, 1.0, True), (1, 0.5, True),
                                                    (20, 0.5, True), (1, 0.8, False),
                                                    (20, 0.8, False)])
def test_the_avx2_build_computes_the_same_bits(dtype, n_hidden, batch_size, keep, book):
    assert (train_and_evaluate(_kernels_avx2, dtype, n_hidden, batch_size, keep, book)
            == train_and_evaluate(_kernels, dtype, n_hidden, batch_size, keep, book))
