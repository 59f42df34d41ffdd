"""Type stubs for the compiled kernels (grokreg/_kernels.pyx)."""
import enum

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

_Float = NDArray[np.float32] | NDArray[np.float64]
_Columns = NDArray[np.uint16] | NDArray[np.int32]  # uint16 up to 65,536 inputs

OPENMP: bool
AVX2: bool
PHASES: tuple[str, ...]
VECTOR_WIDTH: int
ALIGNMENT: int

def cpu_has_avx2() -> bool: ...
def aligned_empty(shape: int | tuple[int, ...], dtype: DTypeLike) -> np.ndarray: ...
def aligned_zeros(shape: int | tuple[int, ...], dtype: DTypeLike) -> np.ndarray: ...
def aligned_copy(array: ArrayLike, dtype: DTypeLike = ...) -> np.ndarray: ...

class Loss(enum.IntEnum):
    SQUARED_ERROR = 0
    SOFTMAX_CROSS_ENTROPY = 1

def column_dtype(n_inputs: int) -> np.dtype[np.uint16] | np.dtype[np.int32]: ...
def sparse_rows(
    x: _Float, keep_zeros: bool = ..., n_threads: int = ..., counts: NDArray[np.int64] | None = ...
) -> tuple[_Float, _Columns, NDArray[np.int64]]: ...
def sparse_pixels(
    x: NDArray[np.uint8],
    values: _Float,
    keep_zeros: bool = ...,
    n_threads: int = ...,
    counts: NDArray[np.int64] | None = ...,
) -> tuple[_Float, _Columns, NDArray[np.int64]]: ...
LAYOUTS: tuple[str, ...]
DENSE_FROM: float | None
TIMING: bool
AVX512: bool

def cpu_has_avx512() -> bool: ...
def row_counts(
    x: _Float,
    keep_zeros: bool = ...,
    n_threads: int = ...,
    ranges: NDArray[np.float64] | None = ...,
) -> NDArray[np.int64]: ...
def pixel_counts(
    x: NDArray[np.uint8], values: _Float, keep_zeros: bool = ..., n_threads: int = ...
) -> NDArray[np.int64]: ...

class Dataset:
    layout: str
    n: int
    n_inputs: int
    density: float
    dtype: np.dtype
    literal: bool
    labels: NDArray[np.int64] | None
    n_classes: int
    longest_row: int
    minimum: float
    maximum: float
    root_mean_square: float
    def __init__(
        self,
        x: np.ndarray,
        labels: NDArray[np.int64] | None = None,
        *,
        dtype: DTypeLike = ...,
        layout: str = ...,
        literal: bool = ...,
        values: _Float | None = ...,
        n_threads: int = ...,
    ) -> None: ...
    @classmethod
    def from_rows(
        cls,
        data: _Float,
        indices: _Columns,
        indptr: NDArray[np.int64],
        n_inputs: int,
        labels: NDArray[np.int64] | None = None,
        *,
        literal: bool = ...,
        n_threads: int = ...,
    ) -> Dataset: ...
    def stored(self) -> np.ndarray | tuple[_Float, _Columns, NDArray[np.int64]]: ...

class Workspace:
    data: Dataset
    parameters: tuple[_Float, _Float, _Float, _Float]
    batch_size: int
    alpha: float
    active_units: int
    def __init__(
        self,
        data: Dataset,
        weights_0_1: _Float,
        bias_1: _Float,
        weights_1_2: _Float,
        bias_2: _Float,
        *,
        alpha: float = ...,
        batch_size: int = ...,
        book: bool = ...,
        keep: float = ...,
        bit_generator: np.random.BitGenerator | None = ...,
        loss: int = ...,
        train_bias: bool = ...,
        n_threads: int = ...,
    ) -> None: ...
    def train_epoch(
        self,
        order: ArrayLike,
        phases: NDArray[np.float64] | None = None,
        waits: NDArray[np.float64] | None = None,
    ) -> tuple[float, int, int, bool]: ...

def evaluate(
    data: Dataset,
    weights_0_1: _Float,
    bias_1: _Float,
    weights_1_2: _Float,
    bias_2: _Float,
    loss: int = ...,
    predictions: NDArray[np.int64] | None = None,
    outputs: _Float | None = None,
    literal: bool = ...,
    n_threads: int = ...,
) -> tuple[float, int]: ...
