"""Chooses the build of the compiled kernels that this CPU runs fastest.

Wheels for x86-64 carry three builds of ``grokreg/_kernels.pyx``: ``_kernels`` for any x86-64
CPU, ``_kernels_avx2`` for CPUs with AVX2 and FMA, and ``_kernels_avx512`` for CPUs with
AVX-512 and FMA (a compiler flag cannot be chosen at run time, so the choice is made here,
once, at import). All
compute the same results, bit for bit; only the speed differs. ``GROKREG_KERNELS=baseline``
(or ``avx2``) forces a build, to compare them or to rule one out while chasing a problem;
``GROKREG_KERNELS=avx512`` demands the widest.
"""
import importlib
import os

from . import _kernels as _baseline

__all__ = ["kernels", "BUILD"]

#: the builds, narrowest first: name -> (module, whether this CPU can run it)
BUILDS = {
    "baseline": ("grokreg._kernels", lambda: True),
    "avx2": ("grokreg._kernels_avx2", lambda: _baseline.cpu_has_avx2()),
    "avx512": ("grokreg._kernels_avx512", lambda: _baseline.cpu_has_avx512()),
}
CHOICES = ("auto", *BUILDS)


def _load(name):
    """The build's module, or None where this grokreg was built without it (MSVC, arm64)."""
    if name == "baseline":
        return _baseline
    try:
        return importlib.import_module(BUILDS[name][0])
    except ImportError:
        return None


def _choose(choice):
    if choice not in CHOICES:
        raise RuntimeError(f"GROKREG_KERNELS={choice!r}: choose one of {', '.join(CHOICES)}")
    if choice != "auto":
        # the CPU is asked before the import: any code of a wider build, its module set-up
        # included, may use instructions that stop the process on a CPU without them
        if not BUILDS[choice][1]():
            raise RuntimeError(f"GROKREG_KERNELS={choice}, but this CPU cannot run that build")
        module = _load(choice)
        if module is None:
            raise RuntimeError(f"GROKREG_KERNELS={choice}, but this grokreg was built without "
                               f"that build of the kernels")
        return module, choice
    for name in reversed(BUILDS):  # the widest this CPU runs and this grokreg has
        module = _load(name) if BUILDS[name][1]() else None
        if module is not None:
            return module, name
    raise AssertionError("the baseline build is always there")


#: the kernels module in use, and which build it is ("baseline", "avx2" or "avx512")
kernels, BUILD = _choose(os.environ.get("GROKREG_KERNELS", "auto") or "auto")
