"""Type stubs for the AVX-512 build of the kernels: the same functions as grokreg._kernels."""
from ._kernels import *  # noqa: F403
