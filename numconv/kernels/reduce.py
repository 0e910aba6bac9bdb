"""Channel sums: the bias gradient of a convolution, ``Σ_n Σ_p g[n, c, p]``.

NumPy's ``sum(axis=(0, 2))`` took 0.35 ms on cifar_first's 8.4 MB of output
gradient. The kernel is serial and sums a range of channels: a ``prange``
version took 0.09 ms, but its OpenMP workers then spin for about a
millisecond, and the next GEMM call (whose worker threads share the two
cores with them) lost 0.8-1.1 ms. Large gradients are split by channels
over the worker threads instead (:func:`numconv.functional.conv_bias_grad`),
which leaves every channel's sum as the serial kernel makes it.

Every channel is summed in float64, row by row in batch order, whatever the
array's dtype: the sums are long (hundreds of thousands of terms) and float32
running sums would lose digits that NumPy's pairwise sum keeps. ``reassoc``
lets LLVM keep several vector partial sums within a row (see
:data:`numconv._config.REDUCTION_OPTIONS`); the order is fixed by the compiled
code, so results are deterministic at any thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._config import REDUCTION_OPTIONS


@njit(**REDUCTION_OPTIONS)
def channel_sums(g, out, lo, hi):  # pragma: no cover
    """out[c] = Σ_n Σ_p g[n, c, p] for channels ``lo <= c < hi`` of ``g``, shape
    ``(N, C, positions)``, in float64."""
    batch, _, positions = g.shape
    for c in range(lo, hi):
        total = 0.0
        for n in range(batch):
            row = g[n, c]
            for i in range(np.uint64(positions)):  # unsigned: no wraparound code
                total += row[i]
        out[c] = total
