"""Builds the Cython extension; all metadata lives in pyproject.toml.

The kernels share mini-batches and evaluations out among threads with OpenMP where the
compiler supports it (GCC, MSVC, and clang with libomp); elsewhere (Apple's clang as shipped)
they are built without it and run those loops in the calling thread.

Where GCC or clang targets x86-64, the kernels are built three times: grokreg._kernels for any
x86-64 CPU (SSE2), grokreg._kernels_avx2 with AVX2 and FMA, and grokreg._kernels_avx512 with
AVX-512 (F, VL, BW, DQ) and FMA, which grokreg._dispatch loads on CPUs that have them. All
compute the same bits: the matrix products' multiply-adds are fused everywhere, and they alone
(C's fma and fmaf, correctly rounded: FMA instructions in the vector builds, library calls in
the SSE2 one; in grokreg/_tiles.h the compiler fuses them where the build has FMA).

The kernels' repetitive variants (blocks of every width, each dtype) are written once in
Tempita templates (``grokreg/*.pxi.tp``, as scikit-learn's ``.pyx.tp`` files), expanded here
before Cython runs; the expansions are build products, not sources.

Environment switches for local builds (never set for wheels):
  GROKREG_NATIVE=1  compile for this CPU (-march=native); such a build may crash elsewhere.
  GROKREG_DEBUG=1   bounds checks on in the kernels, to chase a memory error.
  GROKREG_OPENMP=0  build without OpenMP even where the compiler has it.
  GROKREG_TIMING=1  time each phase of a mini-batch epoch (train_epoch's phases= and waits=,
                    for bench/phases.py); off, the shipped kernels carry no timing code.
"""
import glob
import os
import tempfile

import numpy as np
from Cython import Tempita
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

# compiles only for an x86 target with the build's flags, and links only where the compiler
# has the run-time CPU check the build relies on
VECTOR_TEST = """
#include <immintrin.h>
int main(void) {
    __m256d sum = _mm256_add_pd(_mm256_set1_pd(1.0), _mm256_set1_pd(2.0));
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? (int) _mm256_cvtsd_f64(sum) - 3 : 0;
}
"""

#: the builds of the kernels for wider vectors than SSE2's: module name -> compiler flags
AVX2_MODULE, AVX512_MODULE = "grokreg._kernels_avx2", "grokreg._kernels_avx512"
VECTOR_BUILDS = {
    AVX2_MODULE: ["-mavx2", "-mfma"],
    # 512-bit registers for the blocks of accumulators (GCC would otherwise keep to 256)
    AVX512_MODULE: ["-mavx2", "-mfma", "-mavx512f", "-mavx512vl", "-mavx512bw", "-mavx512dq",
                    "-mprefer-vector-width=512"],
}


NO_STRING_LOOPS = "-fno-tree-loop-distribute-patterns"


class BuildExt(build_ext):
    """Adds compiler flags by compiler family, known only once the compiler is chosen."""

    def builds(self, program, compile_flags, link_flags):
        """Whether this compiler compiles and links program (C source) with these flags."""
        with tempfile.TemporaryDirectory() as directory:
            source = os.path.join(directory, "probe.c")
            with open(source, "w") as handle:
                handle.write(program)
            try:
                objects = self.compiler.compile([source], output_dir=directory,
                                                extra_postargs=compile_flags)
                self.compiler.link_executable(objects, os.path.join(directory, "probe"),
                                              extra_postargs=link_flags)
            except Exception:  # CompileError, LinkError: any failure is a no
                return False
        return True

    def openmp_flags(self):
        """(compile, link) flags for OpenMP, or None when this compiler cannot build with it."""
        if os.environ.get("GROKREG_OPENMP", "1") == "0":
            return None
        flags = (["/openmp"], []) if self.compiler.compiler_type == "msvc" else (
            ["-fopenmp"], ["-fopenmp"])
        return flags if self.builds(OPENMP_TEST, *flags) else None

    def build_extensions(self):
        if self.compiler.compiler_type == "msvc":
            args = ["/O2", "/fp:precise"]
        else:
            # -ffp-contract=off: the compiler fuses no multiply and add of its own accord, which
            # it would do where the target has FMA and not elsewhere (aarch64 by default): the
            # kernels ask for fused multiply-adds where they want them (fma by name, or
            # contraction switched on for the dense tiles alone, in builds with FMA).
            args = ["-O3", "-ffp-contract=off"]
            # GCC turns the row loops' fixed-width setting and storing of their accumulators
            # into memset/memcpy, expanded as rep stos/movs, whose start-up costs as much as a
            # row (first-layer update 65 -> 57 ms per MNIST epoch without); clang has no such flag
            if self.builds("int main(void) { return 0; }", ["-Werror", NO_STRING_LOOPS], []):
                args.append(NO_STRING_LOOPS)
            if _flag("GROKREG_NATIVE"):
                args.append("-march=native")
        vector_builds = [name for name, flags in VECTOR_BUILDS.items()
                         if self.compiler.compiler_type != "msvc"
                         and self.builds(VECTOR_TEST, flags, [])]
        self.extensions = [ext for ext in self.extensions
                           if ext.name not in VECTOR_BUILDS or ext.name in vector_builds]
        openmp = self.openmp_flags()
        print(f"grokreg: building {'with' if openmp else 'without'} OpenMP, builds "
              f"{', '.join(ext.name for ext in self.extensions)}")
        compile_openmp, link_openmp = openmp or ([], [])
        macros = [("GROKREG_TIMING", "1")] if _flag("GROKREG_TIMING") else []
        if vector_builds:  # every build then carries the CPU check that chooses among them
            macros.append(("GROKREG_CPU_DISPATCH", "1"))
        for ext in self.extensions:
            ext.define_macros = list(ext.define_macros) + macros
            isa = VECTOR_BUILDS.get(ext.name, [])
            ext.extra_compile_args = args + isa + compile_openmp + list(ext.extra_compile_args)
            ext.extra_link_args = link_openmp + list(ext.extra_link_args)
        # the builds are independent: compile them side by side
        self.parallel = self.parallel or os.cpu_count() or 1
        super().build_extensions()


def expand_templates():
    """Write grokreg/X from each Tempita template grokreg/X.tp, where it changed."""
    for template in glob.glob(os.path.join("grokreg", "*.tp")):
        target = template[:-len(".tp")]
        with open(template, encoding="utf-8") as f:
            text = Tempita.sub(f.read())
        text = (f"# Generated from {os.path.basename(template)} by setup.py: edit the "
                f"template, not this file.\n" + text)
        if not os.path.exists(target) or open(target, encoding="utf-8").read() != text:
            with open(target, "w", encoding="utf-8") as f:
                f.write(text)


directives = {
    "language_level": 3,
    "boundscheck": _flag("GROKREG_DEBUG"),
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "embedsignature": True,
}

expand_templates()

extensions = [
    Extension(
        name,
        [name.replace(".", "/") + ".pyx"],
        include_dirs=[np.get_include()],
        define_macros=[
            ("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION"),
            # the oldest numpy the wheel runs on; matches dependencies in pyproject.toml
            ("NPY_TARGET_VERSION", "NPY_1_25_API_VERSION"),
        ],
    )
    for name in ("grokreg._kernels", *VECTOR_BUILDS)
]

setup(
    ext_modules=cythonize(extensions, compiler_directives=directives),
    cmdclass={"build_ext": BuildExt},
)
