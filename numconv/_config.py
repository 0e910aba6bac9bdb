"""Numba compilation options, set in one place for every kernel.

fastmath carries one flag only, ``contract``: it lets LLVM fuse ``a * b + c``
into one FMA instruction (one rounding instead of two, so results move by at
most an ulp and stay deterministic). Without it the kernels issue separate
multiplies and adds. The other fast-math flags are left off on purpose:
``nnan``/``ninf`` would let the compiler drop NaN propagation, and ``reassoc``
would let it reorder sums, which changes results with the vector width.

Numba keys its on-disk cache on the kernel's own source file, not on this
module: after editing these options, delete the ``__pycache__`` ``*.nbi``/``*.nbc``
files (or set ``NUMCONV_NO_CACHE=1``) or stale machine code is loaded.
"""

import os

# NUMCONV_NO_CACHE=1 disables the on-disk cache, e.g. to inspect fresh assembly.
KERNEL_OPTIONS = {
    "cache": os.environ.get("NUMCONV_NO_CACHE") != "1",
    "fastmath": {"contract"},
    "nogil": True,
}
