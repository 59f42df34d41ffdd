"""Downloading MNIST, against a real HTTP server on 127.0.0.1 started by the tests.

The server serves four small IDX files that the tests make (a stand-in for MNIST, whose
checksums the tests put in place of MNIST's) under /good/, and under other prefixes
misbehaves: /missing/ answers 404, /flaky/ answers 503 once per file, /truncated/ sends half a
file, /corrupt/ sends a valid gzip of the wrong content, /hang/ waits longer than the client's
timeout, /hang-once/ does so once per file, /recompressed/ serves other gzip bytes of the
same content, /huge/ declares more bytes than any MNIST file,
/endless/ streams more without declaring them, /bomb/ sends a gzip that inflates beyond any
MNIST file. No test reaches the internet, and only the last tests need shared/.
"""
import hashlib
import gzip
import http.server
import os
import struct
import subprocess
import sys
import threading
import time
import types
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
    hung = set()

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
        if route == "hang" or (route == "hang-once" and name not in self.hung):
            self.hung.add(name)
            time.sleep(1.5)
        with open(path, "rb") as f:
            body = f.read()
        declared = len(body)
        if route == "recompressed":
            body = gzip.compress(gzip.decompress(body), compresslevel=1, mtime=1)
            declared = len(body)
        if route == "huge":
            declared = download.MAX_DOWNLOAD + 1
        if route == "bomb":
            body = gzip.compress(b"\x00" * (download.MAX_CONTENT + 1))
            declared = len(body)
        if route == "endless":
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(download.MAX_DOWNLOAD // len(body) + 2):
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
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
def fake_mnist(tmp_path_factory):
    """Four small IDX files under MNIST's names, gzipped, and their checksums."""
    directory = tmp_path_factory.mktemp("fake-mnist")
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (30, 28, 28)),
              "train-labels-idx1-ubyte": rng.integers(0, 10, 30),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (12, 28, 28)),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, 12)}
    sha256, md5 = {}, {}
    for name, array in arrays.items():
        content = (struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
                   + array.astype(np.uint8).tobytes())
        compressed = gzip.compress(content, mtime=0)
        (directory / (name + ".gz")).write_bytes(compressed)
        sha256[name] = hashlib.sha256(content).hexdigest()
        md5[name] = hashlib.md5(compressed).hexdigest()
    return directory, sha256, md5, arrays


@pytest.fixture(autouse=True)
def fake_checksums(fake_mnist, monkeypatch, request):
    """The fake files' checksums in place of MNIST's, and caps small enough to test cheaply
    (but for the tests of the real files, marked real_mnist)."""
    if "real_mnist" in request.keywords:
        return
    _, sha256, md5, _ = fake_mnist
    monkeypatch.setattr(download, "SHA256", sha256)
    monkeypatch.setattr(download, "ORIGINAL_MD5", md5)
    monkeypatch.setattr(download, "MAX_DOWNLOAD", 1 << 20)
    monkeypatch.setattr(download, "MAX_CONTENT", 1 << 20)


@pytest.fixture(scope="module")
def server(fake_mnist):
    Handler.source = str(fake_mnist[0])
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


