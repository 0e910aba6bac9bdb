"""A blocked transpose of each matrix in a stack: ``out[g] = a[g]ᵀ``.

NumPy copies a transposed view element by element, walking one side a
whole row apart each step. For matrices larger than L2 that is slow: 0.35
ms for down3x3_s2's 1152 × 256 weight gradient (a tenth of the call), 6.7 ms
for 4608 × 512. Going block by block keeps both sides of a block in L1:
0.17 and 1.8 ms (docs/performance.md §41). For matrices that fit in L2 the
two tie.

Serial: the weight gradients that need it transpose a few MB once, after
their products, where a thread hand-off would cost as much as it saves.
"""

from __future__ import annotations

from numba import njit

from .._config import KERNEL_OPTIONS

# Block side: 16 rows of 16 values, one 64-byte line per float32 row, are
# read and 16 such lines written; both stay within L1.
BLOCK = 16


@njit(**KERNEL_OPTIONS)
def transpose_stack(a, out):  # pragma: no cover
    """``out[g, j, i] = a[g, i, j]`` for ``a`` of shape ``(G, I, J)``, ``out`` ``(G, J, I)``."""
    groups, rows, cols = a.shape
    for g in range(groups):
        source, target = a[g], out[g]
        for i0 in range(0, rows, BLOCK):
            i1 = min(rows, i0 + BLOCK)
            for j0 in range(0, cols, BLOCK):
                j1 = min(cols, j0 + BLOCK)
                for i in range(i0, i1):
                    for j in range(j0, j1):
                        target[j, i] = source[i, j]
