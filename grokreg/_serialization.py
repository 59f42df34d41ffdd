"""Saving and loading a Network as ``.npz`` (used through ``Network.save`` / ``Network.load``).

Layout, format version 2 (one ``.npy`` member per key, as numpy.savez writes it):

=================  ==========================  ==========================================
key                dtype, shape                content
=================  ==========================  ==========================================
format             str, ()                     "grokreg-network"
format_version     int64, ()                   2
config             str, ()                     JSON: hidden, n_inputs, n_outputs, dropout,
                                               input_dropout, book, dtype, loss, bias
rng_state          str, ()                     JSON: the random stream's
                                               ``BitGenerator.state``
state              str, ()                     JSON: samples_seen, rate (the optimizer's
                                               state: ``samples_seen_``, ``rate_``)
weights_0_1        dtype, (n_inputs, hidden)
bias_1             dtype, (hidden,)
weights_1_2        dtype, (hidden, n_outputs)
bias_2             dtype, (n_outputs,)
velocity_0_1, ...  as the four above           with momentum (``velocities_``): the
                                               parameters' velocities, else absent
=================  ==========================  ==========================================

Version 1 files (no input_dropout, state or velocities) are read as well.

Loading never unpickles (``allow_pickle=False``) and checks every member's header (dtype,
shape, size) against the config before reading its data, so a hostile or damaged file costs at
most the memory of the network it claims to be, and is refused with a ValueError.
"""
import json
import math
import os
import struct
import zipfile
import zlib

import numpy as np

from ._files import atomic_write

FORMAT = "grokreg-network"
FORMAT_VERSION = 2
ARRAYS = ("weights_0_1", "bias_1", "weights_1_2", "bias_2")
VELOCITIES = ("velocity_0_1", "velocity_b1", "velocity_1_2", "velocity_b2")
#: the members of each version (velocities besides, when saved)
KEYS = {1: ("format", "format_version", "config", "rng_state") + ARRAYS,
        2: ("format", "format_version", "config", "rng_state", "state") + ARRAYS}
CONFIG_KEYS = {1: {"hidden", "n_inputs", "n_outputs", "dropout", "book", "dtype", "loss", "bias"},
               2: {"hidden", "n_inputs", "n_outputs", "dropout", "input_dropout", "book",
                   "dtype", "loss", "bias"}}
BIT_GENERATORS = ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")
MAX_TEXT = 1 << 16  # the JSON members are a few kB; refuse anything far larger
#: the largest network load accepts (2 GiB of float64 weights; MNIST's 784-100-10 has 79,400):
#: a file claiming more is refused before anything is allocated
MAX_PARAMETERS = 1 << 28
# what zipfile, zlib and numpy's .npy reader raise on damaged bytes; caught only around
# reading, so that a bug elsewhere is not reported as a damaged file (zipfile raises
# RuntimeError when a flipped bit marks a member as encrypted, UnicodeDecodeError when one
# damages the bytes of a member's name)
UNREADABLE = (zipfile.BadZipFile, zlib.error, struct.error, EOFError, OSError, RuntimeError,
              NotImplementedError, UnicodeDecodeError)


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return {"__array__": value.dtype.str, "values": value.tolist()}
    if isinstance(value, np.integer):
        return int(value)
    return value


def _from_json(value):
    if isinstance(value, dict):
        if set(value) == {"__array__", "values"}:
            return np.array(value["values"], dtype=np.dtype(value["__array__"]))
        return {k: _from_json(v) for k, v in value.items()}
    return value


def save(net, path):
    with atomic_write(path) as f:
        write(net, f)
    return os.fspath(path)


def write(net, file):
    """Write net's .npz to a binary file object."""
    config = dict(hidden=net.hidden, n_inputs=net.n_inputs, n_outputs=net.n_outputs,
                  dropout=net.dropout, input_dropout=net.input_dropout, book=net.book,
                  dtype=net.dtype.name, loss=net.loss, bias=net.bias)
    state = dict(samples_seen=net.samples_seen_, rate=net.rate_)
    members = dict(
        format=np.array(FORMAT),
        format_version=np.array(FORMAT_VERSION, dtype=np.int64),
        config=np.array(json.dumps(config)),
        rng_state=np.array(json.dumps(_jsonable(net._bit_generator.state))),
        state=np.array(json.dumps(state)),
        **net._views,
    )
    if net.velocities_ is not None:
        members.update(zip(VELOCITIES, net.velocities_))
    np.savez(file, **members)


def _header(archive, key, path):
    """(shape, dtype) from a member's .npy header, reading nothing else."""
    name = key + ".npy"
    try:
        with archive.open(name) as f:
            version = np.lib.format.read_magic(f)
            if version not in ((1, 0), (2, 0), (3, 0)):
                raise ValueError(f"{path}: member {key!r} has an unknown .npy version {version}")
            reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                      else np.lib.format.read_array_header_2_0)
            shape, _, dtype = reader(f)
    except UNREADABLE as exc:
        raise ValueError(f"{path}: damaged or not a grokreg network file ({exc})") from exc
    if dtype.hasobject:
        raise ValueError(f"{path}: member {key!r} holds Python objects; refusing to unpickle")
    return shape, dtype


