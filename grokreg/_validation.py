"""Argument checks shared by the public API: each raises TypeError/ValueError naming the argument.

Everything the kernels rely on is established here, once per call, so the compiled loops can run
without bounds checks.
"""
import numbers

import numpy as np

def check_int(value, name, minimum=None, maximum=None):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_real(value, name, *, low=None, high=None, low_open=False, high_open=False):
    """A finite real number within [low, high] (either end open when asked)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value >= high if high_open else value > high):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")
    return value


def check_dtype(dtype):
    """float32 or float64, named any way numpy understands (but not None, numpy's float64)."""
    try:
        resolved = None if dtype is None else np.dtype(dtype)
    except (TypeError, ValueError):
        resolved = None
    if resolved not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return resolved


def _as_array(value, name):
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an array, got {type(value).__name__}")
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and other non-arrays
        raise TypeError(f"{name} must be convertible to a numeric array ({exc})") from exc
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {array.dtype}")
    return array


def as_inputs(x, n_inputs, dtype, name="x"):
    """Images as a C-contiguous (N, n_inputs) array: of dtype, or uint8 pixels kept as such.

    uint8 images (pixels 0-255) stand for pixel / 255, as in the book; they stay uint8 here and
    are scaled when their sparse rows are built (``network.sparse_rows``), which saves a dense
    floating-point copy of the data set. Floating-point images are used as given, converted to
    dtype. (N, H, W) images are flattened.
    """
    array = _as_array(x, name)
    if array.dtype.kind in "bi" or (array.dtype.kind == "u" and array.dtype != np.uint8):
        raise TypeError(
            f"{name} must be uint8 pixels (0-255, scaled by 1/255) or floating point, "
            f"got dtype {array.dtype}"
        )
    if array.ndim == 3:
        array = array.reshape(array.shape[0], -1)
    if array.ndim != 2:
        raise ValueError(f"{name} must have shape (N, {n_inputs}) or (N, H, W), got {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}): at least one example is needed")
    if array.shape[1] != n_inputs:
        raise ValueError(f"{name} has {array.shape[1]} features per example, the network {n_inputs}")
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    with np.errstate(over="ignore"):  # reported below, naming the argument
        converted = np.ascontiguousarray(array, dtype=dtype)
    if not np.isfinite(converted).all():
        raise ValueError(f"{name} contains NaN or infinite values (in {dtype})")
    return converted


def as_labels(y, n_examples, n_outputs, name="y"):
    """Class labels as a C-contiguous int64 array: from integer labels or one-hot rows."""
    array = _as_array(y, name)
    if array.ndim == 2:
        if array.shape[1] != n_outputs:
            raise ValueError(f"{name} one-hot rows must have {n_outputs} columns, got {array.shape[1]}")
        if not (np.isin(array, (0, 1)).all() and (array.sum(axis=1) == 1).all()):
            raise ValueError(f"{name} is 2-D but not one-hot (each row needs a single 1, the rest 0)")
        labels = array.argmax(axis=1)
    elif array.ndim == 1:
        if array.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integer class labels, got dtype {array.dtype}")
        labels = array
    else:
        raise ValueError(f"{name} must have shape (N,) or (N, {n_outputs}), got {array.shape}")
    if labels.shape[0] != n_examples:
        raise ValueError(f"{name} has {labels.shape[0]} labels for {n_examples} examples")
    if labels.size and (labels.min() < 0 or labels.max() >= n_outputs):
        raise ValueError(f"{name} must hold labels in 0..{n_outputs - 1}")
    return np.ascontiguousarray(labels, dtype=np.int64)


def as_dataset(data, n_inputs, n_outputs, dtype, name):
    """An (x, y) pair, converted; name is the argument, e.g. 'test_data'."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{name} must be a pair (x, y)")
    x = as_inputs(data[0], n_inputs, dtype, f"{name}[0]")
    return x, as_labels(data[1], len(x), n_outputs, f"{name}[1]")
