"""MNIST and other IDX data: a validating IDX reader and the loaders.

grokreg ships a subset of MNIST inside the package (training images 0-1999 and all 10,000 test
images), so it runs offline; the full files are read from a directory given as ``data_dir`` or
by the ``GROKREG_DATA`` environment variable.
"""
import gzip
import hashlib
import io
import os
import struct
import zlib
from importlib import resources

import numpy as np

from ._validation import argument_error
# the MNIST files and where they are cached belong to download (which imports nothing of this
# module): data reads and download fetches, in one direction
from .download import DATA_ENV, MNIST_FILES, download_mnist

__all__ = ["read_idx", "load_mnist", "load_idx_dataset", "MNIST_FILES", "EMBEDDED_TRAIN_SIZE",
           "DATA_ENV"]


#: training images in the embedded subset: 0-999 are the book's training set, 1000-1999 a
#: validation set
EMBEDDED_TRAIN_SIZE = 2000

# IDX type codes and the big-endian numpy types they stand for
_IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: refuse IDX payloads larger than this unless asked otherwise (full MNIST is 47 MB): a header
#: that lies about its size, or a gzip bomb, cannot make grokreg allocate without bound
DEFAULT_MAX_BYTES = 1 << 30


def read_idx(path, *, max_bytes=DEFAULT_MAX_BYTES):
    """Read an IDX file (gzipped or raw) into a native-endian numpy array.

    Parameters
    ----------
    path : str or os.PathLike
        The file; gzip is recognised by its content, not its name.
    max_bytes : int
        Largest payload accepted.

    Raises
    ------
    ValueError
        The file is not a well-formed IDX file: bad magic, unknown type code, dimensions that
        do not match the data (truncated or trailing bytes), a payload over ``max_bytes``, or a
        corrupt gzip stream. The message names the file.
    """
    path = os.fspath(path)
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    try:
        with opener(path, "rb") as f:
            return _parse_idx(f, path, max_bytes)
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path}: unreadable ({exc})") from exc


