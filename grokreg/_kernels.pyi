"""Type stubs for the compiled kernels (grokreg/_kernels.pyx)."""
import numpy as np
from numpy.typing import NDArray

_Float = NDArray[np.float32] | NDArray[np.float64]

def train_epoch(
    x: _Float,
    labels: NDArray[np.int64],
    order: NDArray[np.int64],
    weights_0_1: _Float,
    weights_1_2: _Float,
    alpha: float,
    batch_size: int,
    book: bool,
    keep: float,
    bit_generator: np.random.BitGenerator | None,
) -> tuple[float, int, int, bool]: ...
def evaluate(
    x: _Float,
    labels: NDArray[np.int64] | None,
    weights_0_1: _Float,
    weights_1_2: _Float,
    predictions: NDArray[np.int64] | None = None,
) -> tuple[float, int]: ...
def forward(
    x: _Float,
    weights_0_1: _Float,
    weights_1_2: _Float,
    hidden: _Float,
    outputs: _Float,
) -> None: ...
