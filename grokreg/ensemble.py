"""Ensembles: section 8.8's "dropout works because ensembling works", as a feature.

Several networks with independent seeds learn the same signal but different noise; averaging
their outputs keeps the signal and cancels much of the noise. ``Ensemble`` trains its
networks in parallel threads (the kernels release the GIL) through ``Network.fit``, so each
is the network it would be if trained alone, bit for bit.
"""
import io
import json
import os
import zipfile

import numpy as np

from . import _serialization
from ._files import atomic_write
from ._validation import as_inputs, as_labels, check_int
from .network import Network, usable_cpus
from .progress import Progress

__all__ = ["Ensemble"]

FORMAT = "grokreg-ensemble"
FORMAT_VERSION = 1
# a member file is at most one network of MAX_PARAMETERS float64 numbers, and its headers
MAX_MEMBER_BYTES = 8 * _serialization.MAX_PARAMETERS + (1 << 20)


def member_seeds(seed, n_networks, book):
    """Independent seeds for n_networks: book mode's RandomState takes ints, so the members
    get seed, seed + 1, ... (member 0 is the book's own network); default mode spawns
    children of ``SeedSequence(seed)`` (or of a Generator)."""
    if book:
        if seed is None:
            return [None] * n_networks
        seed = check_int(seed, "seed", minimum=0, maximum=2**32 - n_networks)
        return [seed + i for i in range(n_networks)]
    if isinstance(seed, np.random.Generator):
        return seed.spawn(n_networks)
    if not isinstance(seed, np.random.SeedSequence):
        if seed is not None:
            seed = check_int(seed, "seed", minimum=0)
        seed = np.random.SeedSequence(seed)
    return seed.spawn(n_networks)