def _parse_idx(f, name, max_bytes):
    header = f.read(4)
    if len(header) < 4:
        raise ValueError(f"{name}: too short for an IDX header")
    zero, type_code, ndim = struct.unpack(">HBB", header)
    if zero != 0 or type_code not in _IDX_TYPES or ndim == 0:
        raise ValueError(f"{name}: not an IDX file (magic 0x{zero:04x} {type_code:02x} {ndim:02x})")
    dims_raw = f.read(4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise ValueError(f"{name}: header truncated")
    dims = struct.unpack(f">{ndim}I", dims_raw)
    dtype = _IDX_TYPES[type_code]
    nbytes = int(np.prod(dims, dtype=object)) * dtype.itemsize
    # with a zero dimension there are no data, but numpy still refuses dimensions whose
    # other sides multiply beyond its index range
    if nbytes == 0 and int(np.prod([d for d in dims if d], dtype=object)) > 1 << 31:
        raise ValueError(f"{name}: header declares impossible dimensions {dims}")
    if nbytes > max_bytes:
        raise ValueError(
            f"{name}: header declares {nbytes} bytes of data (shape {dims}), "
            f"more than max_bytes={max_bytes}"
        )
    payload = f.read(nbytes + 1)  # one byte more tells trailing garbage apart
    if len(payload) != nbytes:
        what = "truncated" if len(payload) < nbytes else "longer than its header says"
        raise ValueError(f"{name}: data {what} (shape {dims} needs {nbytes} bytes)")
    return np.frombuffer(payload, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _file_names(prefix="", train="train", test="t10k"):
    return [f"{prefix}{split}-{kind}-idx{rank}-ubyte" for split in (train, test)
            for kind, rank in (("images", 3), ("labels", 1))]


def _wanted(names):
    return (f"it should hold {', '.join(names)} (each raw or .gz); "
            f"`grokreg data download --data-dir DIR` fetches MNIST's")


def _find(directory, name, names):
    for candidate in (name + ".gz", name):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    raise argument_error("data_dir", f"{directory!r} has no {name} (nor {name}.gz): "
                         f"{_wanted(names)}", FileNotFoundError)


def data_source(data_dir=None):
    """The directory to read (data_dir, else $GROKREG_DATA), or None for the embedded subset."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV) or None
    return None if data_dir is None else os.fspath(data_dir)


def _read_embedded(name):
    """Read one embedded file, checking the SHA-256 of its decompressed content."""
    folder = resources.files("grokreg") / "data"
    sums = dict(
        reversed(line.split()) for line in (folder / "SHA256SUMS").read_text().splitlines()
    )
    content = gzip.decompress((folder / (name + ".gz")).read_bytes())
    if hashlib.sha256(content).hexdigest() != sums[name]:
        raise ValueError(f"grokreg's embedded {name} is corrupt: reinstall grokreg")
    return _parse_idx(io.BytesIO(content), f"embedded {name}", len(content))


def check_count(value, name, available, source, kept_back=""):
    """value (an int, or None for all) of the available examples; source says where they
    come from ("embedded" for the subset), kept_back what else is taken from the same set."""
    if value is None:
        return available
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise argument_error(name, f"must be an int or None, got {type(value).__name__}",
                             TypeError)
    if value < 1:
        raise argument_error(name, f"must be >= 1, got {value}")
    if value > available:
        where = ("the MNIST subset embedded in grokreg" if source == "embedded"
                 else f"the data in {source}")
        hint = (f"; for more, use the full MNIST files: give their directory as data_dir "
                f"or ${DATA_ENV} (`grokreg data download` fetches them)"
                if source == "embedded" else "")
        raise argument_error(name, f"must be at most {available}, got {value}: that is what "
                             f"{where} holds{kept_back}{hint}")
    return int(value)


def load_idx_dataset(directory, *, prefix="", train="train", test="t10k", n_train=None,
                     n_test=None):
    """Load any IDX data set laid out like MNIST: ``(x_train, y_train), (x_test, y_test)``.

    The files are ``{prefix}{train}-images-idx3-ubyte`` and ``{prefix}{train}-labels-idx1-ubyte``,
    and the same with ``test``, each gzipped (``.gz``) or raw: MNIST, Fashion-MNIST and KMNIST
    use the default names; EMNIST's are e.g. ``prefix="emnist-digits-", test="test"``. The
    number of classes is the labels' largest value + 1.

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        Images as stored (MNIST: uint8 of shape (N, 28, 28)), labels as int64 arrays (N,).
    """
    source = os.fspath(directory)
    names = _file_names(prefix, train, test)
    if not os.path.isdir(source):
        raise argument_error("data_dir", f"{source!r} is not a directory: {_wanted(names)}",
                             FileNotFoundError)
    arrays = {}
    for split in (train, test):
        for kind, rank in (("images", 3), ("labels", 1)):
            name = f"{prefix}{split}-{kind}-idx{rank}-ubyte"
            arrays[split, kind] = read_idx(_find(source, name, names))
    return _pair(arrays[train, "images"], arrays[train, "labels"], arrays[test, "images"],
                 arrays[test, "labels"], source, n_train, n_test)


def _pair(x_train, y_train, x_test, y_test, source, n_train, n_test):
    for split, images, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
        if images.ndim < 2 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"{source}: {split} images {images.shape} and labels {labels.shape} do not pair")
        if labels.dtype.kind not in "iu" or (labels.size and labels.min() < 0):
            raise ValueError(f"{source}: {split} labels must be non-negative integers")
    n_train = check_count(n_train, "n_train", len(y_train), source)
    n_test = check_count(n_test, "n_test", len(y_test), source)
    return ((x_train[:n_train], y_train[:n_train].astype(np.int64)),
            (x_test[:n_test], y_test[:n_test].astype(np.int64)))


def load_mnist(data_dir=None, *, n_train=None, n_test=None, download=False):
    """Load MNIST as ``(x_train, y_train), (x_test, y_test)``.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        A directory holding the four standard IDX files (``train-images-idx3-ubyte`` and so on,
        each gzipped or raw). Defaults to the ``GROKREG_DATA`` environment variable; without
        either (and without ``download``), the subset embedded in grokreg is used (2,000
        training, 10,000 test images).
    n_train, n_test : int, optional
        Keep the first ``n_train`` training and ``n_test`` test examples (default: all).
    download : bool
        Fetch the full data set into ``data_dir`` (default: ``GROKREG_DATA``, else
        ``$XDG_CACHE_HOME/grokreg/mnist`` or ``~/.cache/grokreg/mnist``) unless it already
        holds verified files; see ``grokreg.download.download_mnist``.

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        Images as uint8 arrays of shape (N, 28, 28), labels as int64 arrays of shape (N,).
    """
    if download:
        data_dir = download_mnist(data_dir)
    data_dir = data_source(data_dir)
    if data_dir is not None:
        return load_idx_dataset(data_dir, n_train=n_train, n_test=n_test)
    arrays = [_read_embedded(name) for name in MNIST_FILES.values()]
    return _pair(*arrays, "embedded", n_train, n_test)
