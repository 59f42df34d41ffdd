"""Builds the Cython extension; all metadata lives in pyproject.toml.

The kernels share mini-batches and evaluations out among threads with OpenMP where the
compiler supports it (GCC, MSVC, and clang with libomp); elsewhere (Apple's clang as shipped)
they are built without it and run those loops in the calling thread.

Environment switches for local builds (never set for wheels):
  GROKREG_NATIVE=1  compile for this CPU (-march=native); such a build may crash elsewhere.
  GROKREG_DEBUG=1   bounds checks on in the kernels, to chase a memory error.
  GROKREG_OPENMP=0  build without OpenMP even where the compiler has it.
"""
import os
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _flag(name):
    return os.environ.get(name, "") not in ("", "0")


OPENMP_TEST = """
#include <omp.h>
int main(void) {
    int threads = 0;
    #pragma omp parallel reduction(+:threads)
    threads += 1;
    return threads > 0 ? 0 : 1;
}
"""


class BuildExt(build_ext):
    """Adds compiler flags by compiler family, known only once the compiler is chosen."""

    def openmp_flags(self):
        """(compile, link) flags for OpenMP, or None when this compiler cannot build with it."""
        if os.environ.get("GROKREG_OPENMP", "1") == "0":
            return None
        flags = (["/openmp"], []) if self.compiler.compiler_type == "msvc" else (
            ["-fopenmp"], ["-fopenmp"])
        with tempfile.TemporaryDirectory() as directory:
            source = os.path.join(directory, "openmp_test.c")
            with open(source, "w") as handle:
                handle.write(OPENMP_TEST)
            try:
                objects = self.compiler.compile([source], output_dir=directory,
                                                extra_postargs=flags[0])
                self.compiler.link_executable(objects, os.path.join(directory, "openmp_test"),
                                              extra_postargs=flags[1])
            except Exception:  # CompileError, LinkError: any failure means no OpenMP here
                return None
        return flags

    def build_extensions(self):
        if self.compiler.compiler_type == "msvc":
            args = ["/O2", "/fp:precise"]
        else:
            # -ffp-contract=off: no fused multiply-add, so every platform rounds the same way
            # (aarch64 would otherwise fuse by default and drift from the book's tables).
            args = ["-O3", "-ffp-contract=off"]
            if _flag("GROKREG_NATIVE"):
                args.append("-march=native")
        openmp = self.openmp_flags()
        print(f"grokreg: building {'with' if openmp else 'without'} OpenMP")
        compile_openmp, link_openmp = openmp or ([], [])
        for ext in self.extensions:
            ext.extra_compile_args = args + compile_openmp + list(ext.extra_compile_args)
            ext.extra_link_args = link_openmp + list(ext.extra_link_args)
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
