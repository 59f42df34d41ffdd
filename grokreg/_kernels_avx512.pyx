# The kernels of _kernels.pyx compiled for x86-64 CPUs with AVX-512 F, VL, BW and DQ (setup.py
# adds the flags, and -mfma): 64-byte vectors, wider blocks of accumulators and FMA instructions.
# grokreg._dispatch loads this build only where the CPU has them. Same arithmetic: the same
# results, bit for bit.
include "_kernels.pyx"
