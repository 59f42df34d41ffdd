"""Chooses the build of the compiled kernels that this CPU runs fastest.

Wheels for x86-64 carry two builds of ``grokreg/_kernels.pyx``: ``_kernels`` for any x86-64
CPU and ``_kernels_avx2`` for CPUs with AVX2 (a compiler flag cannot be chosen at run time, so
the choice is made here, once, at import). Both compute the same results, bit for bit; only
the speed differs. ``GROKREG_KERNELS=baseline`` forces the portable build (to compare them, or
to rule the AVX2 build out while chasing a problem); ``GROKREG_KERNELS=avx2`` demands the other.
"""
import os

from . import _kernels as _baseline

__all__ = ["kernels", "BUILD"]

CHOICES = ("auto", "baseline", "avx2")


def _choose(choice):
    if choice not in CHOICES:
        raise RuntimeError(f"GROKREG_KERNELS={choice!r}: choose one of {', '.join(CHOICES)}")
    if choice == "baseline":
        return _baseline, "baseline"
    # asked before the import: any code of the AVX2 build, its module set-up included, may
    # use AVX2 instructions, which stop the process on a CPU without them
    if not _baseline.cpu_has_avx2():
        if choice == "avx2":
            raise RuntimeError("GROKREG_KERNELS=avx2, but this CPU has no AVX2")
        return _baseline, "baseline"
    try:
        from . import _kernels_avx2
    except ImportError:  # not built for this platform (MSVC, or not x86-64)
        if choice == "avx2":
            raise RuntimeError("GROKREG_KERNELS=avx2, but this grokreg was built without the "
                               "AVX2 kernels") from None
        return _baseline, "baseline"
    return _kernels_avx2, "avx2"


#: the kernels module in use, and which build it is ("baseline" or "avx2")
kernels, BUILD = _choose(os.environ.get("GROKREG_KERNELS", "auto") or "auto")
