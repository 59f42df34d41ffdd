# The kernels of _kernels.pyx compiled for x86-64 CPUs with AVX-512 F, VL, BW and DQ (setup.py
# adds the flags): 64-byte vectors and wider blocks of accumulators. grokreg._dispatch loads this
# build only where the CPU has them. Same arithmetic, no fused multiply-add: the same results,
# bit for bit.
include "_kernels.pyx"
