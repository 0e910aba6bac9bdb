"""The bias added to a channel-first result, a block of positions at a time.

``y[n, c, p] += bias[c]`` over a range of images and positions of a
C-contiguous ``(N, C, positions)`` array. NumPy's broadcast add of a
``(C, 1)`` column took 8.8 µs on one image of pw1x1 (64 × 784 values,
in cache after its product): a tenth of the product's time. Here each
row is one unit-stride vector loop (docs/performance.md §42).

Serial and GIL-free, like the other kernels beside BLAS calls: each worker
thread adds the bias to the block it has just computed.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._config import KERNEL_OPTIONS


@njit(**KERNEL_OPTIONS)
def add_channel_bias(y, bias, n_lo, n_hi, p_lo, p_hi):  # pragma: no cover
    """``y[n, c, p] += bias[c]`` for ``n_lo <= n < n_hi``, every channel, ``p_lo <= p < p_hi``."""
    _, channels, positions = y.shape
    flat = y.reshape(y.size)
    count = np.uint64(p_hi - p_lo)
    for n in range(n_lo, n_hi):
        for c in range(channels):
            start = np.uint64((n * channels + c) * positions + p_lo)
            value = bias[c]
            for k in range(count):  # unsigned: no wraparound code to keep it scalar
                flat[start + k] += value
