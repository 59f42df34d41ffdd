"""grokreg: chapter 8 of Grokking Deep Learning (regularization and batching), fast and exact.

>>> import grokreg
>>> (x_train, y_train), (x_test, y_test) = grokreg.load_mnist()
>>> net = grokreg.Network(hidden=40, seed=1)
>>> history = net.fit(x_train[:1000], y_train[:1000], epochs=10, test_data=(x_test, y_test))
"""
from ._version import __version__
from .data import load_idx_dataset, load_mnist, read_idx
from .callbacks import Callback
from .distortions import Affine, Elastic
from .ensemble import Ensemble
from .history import History
from .network import Network
from .recipes import EXPERIMENTS, reproduce
from .regularization import EarlyStopping
from .schedules import Constant, InverseScaling, MultiStep, ReduceOnPlateau, StepDecay
from .training import CollapseWarning

__all__ = ["__version__", "Network", "Ensemble", "EarlyStopping", "Callback", "Constant",
           "InverseScaling", "StepDecay", "MultiStep", "ReduceOnPlateau", "CollapseWarning",
           "Affine", "Elastic", "History", "load_mnist", "load_idx_dataset", "read_idx",
           "reproduce", "EXPERIMENTS"]