def _read_member(archive, key, dtype, shape, path):
    """Read one .npy member after checking its header, so nothing unexpected is allocated."""
    name = key + ".npy"
    expected = np.dtype(dtype).itemsize * int(np.prod(shape)) if shape is not None else MAX_TEXT
    if archive.getinfo(name).file_size > expected + 4096:
        raise ValueError(f"{path}: member {key!r} is larger than a network of this shape")
    found_shape, found_dtype = _header(archive, key, path)
    if dtype == "U":
        if found_dtype.kind != "U" or found_shape != () or found_dtype.itemsize > MAX_TEXT:
            raise ValueError(f"{path}: member {key!r} must be a short string")
    elif found_dtype != np.dtype(dtype) or found_shape != shape:
        raise ValueError(f"{path}: member {key!r} has dtype {found_dtype} and shape "
                         f"{found_shape}; expected {np.dtype(dtype)} and {shape}")
    try:
        with archive.open(name) as f:
            return np.lib.format.read_array(f, allow_pickle=False)
    except UNREADABLE as exc:
        raise ValueError(f"{path}: damaged or not a grokreg network file ({exc})") from exc


def _json_member(archive, key, path):
    try:
        return json.loads(str(_read_member(archive, key, "U", None, path)))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: member {key!r} is damaged ({exc})") from exc


def _check_config(config, archive, path, version, velocities):
    """The config's layer sizes must be those of the weight (and velocity) members' headers,
    and sane, before a network of that size is built."""
    if not isinstance(config, dict) or set(config) != CONFIG_KEYS[version]:
        raise ValueError(f"{path}: config must hold exactly {sorted(CONFIG_KEYS[version])}")
    sizes = {key: config[key] for key in ("n_inputs", "hidden", "n_outputs")}
    for key, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{path}: config {key} must be a positive int, got {value!r}")
    n_inputs, hidden, n_outputs = sizes.values()
    if n_inputs * hidden + hidden * n_outputs + hidden + n_outputs > MAX_PARAMETERS:
        raise ValueError(f"{path}: config describes a network of more than {MAX_PARAMETERS} "
                         f"parameters ({n_inputs}-{hidden}-{n_outputs})")
    shapes = dict(weights_0_1=(n_inputs, hidden), bias_1=(hidden,),
                  weights_1_2=(hidden, n_outputs), bias_2=(n_outputs,))
    if velocities:
        shapes.update(zip(VELOCITIES, list(shapes.values())))
    for key, shape in shapes.items():
        found, _ = _header(archive, key, path)
        if found != shape:
            raise ValueError(f"{path}: member {key!r} has shape {found}, but the config "
                             f"describes {shape}")


def load(cls, path, name=None):
    """Read a network from path (or a binary file object; name then says what it is)."""
    source = path
    path = os.fspath(path) if name is None else name
    try:
        archive = zipfile.ZipFile(source)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except (UNREADABLE + (ValueError,)) as exc:
        raise ValueError(f"{path}: not a grokreg network file ({exc})") from exc
    with archive:
        names = set(archive.namelist())
        if "format_version.npy" not in names:
            raise ValueError(f"{path}: not a grokreg network file (no format_version)")
        version = int(_read_member(archive, "format_version", np.int64, (), path))
        if version not in KEYS:
            raise ValueError(f"{path}: format version {version}; this grokreg reads "
                             f"versions {', '.join(map(str, KEYS))}")
        expected = {key + ".npy" for key in KEYS[version]}
        velocities = version >= 2 and any(key + ".npy" in names for key in VELOCITIES)
        if velocities:
            expected |= {key + ".npy" for key in VELOCITIES}
        if names != expected:
            missing, extra = sorted(expected - names), sorted(names - expected)
            raise ValueError(f"{path}: not a grokreg network file (missing {missing}, "
                             f"unexpected {extra})")
        if str(_read_member(archive, "format", "U", None, path)) != FORMAT:
            raise ValueError(f"{path}: not a grokreg network file")
        config = _json_member(archive, "config", path)
        _check_config(config, archive, path, version, velocities)
        try:
            net = cls(seed=0, **config)  # checks every hyper-parameter
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: config: {exc}") from exc
        try:
            rng_state = _from_json(_json_member(archive, "rng_state", path))
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"{path}: damaged random stream state ({exc})") from exc
        if version >= 2:
            _restore_state(net, _json_member(archive, "state", path), path)
        for key, parameter in net._views.items():
            np.copyto(parameter, _finite_member(archive, key, net.dtype, parameter.shape, path))
        if velocities:
            arrays = [_finite_member(archive, key, net.dtype, parameter.shape, path)
                      for key, parameter in zip(VELOCITIES, net._views.values())]
            net._velocities = net._laid_out(arrays)
    net._bit_generator = _restore_stream(rng_state, net.book, path)
    return net


def _finite_member(archive, key, dtype, shape, path):
    array = _read_member(archive, key, dtype, shape, path)
    if not np.isfinite(array).all():
        raise ValueError(f"{path}: {key} holds NaN or infinite values")
    return array


def _restore_state(net, state, path):
    """The optimizer's state (samples_seen_, rate_), checked."""
    if not isinstance(state, dict) or set(state) != {"samples_seen", "rate"}:
        raise ValueError(f"{path}: state must hold exactly samples_seen and rate")
    seen, rate = state["samples_seen"], state["rate"]
    if isinstance(seen, bool) or not isinstance(seen, int) or seen < 0:
        raise ValueError(f"{path}: state samples_seen must be a non-negative int, got {seen!r}")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float))
                             or not (math.isfinite(rate) and rate > 0)):
        raise ValueError(f"{path}: state rate must be a positive number or null, got {rate!r}")
    net.samples_seen_, net.rate_ = seen, None if rate is None else float(rate)


def _restore_stream(state, book, path):
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in BIT_GENERATORS or (book and name != "MT19937"):
        raise ValueError(f"{path}: unknown random stream {name!r}")
    bit_generator = getattr(np.random, name)()
    try:
        bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise ValueError(f"{path}: damaged random stream state ({exc})") from exc
    return bit_generator
