"""Downloading MNIST into a verified cache.

Each of the four standard files is fetched from a list of mirrors tried in order, checked
before it is accepted (the SHA-256 of its decompressed IDX content, which every mirror shares,
and the MD5 of the original ``.gz``, which only mirrors serving the original bytes match), then
written under a temporary name and renamed into place: an interrupted or corrupted download
never leaves a file that a later run would trust.
"""
import gzip
import hashlib
import os
import sys
import time
import zlib

from ._files import atomic_write
from .progress import Progress

__all__ = ["DownloadError", "download_mnist", "verify_mnist", "default_cache_dir", "mirrors",
           "MIRRORS_ENV", "DEFAULT_MIRRORS", "DATA_ENV", "MNIST_FILES"]

#: where grokreg looks for the full MNIST files, and downloads them
DATA_ENV = "GROKREG_DATA"
MIRRORS_ENV = "GROKREG_MNIST_MIRRORS"

#: the standard MNIST file names, without the ``.gz`` that a directory may add
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

#: tried in order; each file is fetched as base URL + file name
DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",  # torchvision's first choice
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",  # the original site; answers 403/404 these days
)

#: SHA-256 of each file's decompressed content: the same on every mirror
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

#: MD5 of the original .gz files as LeCun et al. published them
ORIGINAL_MD5 = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}

MAX_DOWNLOAD = 64 << 20  # the largest file is 9.9 MB compressed
MAX_CONTENT = 64 << 20  # and 47 MB decompressed


class DownloadError(OSError):
    """No mirror delivered a file that passed verification."""


def default_cache_dir():
    """GROKREG_DATA if set, else $XDG_CACHE_HOME/grokreg/mnist, else ~/.cache/grokreg/mnist."""
    if os.environ.get(DATA_ENV):
        return os.environ[DATA_ENV]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "grokreg", "mnist")


def mirrors():
    """The mirror list: GROKREG_MNIST_MIRRORS (comma-separated base URLs) or the defaults."""
    configured = [m.strip() for m in os.environ.get(MIRRORS_ENV, "").split(",") if m.strip()]
    return tuple(configured) or DEFAULT_MIRRORS


def check_content(name, compressed):
    """Verify downloaded or cached .gz bytes; returns 'original' or 'recompressed'.

    Raises ValueError saying what is wrong.
    """
    try:
        content = _decompress(compressed)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"not a complete gzip file ({exc})") from exc
    digest = hashlib.sha256(content).hexdigest()
    if digest != SHA256[name]:
        raise ValueError(f"SHA-256 of the content is {digest}, expected {SHA256[name]}")
    original = hashlib.md5(compressed, usedforsecurity=False).hexdigest() == ORIGINAL_MD5[name]
    return "original" if original else "recompressed"


def _decompress(compressed):
    with gzip.GzipFile(fileobj=_Bytes(compressed)) as f:
        content = f.read(MAX_CONTENT + 1)
    if len(content) > MAX_CONTENT:
        raise ValueError("decompresses to more than any MNIST file")
    return content


class _Bytes:
    """A minimal read-only file over bytes (io.BytesIO would copy them)."""

    def __init__(self, data):
        self._view, self._position = memoryview(data), 0

    def read(self, size=-1):
        end = len(self._view) if size is None or size < 0 else self._position + size
        chunk = self._view[self._position:end].tobytes()
        self._position += len(chunk)
        return chunk


