"""Downloading MNIST, against a real HTTP server on 127.0.0.1 started by the tests.

The server serves shared/data/mnist (recompressed copies of the original files) under
/good/, and under other prefixes misbehaves: /missing/ answers 404, /flaky/ answers 503 once
per file, /truncated/ sends half a file, /corrupt/ sends a valid gzip of the wrong content,
/hang/ waits longer than the client's timeout. No test reaches the internet.
"""
import gzip
import http.server
import os
import struct
import subprocess
import sys
import threading
import time
from collections import Counter

import numpy as np
import pytest

import grokreg
from grokreg import download
from grokreg.data import MNIST_FILES

NAMES = list(MNIST_FILES.values())


class Handler(http.server.BaseHTTPRequestHandler):
    source = None
    hits = Counter()
    flaky_seen = set()

    def log_message(self, *args):
        pass

    def do_GET(self):
        _, route, name = self.path.split("/", 2)
        type(self).hits[route] += 1
        path = os.path.join(self.source, name)
        if route == "missing" or not os.path.isfile(path):
            self.send_error(404)
            return
        if route == "flaky" and name not in self.flaky_seen:
            self.flaky_seen.add(name)
            self.send_error(503)
            return
        if route == "hang":
            time.sleep(1.5)
        with open(path, "rb") as f:
            body = f.read()
        declared = len(body)
        if route == "truncated":
            body = body[: len(body) // 2]
        if route == "corrupt":
            body = declared_body = gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 3) + b"abc")
            declared = len(declared_body)
        self.send_response(200)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture(scope="module")
def server(mnist_dir):
    Handler.source = str(mnist_dir)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def fetch(directory, *routes, server, **options):
    options = {"timeout": 5.0, "retries": 2, "backoff": 0.0, "progress": False, **options}
    return download.download_mnist(directory, base_urls=[f"{server}/{r}/" for r in routes],
                                   **options)


def only_the_four_files(directory):
    return sorted(os.listdir(directory)) == sorted(name + ".gz" for name in NAMES)


def test_download_fills_an_empty_cache_and_the_next_load_reads_it(server, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GROKREG_DATA", str(cache))
    monkeypatch.setenv(download.MIRRORS_ENV, f"{server}/good/")
    before = Handler.hits["good"]
    (x_train, y_train), (x_test, y_test) = grokreg.load_mnist(download=True)
    assert Handler.hits["good"] - before == 4 and only_the_four_files(cache)
    assert x_train.shape == (60000, 28, 28) and y_test.shape == (10000,)
    # a second call reads the cache: the mirrors now point nowhere
    monkeypatch.setenv(download.MIRRORS_ENV, "http://127.0.0.1:9/")
    (again, _), _ = grokreg.load_mnist(download=True, n_train=10)
    assert np.array_equal(again, x_train[:10]) and Handler.hits["good"] - before == 4
    assert set(download.verify_mnist(cache).values()) == {"recompressed"}


def test_the_default_cache_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("GROKREG_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert download.default_cache_dir() == str(tmp_path / "grokreg" / "mnist")


def test_a_failing_mirror_falls_through_to_the_next(server, tmp_path):
    fetch(tmp_path, "missing", "good", server=server)
    assert only_the_four_files(tmp_path)


def test_a_server_error_is_retried(server, tmp_path):
    before = Handler.hits["flaky"]
    fetch(tmp_path, "flaky", server=server, retries=2)
    assert only_the_four_files(tmp_path) and Handler.hits["flaky"] - before == 8


def test_a_corrupted_cached_file_is_fetched_again(server, tmp_path):
    fetch(tmp_path, "good", server=server)
    victim = tmp_path / "t10k-labels-idx1-ubyte.gz"
    victim.write_bytes(victim.read_bytes()[:100])
    assert "complete" in download.verify_mnist(tmp_path)["t10k-labels-idx1-ubyte"]
    before = Handler.hits["good"]
    fetch(tmp_path, "good", server=server)
    assert Handler.hits["good"] - before == 1
    assert set(download.verify_mnist(tmp_path).values()) == {"recompressed"}


@pytest.mark.parametrize("route, message", [
    ("missing", "HTTP 404"),
    ("truncated", "truncated: received"),
    ("corrupt", "SHA-256 of the content is"),
    ("hang", "timed out"),
])
def test_every_fault_is_explained_and_leaves_the_cache_clean(server, tmp_path, route, message):
    started = time.perf_counter()
    with pytest.raises(download.DownloadError) as caught:
        fetch(tmp_path, route, server=server, timeout=0.5, retries=1)
    text = str(caught.value)
    assert message in text and f"{server}/{route}/train-images-idx3-ubyte.gz" in text
    assert "data_dir" in text and download.MIRRORS_ENV in text
    assert os.listdir(tmp_path) == []  # no file, no temporary
    assert time.perf_counter() - started < 10


def test_reproduce_runs_on_another_idx_data_set(tmp_path):
    """A made-up data set in MNIST's layout, 20x20 images and 5 classes."""
    rng = np.random.default_rng(0)

    def write(name, array):
        header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
        with gzip.open(tmp_path / (name + ".gz"), "wb") as f:
            f.write(header + array.astype(np.uint8).tobytes())

    labels = rng.integers(0, 5, 1300)
    rows = np.arange(20)[None, :, None] // 4 == labels[:, None, None]  # class c: rows 4c..4c+3
    images = (rng.random((1300, 20, 20)) < 0.5) * rows * 255
    write("train-images-idx3-ubyte", images[:1100])
    write("train-labels-idx1-ubyte", labels[:1100])
    write("t10k-images-idx3-ubyte", images[1100:])
    write("t10k-labels-idx1-ubyte", labels[1100:])
    result = subprocess.run(
        [sys.executable, "-P", "-m", "grokreg", "reproduce", "overfit", "--data-dir", str(tmp_path),
         "--epochs", "3", "--n-test", "200", "--eval-every", "1"],
        capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and float(lines[-1].rsplit("Test-Acc:", 1)[1]) > 0.5
    info = subprocess.run([sys.executable, "-P", "-m", "grokreg", "data", "info", "--data-dir",
                           str(tmp_path)], capture_output=True, text=True, check=True).stdout
    assert "train: 1100 examples, images (20, 20) uint8" in info and "classes: 5" in info


def test_data_command_verifies(mnist_dir, tmp_path):
    command = [sys.executable, "-P", "-m", "grokreg", "data", "verify", "--data-dir"]
    good = subprocess.run(command + [str(mnist_dir)], capture_output=True, text=True)
    assert good.returncode == 0 and good.stdout.count("ok (recompressed") == 4
    bad = subprocess.run(command + [str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stdout.count("FAILED: missing") == 4


def test_load_idx_dataset_with_a_prefix(tmp_path, mnist_dir):
    for name in NAMES:
        split_name = name.replace("t10k", "test")
        (tmp_path / f"emnist-digits-{split_name}.gz").write_bytes((mnist_dir / (name + ".gz")).read_bytes())
    (x_train, _), (x_test, y_test) = grokreg.load_idx_dataset(tmp_path, prefix="emnist-digits-",
                                                              test="test", n_test=5)
    assert x_train.shape == (60000, 28, 28) and y_test.shape == (5,)