def test_download_fills_an_empty_cache_and_the_next_load_reads_it(server, fake_mnist, tmp_path,
                                                                  monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GROKREG_DATA", str(cache))
    monkeypatch.setenv(download.MIRRORS_ENV, f"{server}/good/")
    before = Handler.hits["good"]
    (x_train, y_train), (x_test, y_test) = grokreg.load_mnist(download=True)
    assert Handler.hits["good"] - before == 4 and only_the_four_files(cache)
    arrays = fake_mnist[3]
    assert np.array_equal(x_train, arrays["train-images-idx3-ubyte"])
    assert np.array_equal(y_test, arrays["t10k-labels-idx1-ubyte"])
    # a second call reads the cache: the mirrors now point nowhere
    monkeypatch.setenv(download.MIRRORS_ENV, "http://127.0.0.1:9/")
    (again, _), _ = grokreg.load_mnist(download=True, n_train=10)
    assert np.array_equal(again, x_train[:10]) and Handler.hits["good"] - before == 4
    assert set(download.verify_mnist(cache).values()) == {"original"}


@pytest.mark.skipif(os.name != "posix", reason="the home directory comes from HOME on POSIX "
                    "systems only (Windows: USERPROFILE)")
def test_the_default_cache_follows_xdg_else_home(monkeypatch, tmp_path):
    monkeypatch.delenv("GROKREG_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert download.default_cache_dir() == str(tmp_path / "grokreg" / "mnist")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert download.default_cache_dir() == str(tmp_path / "home" / ".cache" / "grokreg" / "mnist")
    monkeypatch.setenv("GROKREG_DATA", str(tmp_path / "mine"))
    assert download.default_cache_dir() == str(tmp_path / "mine")


def test_the_command_line_downloads_and_verifies(server, fake_mnist, tmp_path):
    """grokreg data download, run as a user would, with the mirror list in the environment;
    the fake checksums reach the child process through a sitecustomize on its path."""
    _, sha256, md5, _ = fake_mnist
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(
        "from grokreg import download\n"
        f"download.SHA256.update({sha256!r})\ndownload.ORIGINAL_MD5.update({md5!r})\n")
    # the site folder first, and whatever PYTHONPATH already held (a grokreg found there)
    path = os.pathsep.join(filter(None, [str(tmp_path / "site"), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path, GROKREG_DATA="",
               **{download.MIRRORS_ENV: f"{server}/missing/,{server}/good/"})
    result = subprocess.run([sys.executable, "-P", "-m", "grokreg", "data", "download",
                             "--data-dir", str(tmp_path / "cache")], capture_output=True,
                            text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"MNIST is in {tmp_path / 'cache'}"] + [
        f"{name}: ok (the original .gz)" for name in NAMES]
    assert only_the_four_files(tmp_path / "cache")


def test_an_uncompressed_copy_is_verified_by_its_content(fake_mnist, tmp_path):
    directory, *_ = fake_mnist
    for name in NAMES:
        (tmp_path / name).write_bytes(gzip.decompress((directory / (name + ".gz")).read_bytes()))
    assert set(download.verify_mnist(tmp_path).values()) == {"uncompressed"}
    with open(tmp_path / NAMES[0], "r+b") as f:
        f.seek(100)
        f.write(b"\xff")
    assert download.verify_mnist(tmp_path)[NAMES[0]] == "SHA-256 mismatch"


def test_a_timeout_is_retried_after_a_backoff(server, tmp_path, monkeypatch):
    waits = []
    monkeypatch.setattr(download, "time", types.SimpleNamespace(sleep=waits.append))
    Handler.hung.clear()
    fetch(tmp_path, "hang-once", server=server, timeout=0.5, retries=3, backoff=0.25)
    assert only_the_four_files(tmp_path)
    assert waits == [0.25] * 4  # one retry per file, after the first backoff


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
    victim.write_bytes(victim.read_bytes()[:20])
    assert "complete" in download.verify_mnist(tmp_path)["t10k-labels-idx1-ubyte"]
    before = Handler.hits["good"]
    fetch(tmp_path, "good", server=server)
    assert Handler.hits["good"] - before == 1
    assert set(download.verify_mnist(tmp_path).values()) == {"original"}


def test_a_recompressed_copy_is_accepted_by_its_content(server, tmp_path):
    """Mirrors may recompress: the content's SHA-256 decides, the .gz's MD5 tells them apart."""
    fetch(tmp_path, "recompressed", server=server)
    assert set(download.verify_mnist(tmp_path).values()) == {"recompressed"}


@pytest.mark.parametrize("route, message", [
    ("missing", "HTTP 404"),
    ("truncated", "truncated: received"),
    ("corrupt", "SHA-256 of the content is"),
    ("hang", "timed out"),
    ("huge", "1048577 bytes is more than any MNIST file"),
    ("endless", "more bytes than any MNIST file"),
    ("bomb", "decompresses to more than any MNIST file"),
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
    # the book's network on the first 1,000 images, as Network trains it by hand
    net = grokreg.Network(40, seed=1, n_inputs=400, n_outputs=5)
    net.fit(images[:1000].astype(np.uint8), labels[:1000], epochs=3, alpha=0.005)
    accuracy = net.score(images[1100:1300].astype(np.uint8), labels[1100:1300])
    assert len(lines) == 3 and lines[-1].endswith(f"Test-Acc:{accuracy}") and accuracy > 0.95
    info = subprocess.run([sys.executable, "-P", "-m", "grokreg", "data", "info", "--data-dir",
                           str(tmp_path)], capture_output=True, text=True, check=True).stdout
    assert "train: 1100 examples, images (20, 20) uint8" in info and "classes: 5" in info


@pytest.mark.real_mnist
def test_data_command_verifies(mnist_dir, tmp_path):
    command = [sys.executable, "-P", "-m", "grokreg", "data", "verify", "--data-dir"]
    good = subprocess.run(command + [str(mnist_dir)], capture_output=True, text=True)
    assert good.returncode == 0 and good.stdout.count("ok (recompressed") == 4
    bad = subprocess.run(command + [str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stdout.count("FAILED: missing") == 4


@pytest.mark.real_mnist
def test_load_idx_dataset_with_a_prefix(tmp_path, mnist_dir):
    for name in NAMES:
        split_name = name.replace("t10k", "test")
        (tmp_path / f"emnist-digits-{split_name}.gz").write_bytes((mnist_dir / (name + ".gz")).read_bytes())
    (x_train, _), (x_test, y_test) = grokreg.load_idx_dataset(tmp_path, prefix="emnist-digits-",
                                                              test="test", n_test=5)
    (mnist_train, _), (mnist_test, mnist_labels) = grokreg.load_mnist(mnist_dir)
    assert np.array_equal(x_train, mnist_train)  # each split read from its own files
    assert np.array_equal(x_test, mnist_test[:5]) and np.array_equal(y_test, mnist_labels[:5])
