# The kernels of _kernels.pyx compiled for x86-64 CPUs with AVX2 (setup.py adds -mavx2):
# 32-byte vectors and wider blocks of accumulators. grokreg._dispatch loads this build only
# where the CPU has AVX2. Same arithmetic, no fused multiply-add: the same results, bit for bit.
include "_kernels.pyx"
