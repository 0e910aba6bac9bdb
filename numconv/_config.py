"""Numba compilation options, set in one place for every kernel.

fastmath carries one flag only, ``contract``: it lets LLVM fuse ``a * b + c``
into one FMA instruction (one rounding instead of two, so results move by at
most an ulp and stay deterministic). Without it the kernels issue separate
multiplies and adds. The other fast-math flags are left off on purpose:
``nnan``/``ninf`` would let the compiler drop NaN propagation, and ``reassoc``
would let it reorder sums, which changes results with the vector width.

The one exception is :data:`REDUCTION_OPTIONS`, for kernels whose inner loop is
a sum over contiguous rows (global average pooling; the tap sums of weight
gradients, 24 dot products in one loop). A fixed-order scalar sum there runs at
one add per cycle; ``reassoc`` lets LLVM keep several vector partial sums
(measured 18 → 9 µs on 4096 rows of 49; the tap sums' loop has no packed FMA
without it). The order is fixed
by the compiled code, so results stay deterministic at any thread count on one
machine; they may differ in the last bits between CPUs of different vector widths.

Numba keys its on-disk cache on the kernel's own source file, not on this
module nor on the modules whose kernels it calls (``kernels/simd.py``,
``kernels/register_blocks.py``, the tap sums' blocks): after editing these
options or such a shared kernel, delete the ``__pycache__`` ``*.nbi``/``*.nbc``
files (or set ``NUMCONV_NO_CACHE=1``) or stale machine code is loaded.
"""

import os

# NUMCONV_NO_CACHE=1 disables the on-disk cache, e.g. to inspect fresh assembly.
KERNEL_OPTIONS = {
    "cache": os.environ.get("NUMCONV_NO_CACHE") != "1",
    "fastmath": {"contract"},
    "nogil": True,
}

# Only for sums along contiguous rows; see the module docstring.
REDUCTION_OPTIONS = {**KERNEL_OPTIONS, "fastmath": {"contract", "reassoc"}}
