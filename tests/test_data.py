"""The IDX reader on good and broken files, and load_mnist's sources."""
import gzip
import os
import re
import struct

import numpy as np
import pytest

import grokreg
from grokreg import data


def idx(array, type_code=0x08):
    header = struct.pack(">HBB", 0, type_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write(path, content, gzipped=False):
    path.write_bytes(gzip.compress(content) if gzipped else content)
    return path


@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize("dtype, code", [(">u1", 0x08), (">i1", 0x09), (">i2", 0x0B),
                                         (">i4", 0x0C), (">f4", 0x0D), (">f8", 0x0E)])
def test_read_idx_round_trips_every_type(tmp_path, gzipped, dtype, code):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    result = grokreg.read_idx(write(tmp_path / "f", idx(array, code), gzipped))
    assert result.dtype.isnative and result.dtype == array.dtype.newbyteorder("=")
    assert np.array_equal(result, array)


GOOD = idx(np.arange(12, dtype=np.uint8).reshape(3, 4))


@pytest.mark.parametrize("content, message", [
    (b"", "too short"),
    (b"\x00\x00", "too short"),
    (b"\x01\x00\x08\x02" + GOOD[4:], "not an IDX file"),
    (b"\x00\x00\x07\x02" + GOOD[4:], "not an IDX file"),
    (b"\x00\x00\x08\x00", "not an IDX file"),
    (GOOD[:6], "header truncated"),
    (GOOD[:-1], "truncated"),
    (GOOD + b"\x00", "longer than its header says"),
    (struct.pack(">HBBIII", 0, 8, 3, 60000, 60000, 60000), "max_bytes"),
])
@pytest.mark.parametrize("gzipped", [False, True])
def test_read_idx_refuses_broken_files(tmp_path, content, message, gzipped):
    with pytest.raises(ValueError, match=message):
        grokreg.read_idx(write(tmp_path / "f", content, gzipped))


def test_read_idx_refuses_a_corrupt_gzip_stream(tmp_path):
    compressed = bytearray(gzip.compress(GOOD))
    compressed[12] ^= 0xFF
    with pytest.raises(ValueError, match="unreadable"):
        grokreg.read_idx(write(tmp_path / "f", bytes(compressed)))
    with pytest.raises(ValueError, match="unreadable"):
        grokreg.read_idx(write(tmp_path / "g", gzip.compress(GOOD)[:-8]))


def test_read_idx_bounds_memory_of_a_gzip_bomb(tmp_path):
    bomb = idx(np.zeros((1000, 1000), dtype=np.uint8))  # 1 MB, compresses to ~1 kB
    path = write(tmp_path / "bomb", bomb, gzipped=True)
    with pytest.raises(ValueError, match="max_bytes"):
        grokreg.read_idx(path, max_bytes=100_000)


def test_embedded_subset(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (2000, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28)
    assert y_train.dtype == np.int64 and y_train.shape == (2000,)
    # MNIST's published test-set class counts, and the book's 1,000 training images'
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(y_train[:1000]).tolist() == [97, 116, 99, 93, 105, 92, 94, 117, 87, 100]
    assert np.count_nonzero(x_train[:1000]) == 148420  # 18.9% ink


def test_embedded_subset_is_the_start_of_the_real_files(mnist, mnist_dir):
    (x_train, y_train), (x_test, y_test) = mnist
    full = grokreg.read_idx(mnist_dir / "train-images-idx3-ubyte.gz")
    assert np.array_equal(full[:2000], x_train)
    assert np.array_equal(grokreg.read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz"), y_test)


def test_embedded_checksum_is_verified(tmp_path, monkeypatch):
    folder = tmp_path / "grokreg" / "data"
    folder.mkdir(parents=True)
    name = "t10k-labels-idx1-ubyte"
    (folder / "SHA256SUMS").write_text("0" * 64 + f"  {name}\n")
    write(folder / (name + ".gz"), GOOD, gzipped=True)
    monkeypatch.setattr(data.resources, "files", lambda package: tmp_path / "grokreg")
    with pytest.raises(ValueError, match="corrupt"):
        data._read_embedded(name)


def test_asking_for_more_than_the_embedded_subset_holds(monkeypatch):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    with pytest.raises(ValueError, match="GROKREG_DATA"):
        grokreg.load_mnist(n_train=2001)
    with pytest.raises(ValueError, match="n_test"):
        grokreg.load_mnist(n_test=0)
    with pytest.raises(TypeError, match="n_train"):
        grokreg.load_mnist(n_train=1.5)


@pytest.fixture
def tiny_dir(tmp_path):
    """A data directory in the standard layout, some files raw and some gzipped."""
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "train_labels": np.array([0, 1, 2, 3, 4, 5], dtype=np.uint8),
        "test_images": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "test_labels": np.array([7, 8, 9], dtype=np.uint8),
    }
    for i, (key, array) in enumerate(arrays.items()):
        name = data.MNIST_FILES[key] + (".gz" if i % 2 else "")
        write(tmp_path / name, idx(array), gzipped=bool(i % 2))
    return tmp_path, arrays


def test_load_mnist_from_a_directory_or_the_environment(tiny_dir, monkeypatch):
    directory, arrays = tiny_dir
    (x_train, y_train), (x_test, y_test) = grokreg.load_mnist(directory, n_train=4)
    assert np.array_equal(x_train, arrays["train_images"][:4])
    assert np.array_equal(y_test, arrays["test_labels"]) and y_test.dtype == np.int64
    monkeypatch.setenv(data.DATA_ENV, str(directory))
    (x_train, _), _ = grokreg.load_mnist()
    assert len(x_train) == 6
    with pytest.raises(ValueError, match=f"n_train must be at most 6, got 7: that is what the "
                       f"data in {re.escape(str(directory))} holds$"):
        grokreg.load_mnist(n_train=7)


def test_load_mnist_refuses_a_bad_directory(tiny_dir, tmp_path):
    directory, _ = tiny_dir
    with pytest.raises(FileNotFoundError, match="not a directory"):
        grokreg.load_mnist(tmp_path / "missing")
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels"):
        grokreg.load_mnist(directory)
    write(directory / "t10k-labels-idx1-ubyte", idx(np.zeros(2, dtype=np.uint8)))
    with pytest.raises(ValueError, match="do not pair"):
        grokreg.load_mnist(directory)


def test_full_mnist_from_shared(mnist_dir):
    (x_train, y_train), (x_test, y_test) = grokreg.load_mnist(mnist_dir)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265,
                                             5851, 5949]  # MNIST's published class counts


def test_read_idx_refuses_impossible_dimensions_around_a_zero(tmp_path):
    """A zero dimension means no data, but the others must still be dimensions numpy can
    hold (found by the property tests: numpy's own "array is too big" named no file)."""
    path = write(tmp_path / "zero.idx", bytes([0, 0, 8, 3]) + b"".join(
        d.to_bytes(4, "big") for d in (0, 2**32 - 1, 2**32 - 1)))
    with pytest.raises(ValueError, match=r"zero.idx: header declares impossible dimensions"):
        grokreg.read_idx(path)


@pytest.mark.parametrize("labels, message", [
    (np.array([0, -1, 2], dtype=np.int8), "train labels must be non-negative integers"),
    (np.array([0.0, 1.5, 2.0], dtype=">f4"), "train labels must be non-negative integers"),
])
def test_a_data_set_with_negative_or_fractional_labels_is_refused(tiny_dir, labels, message):
    directory, _ = tiny_dir
    code = 0x09 if labels.dtype.kind == "i" else 0x0D
    images = np.zeros((3, 2, 2), dtype=np.uint8)
    for name in os.listdir(directory):
        if name.startswith("train-"):
            os.remove(directory / name)
    write(directory / "train-images-idx3-ubyte", idx(images))
    write(directory / "train-labels-idx1-ubyte", idx(labels, code))
    with pytest.raises(ValueError, match=message):
        grokreg.load_idx_dataset(directory)
