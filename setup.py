"""Builds the Cython extension; all metadata lives in pyproject.toml.

Environment switches for local builds (never set for wheels):
  GROKREG_NATIVE=1  compile for this CPU (-march=native); such a build may crash elsewhere.
  GROKREG_DEBUG=1   bounds checks on in the kernels, to chase a memory error.
"""
import os

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _flag(name):
    return os.environ.get(name, "") not in ("", "0")


class BuildExt(build_ext):
    """Adds compiler flags by compiler family, known only once the compiler is chosen."""

    def build_extensions(self):
        if self.compiler.compiler_type == "msvc":
            args = ["/O2", "/fp:precise"]
        else:
            # -ffp-contract=off: no fused multiply-add, so every platform rounds the same way
            # (aarch64 would otherwise fuse by default and drift from the book's tables).
            args = ["-O3", "-ffp-contract=off"]
            if _flag("GROKREG_NATIVE"):
                args.append("-march=native")
        for ext in self.extensions:
            ext.extra_compile_args = args + list(ext.extra_compile_args)
        super().build_extensions()


directives = {
    "language_level": 3,
    "boundscheck": _flag("GROKREG_DEBUG"),
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "embedsignature": True,
}

extensions = [
    Extension(
        "grokreg._kernels",
        ["grokreg/_kernels.pyx"],
        include_dirs=[np.get_include()],
        define_macros=[
            ("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION"),
            # the oldest numpy the wheel runs on; matches dependencies in pyproject.toml
            ("NPY_TARGET_VERSION", "NPY_1_25_API_VERSION"),
        ],
    )
]

setup(
    ext_modules=cythonize(extensions, compiler_directives=directives),
    cmdclass={"build_ext": BuildExt},
)