class Ensemble:
    """n_networks networks of one architecture, predicting by averaging their output layers.

    Parameters
    ----------
    n_networks : int
        How many networks (>= 1).
    hidden : int
        Hidden units of each network.
    seed : int, SeedSequence or None
        Seeds the networks independently (see ``member_seeds``).
    n_jobs : int or None
        Threads that train networks at once (default: as many as there are networks, up to
        the CPUs this process may use). Each network's own ``n_threads`` is 1.
    **options
        The other arguments of ``Network`` (dropout, book, dtype, loss, bias, n_inputs,
        n_outputs).

    Attributes
    ----------
    networks : list of Network
    histories_ : list of History, one per network, after ``fit``
    """

    def __init__(self, n_networks=5, hidden=40, *, seed=None, n_jobs=None, **options):
        self.n_networks = check_int(n_networks, "n_networks", minimum=1, maximum=10_000)
        if "n_threads" in options:
            raise TypeError("Ensemble trains each network in one thread; set n_jobs instead")
        self.n_jobs = None if n_jobs is None else check_int(n_jobs, "n_jobs", minimum=1)
        seeds = member_seeds(seed, self.n_networks, bool(options.get("book", False)))
        self.networks = [Network(hidden, seed=s, n_threads=1, **options) for s in seeds]
        self.histories_ = None

    @classmethod
    def _of(cls, networks, n_jobs=None):
        ensemble = cls.__new__(cls)
        ensemble.n_networks, ensemble.n_jobs = len(networks), n_jobs
        ensemble.networks, ensemble.histories_ = list(networks), None
        return ensemble

    def __repr__(self):
        return f"Ensemble({self.n_networks} x {self.networks[0]!r})"

    def __len__(self):
        return self.n_networks

    @property
    def _first(self):
        return self.networks[0]

    def fit(self, x, y, *, progress=False, **options):
        """Train every network on (x, y) with ``Network.fit``'s options; returns the histories.

        The networks train in parallel threads; each gives exactly what it gives alone.
        progress (bool or a label) shows one bar counting finished networks.
        """
        if "on_epoch_end" in options:
            raise TypeError("on_epoch_end: the networks train at once in several threads; "
                            "read each network's history_ afterwards")
        from concurrent.futures import ThreadPoolExecutor  # here: it slows grokreg's import

        first = self._first
        x = as_inputs(x, first.n_inputs, first.dtype)  # once; the members' checks are no-ops
        y = as_labels(y, len(x), first.n_outputs)
        workers = self.n_jobs or min(self.n_networks, usable_cpus())
        bar = (Progress(self.n_networks, progress if isinstance(progress, str) else "ensemble",
                        unit="network") if progress else None)

        def train(net):
            history = net.fit(x, y, **options)
            if bar is not None:
                bar.update(1)
            return history

        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                self.histories_ = list(pool.map(train, self.networks))
        finally:
            if bar is not None:
                bar.close()
        return self.histories_

    # -- inference --------------------------------------------------------------------------

    def decision_function(self, x):
        """The networks' output layers averaged (added in network order, then divided)."""
        first = self._first
        x = as_inputs(x, first.n_inputs, first.dtype)
        total = np.zeros((len(x), first.n_outputs), dtype=first.dtype)
        for net in self.networks:
            total += net.decision_function(x)
        return total / first.dtype.type(self.n_networks)

    def predict(self, x):
        """The class with the largest averaged output, as int64 labels (N,)."""
        return self.decision_function(x).argmax(axis=1).astype(np.int64)

    def evaluate(self, x, y):
        """(error, accuracy) of the averaged outputs, as ``Network.evaluate`` measures them."""
        outputs = self.decision_function(x).astype(np.float64)
        labels = as_labels(y, len(outputs), self._first.n_outputs)
        if self._first.loss == "softmax_cross_entropy":
            shifted = outputs - outputs.max(axis=1, keepdims=True)
            log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            error = -log_probabilities[np.arange(len(labels)), labels].mean()
        else:
            error = ((np.eye(outputs.shape[1])[labels] - outputs) ** 2).sum(axis=1).mean()
        return float(error), float(np.mean(outputs.argmax(axis=1) == labels))

    def score(self, x, y):
        """Accuracy of the averaged outputs on (x, y)."""
        return self.evaluate(x, y)[1]

    # -- persistence ------------------------------------------------------------------------

    def save(self, path):
        """Write every network into one zip file (each member a ``Network.save`` file),
        whole or not at all. Returns the path."""
        with atomic_write(path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("ensemble.json", json.dumps(
                {"format": FORMAT, "format_version": FORMAT_VERSION,
                 "n_networks": self.n_networks}))
            for index, net in enumerate(self.networks):
                member = io.BytesIO()
                _serialization.write(net, member)
                archive.writestr(f"network-{index:04d}.npz", member.getvalue())
        return os.fspath(path)

    @classmethod
    def load(cls, path, *, n_jobs=None):
        """Read an ensemble written by ``save``; refuses anything else with ValueError."""
        path = os.fspath(path)
        try:
            archive = zipfile.ZipFile(path)
        except (FileNotFoundError, PermissionError, IsADirectoryError):
            raise
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a grokreg ensemble file ({exc})") from exc
        def refused(why):
            return ValueError(f"{path}: not a grokreg ensemble file ({why})")

        with archive:
            try:
                if archive.getinfo("ensemble.json").file_size > 4096:
                    raise refused("its ensemble.json is too large")
                header = json.loads(archive.read("ensemble.json"))
                if not isinstance(header, dict):
                    raise refused("its ensemble.json is not an object")
                count = header["n_networks"]
                if (header.get("format") != FORMAT or header.get("format_version")
                        != FORMAT_VERSION or not isinstance(count, int) or count < 1):
                    raise refused("unknown format")
                names = [f"network-{index:04d}.npz" for index in range(count)]
                if sorted(archive.namelist()) != sorted(["ensemble.json", *names]):
                    raise refused("its members are not those its header lists")
                networks = []
                for name in names:
                    if archive.getinfo(name).file_size > MAX_MEMBER_BYTES:
                        raise refused(f"{name} is larger than any network it may hold")
                    net = _serialization.load(Network, io.BytesIO(archive.read(name)),
                                              name=f"{path}: {name}")
                    net.n_threads = 1  # the ensemble's threads are its networks
                    networks.append(net)
            except (KeyError, TypeError, json.JSONDecodeError, UnicodeDecodeError,
                    zipfile.BadZipFile, OSError, RuntimeError, EOFError) as exc:
                raise ValueError(f"{path}: damaged or not a grokreg ensemble file ({exc})") from exc
        shapes = {(n.n_inputs, n.n_outputs, n.dtype, n.loss) for n in networks}
        if len(shapes) != 1:
            raise ValueError(f"{path}: its networks differ in inputs, outputs, dtype or loss")
        return cls._of(networks, n_jobs)