def verify_mnist(directory):
    """Check the four MNIST files in directory; returns {name: status}.

    status is 'original' or 'recompressed' (content verified), or a sentence saying what is
    wrong ('missing', a checksum mismatch...).
    """
    results = {}
    for name in MNIST_FILES.values():
        path = os.path.join(os.fspath(directory), name + ".gz")
        raw = os.path.join(os.fspath(directory), name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                data = f.read(MAX_DOWNLOAD + 1)
        elif os.path.isfile(raw):  # an uncompressed copy: check its content directly
            with open(raw, "rb") as f:
                content = f.read(MAX_CONTENT + 1)
            ok = hashlib.sha256(content).hexdigest() == SHA256[name]
            results[name] = "uncompressed" if ok else "SHA-256 mismatch"
            continue
        else:
            results[name] = "missing"
            continue
        try:
            results[name] = check_content(name, data)
        except ValueError as exc:
            results[name] = str(exc)
    return results


def _get(url, timeout, progress):
    """The body of url, checked against Content-Length; raises on HTTP errors and timeouts."""
    import urllib.request  # here, not at import: it costs a tenth of grokreg's start-up

    request = urllib.request.Request(url, headers={"User-Agent": "grokreg"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        declared = response.headers.get("Content-Length")
        total = int(declared) if declared and declared.isdigit() else None
        if total is not None and total > MAX_DOWNLOAD:
            raise ValueError(f"{total} bytes is more than any MNIST file")
        chunks, received = [], 0
        bar = (Progress(total, url.rsplit("/", 1)[-1], unit="B", unit_scale=True)
               if progress else None)
        try:
            while True:
                chunk = response.read(1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
                if received > MAX_DOWNLOAD:
                    raise ValueError("more bytes than any MNIST file")
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
    if total is not None and received != total:
        raise ValueError(f"truncated: received {received} of {total} bytes")
    return b"".join(chunks)


def _install(directory, name, data):
    """Write data as directory/name.gz, whole or not at all."""
    with atomic_write(os.path.join(directory, name + ".gz")) as f:
        f.write(data)


def _fetch(name, directory, bases, timeout, retries, backoff, progress):
    import http.client
    import urllib.error

    failures = []
    for base in bases:
        url = base.rstrip("/") + "/" + name + ".gz"
        for attempt in range(retries):
            if attempt:
                time.sleep(backoff * 2 ** (attempt - 1))
            try:
                data = _get(url, timeout, progress)
                check_content(name, data)
            except urllib.error.HTTPError as exc:
                failures.append(f"{url}: HTTP {exc.code} {exc.reason}")
                if exc.code < 500:
                    break  # the mirror does not have it; asking again will not help
            except ValueError as exc:  # received, but not the right bytes
                failures.append(f"{url}: {exc}")
                break
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                failures.append(f"{url}: {type(reason).__name__}: {reason}")
            else:
                _install(directory, name, data)
                return
    tried = "\n  ".join(failures)
    raise DownloadError(
        f"could not download {name}.gz from any mirror; tried:\n  {tried}\n"
        f"Offline? Put the four MNIST files in a directory and pass data_dir= (or --data-dir, "
        f"or set {DATA_ENV}); other mirrors can be listed in {MIRRORS_ENV}.")


def download_mnist(directory=None, *, base_urls=None, timeout=30.0, retries=3, backoff=1.0,
                   progress=None):
    """Make sure directory holds the four verified MNIST files, downloading what is missing.

    Parameters
    ----------
    directory : str or os.PathLike, optional
        Where the files go (default: ``default_cache_dir()``).
    base_urls : sequence of str, optional
        Mirrors to try in order (default: ``mirrors()``, which reads GROKREG_MNIST_MIRRORS).
    timeout : float
        Seconds a connection or a read may wait before the attempt counts as failed.
    retries : int
        Attempts per mirror for failures that may pass (timeouts, 5xx); waits backoff,
        2 * backoff, ... between them.
    progress : bool, optional
        A progress bar on stderr (default: when stderr is a terminal).

    Returns
    -------
    str
        The directory.

    Raises
    ------
    DownloadError
        A file could not be had from any mirror; the message lists every URL tried and why.
    """
    directory = os.fspath(default_cache_dir() if directory is None else directory)
    os.makedirs(directory, exist_ok=True)
    bases = tuple(mirrors() if base_urls is None else base_urls)
    if progress is None:
        progress = sys.stderr.isatty()
    status = verify_mnist(directory)
    for name in MNIST_FILES.values():
        if status[name] in ("original", "recompressed", "uncompressed"):
            continue
        _fetch(name, directory, bases, timeout, max(1, int(retries)), backoff, progress)
    return directory
