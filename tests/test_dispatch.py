"""The choice among the portable, AVX2 and AVX-512 builds of the kernels, and their equality."""
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from grokreg import _dispatch, _kernels
from grokreg.network import padded_width


def runnable(name):
    """The build's module where this CPU runs it and this grokreg has it, else None (importing
    a wider build on a CPU without its instructions may stop the process)."""
    module, cpu_runs = _dispatch.BUILDS[name]
    return _dispatch._load(name) if cpu_runs() else None


BUILDS = {name: runnable(name) for name in _dispatch.BUILDS}
WIDER = [name for name in ("avx2", "avx512") if BUILDS[name] is not None]


def test_the_widest_build_this_cpu_runs_is_chosen():
    forced = os.environ.get("GROKREG_KERNELS", "auto") or "auto"
    expected = forced if forced != "auto" else ([*WIDER, "baseline"][0] if not WIDER
                                                else WIDER[-1])
    assert _dispatch.BUILD == expected
    assert _dispatch.kernels is BUILDS[expected]
    assert not _kernels.AVX2 and not _kernels.AVX512
    for name in WIDER:
        assert BUILDS[name].AVX2 and BUILDS[name].AVX512 == (name == "avx512")
        assert BUILDS[name].VECTOR_WIDTH == {"avx2": 32, "avx512": 64}[name]


@pytest.mark.parametrize("avx2, avx512", [(False, False), (True, False), (True, True)])
def test_builds_the_cpu_lacks_or_grokreg_lacks_are_never_chosen(monkeypatch, avx2, avx512):
    # the wider builds missing (as on arm64 or MSVC), on CPUs with or without the instructions
    for name in ("_kernels_avx2", "_kernels_avx512"):
        monkeypatch.setitem(sys.modules, f"grokreg.{name}", None)
        monkeypatch.delattr(sys.modules["grokreg"], name, raising=False)
    monkeypatch.setattr(_dispatch, "_baseline", types.SimpleNamespace(
        cpu_has_avx2=lambda: avx2, cpu_has_avx512=lambda: avx512))
    assert _dispatch._choose("auto") == (_dispatch._baseline, "baseline")
    # on a CPU without the instructions the CPU is asked first: the build is never imported
    for name, cpu in (("avx2", avx2), ("avx512", avx512)):
        reason = ("this grokreg was built without that build of the kernels" if cpu
                  else "this CPU cannot run that build")
        with pytest.raises(RuntimeError, match=f"GROKREG_KERNELS={name}, but {reason}"):
            _dispatch._choose(name)


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
    assert code != 0 and ("GROKREG_KERNELS='sse9': choose one of auto, baseline, avx2, avx512"
                          in output)
    for name in ("avx2", "avx512"):
        code, output = build_chosen_with(name, tmp_path)
        if BUILDS[name] is not None:
            assert (code, output) == (0, name)
        else:
            assert code != 0 and f"GROKREG_KERNELS={name}, but" in output


def train_and_evaluate(kernels, dtype, n_hidden, batch_size, keep, book, layout):
    """Every result of three epochs and an evaluation, as bytes: weights, losses, outputs."""
    rng = np.random.default_rng(n_hidden)
    images = rng.integers(0, 256, size=(150, 50)).astype(np.uint8)
    images[images < 190] = 0
    labels = rng.integers(0, 10, size=150).astype(np.int64)
    data = kernels.Dataset(images, labels, dtype=dtype, layout=layout)
    width = padded_width(n_hidden, dtype)  # the same layout for every build
    weights_0_1 = kernels.aligned_zeros((50, width), dtype)
    weights_0_1[:, :n_hidden] = 0.2 * rng.random((50, n_hidden)) - 0.1
    parameters = [weights_0_1, kernels.aligned_zeros(width, dtype),
                  (0.2 * rng.random((n_hidden, 10)) - 0.1).astype(dtype), np.zeros(10, dtype)]
    bit_generator = np.random.MT19937(1) if book else np.random.PCG64(1)
    alpha = 0.01 if batch_size == 1 or not book else 0.0005
    work = kernels.Workspace(data, *parameters, alpha=alpha, batch_size=batch_size, book=book,
                             keep=keep, bit_generator=bit_generator, n_threads=2)
    epochs = [work.train_epoch(np.arange(150)) for _ in range(3)]
    outputs = np.empty((150, 10), dtype)
    evaluation = kernels.evaluate(data, *parameters, outputs=outputs)
    assert all(finite for *_, finite in epochs)  # NaN payloads may differ between builds
    return epochs, evaluation, [p.tobytes() for p in parameters], outputs.tobytes()


@pytest.mark.skipif(not WIDER, reason="no wider build, or a CPU without AVX2")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_hidden", [3, 40, 100, 131])  # every kind of block, one pass or more
@pytest.mark.parametrize("batch_size, keep, book", [(1, 1.0, True), (1, 0.5, True),
                                                    (20, 0.5, True), (1, 0.8, False),
                                                    (20, 0.8, False)])
@pytest.mark.parametrize("layout", ["sparse", "dense"])
def test_the_wider_builds_compute_the_same_bits(dtype, n_hidden, batch_size, keep, book, layout):
    expected = train_and_evaluate(_kernels, dtype, n_hidden, batch_size, keep, book, layout)
    for name in WIDER:
        assert train_and_evaluate(BUILDS[name], dtype, n_hidden, batch_size, keep, book,
                                  layout) == expected, name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("height, width", [(28, 28), (19, 21)])  # MNIST's own loops, any
def test_the_wider_builds_distort_to_the_same_bits(dtype, height, width):
    from grokreg.distortions import Affine, Elastic

    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (40, height * width), dtype=np.uint8)
    values = np.divide(np.arange(256), 255)
    options = (Affine(rotation=20, scale=0.2, shear=0.3, translation=3)
               + Elastic(alpha=34, sigma=4)).kernel_options(height, width)
    expected = np.empty(images.shape, dtype)
    _kernels.distort(images, expected, 99, height=height, width=width, values=values,
                     **options)
    assert np.all(np.isfinite(expected)) and 0.2 < np.count_nonzero(expected) / expected.size
    for name in WIDER:
        out = np.empty_like(expected)
        BUILDS[name].distort(images, out, 99, height=height, width=width, values=values,
                             **options)
        assert np.array_equal(out, expected), name
