"""What machine a bench ran on, for the line under its table: CPU model, widest vectors,
cores, Python and numpy (README figures name the CPU and its vector width)."""
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
