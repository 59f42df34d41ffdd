"""What machine a bench ran on, for the line under its table: CPU model, widest vectors,
cores, Python and numpy (README figures name the CPU and its vector width)."""
import compileall
import os
import platform


def cpu_model():
    """The CPU's model name and family/model numbers (Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return platform.processor() or platform.machine()
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    name = fields.get("model name", platform.machine())
    if "cpu family" in fields:
        name += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    flags = set(fields.get("flags", "").split())
    widest = ("AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else
              "SSE2" if "sse2" in flags else "")
    return f"{name}, widest vectors {widest}" if widest else name


def describe():
    import numpy

    return (f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"numpy {numpy.__version__}")


def compile_grokreg_bytecode():
    """Compile grokreg's modules to bytecode, as pip does when it installs the wheel: a run
    of a source checkout (or an editable install) where PYTHONDONTWRITEBYTECODE is set would
    otherwise compile them at every start, 40-80 ms of a whole-process time."""
    import grokreg

    compileall.compile_dir(os.path.dirname(grokreg.__file__), quiet=1)
