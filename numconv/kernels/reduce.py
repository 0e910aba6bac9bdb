"""Channel sums: the bias gradient of a convolution, ``Σ_n Σ_p g[n, c, p]``.

NumPy's ``sum(axis=(0, 2))`` runs on one thread; the bias gradient of a large
layer (8.4 MB of output gradient on cifar_first) took 0.35 ms of its weight
gradient's time that way. Here each channel is one parallel iteration.

Every channel is summed in float64, row by row in batch order, whatever the
array's dtype: the sums are long (hundreds of thousands of terms) and float32
running sums would lose digits that NumPy's pairwise sum keeps. ``reassoc``
lets LLVM keep several vector partial sums within a row (see
:data:`numconv._config.REDUCTION_OPTIONS`); the order is fixed by the compiled
code, so results are deterministic at any thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._config import REDUCTION_OPTIONS


@njit(parallel=True, **REDUCTION_OPTIONS)
def channel_sums(g, out):  # pragma: no cover
    """out[c] = Σ_n Σ_p g[n, c, p] for ``g`` of shape ``(N, C, positions)``, in float64."""
    batch, channels, positions = g.shape
    for c in prange(channels):
        total = 0.0
        for n in range(batch):
            row = g[n, c]
            for i in range(np.uint64(positions)):  # unsigned: no wraparound code
                total += row[i]
        out[c] = total
