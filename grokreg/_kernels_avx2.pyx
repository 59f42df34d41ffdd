# The kernels of _kernels.pyx compiled for x86-64 CPUs with AVX2 and FMA (setup.py adds -mavx2
# -mfma): 32-byte vectors, wider blocks of accumulators, and FMA instructions for the fused
# multiply-adds the portable build gets from the C library. grokreg._dispatch loads this build
# only where the CPU has both. Same arithmetic: the same results, bit for bit.
include "_kernels.pyx"
