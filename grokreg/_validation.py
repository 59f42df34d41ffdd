"""Argument checks shared by the public API: each raises TypeError/ValueError naming the argument.

User input is checked and converted here, once per call, and the messages are written for the
person who passed it. The kernels' entry points still check the shapes and indices they rely
on (cheaply, without these messages), so a direct call with inconsistent arrays raises too.
"""
import numbers
import os
import sys
import warnings

import numpy as np


def argument_error(argument, problem, kind=ValueError):
    """kind(f"{argument} {problem}"), carrying .argument and .problem: the command line
    reports it under the flag that set the argument."""
    error = kind(f"{argument} {problem}")
    error.argument, error.problem = argument, problem
    return error


def warn_user(message, category=UserWarning):
    """warnings.warn, attributed to the first caller outside grokreg."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def check_int(value, name, minimum=None, maximum=None):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise argument_error(name, f"must be an int, got {type(value).__name__}", TypeError)
    value = int(value)
    if minimum is not None and value < minimum:
        raise argument_error(name, f"must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise argument_error(name, f"must be <= {maximum}, got {value}")
    return value


def check_real(value, name, *, low=None, high=None, low_open=False, high_open=False):
    """A finite real number within [low, high] (either end open when asked)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise argument_error(name, f"must be a real number, got {type(value).__name__}",
                             TypeError)
    value = float(value)
    if not np.isfinite(value):
        raise argument_error(name, f"must be finite, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        raise argument_error(name, f"must be {'>' if low_open else '>='} {low:g}, got {value:g}")
    if high is not None and (value >= high if high_open else value > high):
        raise argument_error(name, f"must be {'<' if high_open else '<='} {high:g}, got {value:g}")
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


# What each uint8 pixel value stands for: pixel / 255 computed as NumPy does in the target
# precision (float64: the book's x / 255; float32: no float64 detour).
PIXEL_VALUES = {np.dtype(t): np.divide(np.arange(256, dtype=np.uint8), 255, dtype=t)
                for t in (np.float32, np.float64)}


def as_inputs(x, n_inputs, dtype, name="x"):
    """Images as a C-contiguous (N, n_inputs) array: of dtype, or uint8 pixels kept as such.

    uint8 images (pixels 0-255) stand for pixel / 255, as in the book; they stay uint8 here and
    are scaled when the kernels read them (``network.dataset``), which saves a dense
    floating-point copy of the data set. Floating-point images are used as given, converted to
    dtype. (N, H, W) images are flattened. Their values are checked where the kernels count
    them (``check_values``), in the same pass.
    """
    array = _as_array(x, name)
    if array.dtype.kind in "bi" or (array.dtype.kind == "u" and array.dtype != np.uint8):
        given = (f"dtype {array.dtype}" if isinstance(x, np.ndarray) else
                 f"a {type(x).__name__} of {'bools' if array.dtype.kind == 'b' else 'ints'} "
                 f"(numpy makes it {array.dtype})")
        raise TypeError(
            f"{name} must be uint8 pixels (0-255, scaled by 1/255) or floating point, got "
            f"{given}: pass np.asarray({name}, dtype=np.uint8) for pixels, or floats used as "
            f"given")
    if array.ndim == 3:
        array = array.reshape(array.shape[0], array.shape[1] * array.shape[2])
    if array.ndim != 2:
        raise ValueError(f"{name} must have shape (N, {n_inputs}) or (N, H, W), got {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}): at least one example is needed")
    if array.shape[1] != n_inputs:
        raise ValueError(f"{name} has {array.shape[1]} features per example, the network {n_inputs}")
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    with np.errstate(over="ignore"):  # infinities are reported by check_values
        return np.ascontiguousarray(array, dtype=dtype)


#: inputs whose root mean square is this large are far outside the range the weights start
#: for (raw tabular features: 210 for wine, 250 for breast_cancer; standardised ones: 1)
FAR_INPUT = 30


def check_values(data, x, name="x", training=False):
    """Refuse inputs that are not all finite, and warn of raw pixels given as floats and (for
    training data) of inputs far outside the range the weights start for, from what the
    kernels' Dataset measured when it counted them."""
    if x.dtype == np.uint8:
        return
    if not (np.isfinite(data.minimum) and np.isfinite(data.maximum)):
        raise ValueError(f"{name} contains NaN or infinite values (in {x.dtype})")
    largest = data.maximum
    if 100 < largest <= 255 and data.minimum >= 0 and (x == np.round(x)).all():
        warn_user(f"{name} holds whole numbers up to {largest:g}: raw pixels? Floating-point "
                  f"inputs are used as given (uint8 pixels are scaled by 1/255); pass uint8 "
                  f"images or {name} / 255, or the network will hardly learn")
        return
    if training and data.root_mean_square >= FAR_INPUT:
        reach = max(abs(data.minimum), abs(data.maximum))
        warn_user(f"{name}'s values have a root mean square of {data.root_mean_square:.3g} "
                  f"(up to {reach:.4g}), far from the scale the weights start for (-0.1 to "
                  f"0.1, for inputs of about 1): the first steps may kill every hidden unit "
                  f"or blow up. Scale the inputs (sklearn.preprocessing.StandardScaler, or to "
                  f"[0, 1])", RuntimeWarning)


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
        if array.dtype.kind == "f" and np.isfinite(array).all() and (array == np.round(array)).all():
            array = array.astype(np.int64)  # whole-number floats such as 3.0 are labels
        elif array.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integer class labels, got dtype {array.dtype}"
                            + (" with non-integer values" if array.dtype.kind == "f" else ""))
        labels = array
    else:
        raise ValueError(f"{name} must have shape (N,) or (N, {n_outputs}), got {array.shape}")
    if labels.shape[0] != n_examples:
        raise ValueError(f"{name} has {labels.shape[0]} labels for {n_examples} examples")
    if labels.size and (labels.min() < 0 or labels.max() >= n_outputs):
        raise ValueError(f"{name} must hold labels in 0..{n_outputs - 1}")
    return np.ascontiguousarray(labels, dtype=np.int64)


def as_sample_weight(sample_weight, n_examples, name="sample_weight"):
    """Sample weights as a C-contiguous float64 array, or None: finite, non-negative, one per
    example and not all zero."""
    if sample_weight is None:
        return None
    array = _as_array(sample_weight, name)
    if array.ndim != 1:
        raise argument_error(name, f"must have shape (N,), got {array.shape}")
    if array.shape[0] != n_examples:
        raise argument_error(name, f"has {array.shape[0]} weights for {n_examples} examples")
    weights = np.ascontiguousarray(array, dtype=np.float64)
    if not np.isfinite(weights).all():
        raise argument_error(name, "holds NaN or infinite values")
    if (weights < 0).any():
        raise argument_error(name, f"holds negative weights (the smallest is "
                             f"{weights.min():g}): a weight is how much an example counts")
    if not weights.any():
        raise argument_error(name, "is all zeros: no example would count")
    return weights


def as_dataset(data, n_inputs, n_outputs, dtype, name):
    """An (x, y) pair, or (x, y, sample_weight), converted: (x, y, sample_weight or None);
    name is the argument, e.g. 'test_data'."""
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise TypeError(f"{name} must be a pair (x, y), or (x, y, sample_weight)")
    x = as_inputs(data[0], n_inputs, dtype, f"{name}[0]")
    y = as_labels(data[1], len(x), n_outputs, f"{name}[1]")
    weights = as_sample_weight(data[2], len(x), f"{name}[2]") if len(data) == 3 else None
    return x, y, weights
