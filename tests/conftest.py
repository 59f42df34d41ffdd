"""Shared fixtures: the shared/ folder (MNIST files and the book's NumPy reference) and data.

shared/ is found through GROKREG_SHARED, else beside the repository (../shared). Tests that need
it are skipped when it is absent, unless GROKREG_SHARED is set, in which case its absence fails.
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

import grokreg

REPO = Path(__file__).resolve().parent.parent

# CI replays the same examples on every run, so a pass or a failure there is reproducible; on
# developers' machines each run draws new ones, which is where the property tests find bugs.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def shared_dir():
    configured = os.environ.get("GROKREG_SHARED")
    path = Path(configured) if configured else REPO.parent / "shared"
    if not (path / "reference" / "chapter8_numpy.py").is_file():
        if configured:
            pytest.fail(f"GROKREG_SHARED={configured} holds no reference/chapter8_numpy.py")
        pytest.skip("shared/ (MNIST files and the book's reference) not found")
    return path


@pytest.fixture(scope="session")
def mnist_dir(shared_dir):
    return shared_dir / "data" / "mnist"


@pytest.fixture(scope="session")
def reference(shared_dir):
    """The book's programs (chapter8_numpy.py), imported as a module."""
    spec = importlib.util.spec_from_file_location(
        "chapter8_numpy", shared_dir / "reference" / "chapter8_numpy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def run_reference(shared_dir, mnist_dir):
    """Run chapter8_numpy.py with command-line arguments; returns its stdout."""
    script = shared_dir / "reference" / "chapter8_numpy.py"

    def run(*args):
        result = subprocess.run(
            [sys.executable, str(script), *map(str, args), "--data-dir", str(mnist_dir)],
            check=True, capture_output=True, text=True)
        return result.stdout

    return run


@pytest.fixture(scope="session")
def mnist():
    """The embedded MNIST subset."""
    return grokreg.load_mnist()


@pytest.fixture(scope="session")
def splits(mnist):
    """Small disjoint slices of the embedded subset: x, y to train, to validate, to test."""
    (x_train, y_train), (x_test, y_test) = mnist
    return (x_train[:300], y_train[:300], x_train[1000:1300], y_train[1000:1300],
            x_test[:500], y_test[:500])


@pytest.fixture
def sparse_data():
    """A small random data set with MNIST-like sparsity (about 20% non-zero inputs)."""
    rng = np.random.default_rng(42)
    x = rng.random((40, 30)) * (rng.random((40, 30)) < 0.2)
    labels = rng.integers(0, 4, size=40)
    return x, labels


@pytest.fixture(scope="session")
def dask_cluster():
    """A Dask cluster of two worker processes for the session, on loopback only (its HTTP
    server too)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster:
        yield cluster


@pytest.fixture
def dask_client(dask_cluster):
    distributed = pytest.importorskip("distributed")
    with distributed.Client(dask_cluster) as client:
        yield client


def pytest_collection_modifyitems(items):
    """Tests that use the session's Dask cluster are marked dask, as the test that starts a
    cluster of its own is."""
    for item in items:
        if "dask_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.dask)
