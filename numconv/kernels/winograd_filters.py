"""Winograd filter transforms ``U = G g Gᵀ`` and their adjoint, for F(2×2) and F(4×4).

Filters arrive as ``taps``, one row of 9 values per filter (``(K·C, 9)``,
row-major 3×3), and leave as ``u`` of shape ``(a², K·C)``: one row per
transform position, so that ``u[ξ]`` viewed as ``(K, C)`` is the left operand
of position ξ's matrix product. ``G`` is ``a × 3`` (a = 4 or 6).

Why kernels and not one BLAS product with ``kron(G, G)``: that product has an
inner dimension of 9, which OpenBLAS runs at 10-16 GFLOP/s (2.5 ms on
512 × 512 filters, F(2×2)); here the transform is separable, ``G`` applied to
the columns and then to the rows (a·9 + a²·3 multiply-adds a filter instead
of a²·9), and vectorised across filters (``docs/performance.md`` §28).

Blocks of ``BLOCK`` filters go through an L1-sized buffer in filter-minor
order, so that every pass runs along contiguous rows of filters. The
transposition into that buffer reads each filter's 9 values, a stride-9
access (gathers), and is most of the time. Kernels are serial and release the
GIL; the algorithms run one per worker thread on a range ``[lo, hi)`` of
filters.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._config import KERNEL_OPTIONS

BLOCK = 128  # filters a pass holds: 9 + 3·6 rows of 128 floats stay in L1


@njit(**KERNEL_OPTIONS)
def transform_filters(taps, g, flip, u, lo, hi):  # pragma: no cover
    """``u[a·i + b, j] = (G g_j Gᵀ)[i, b]`` for filters ``lo ≤ j < hi``.

    ``g_j`` is ``taps[j]`` as 3×3, turned by 180° first when ``flip`` (the
    input gradient's filters).
    """
    a = g.shape[0]
    col = np.empty((9, BLOCK), taps.dtype)  # col[t, l]: tap t of filter j0 + l
    half = np.empty((3 * a, BLOCK), taps.dtype)  # half[3i + s]: (G g)[i, s]
    for j0 in range(lo, hi, BLOCK):
        width = min(BLOCK, hi - j0)
        for l in range(width):
            for t in range(9):
                col[t, l] = taps[j0 + l, 8 - t] if flip else taps[j0 + l, t]
        for i in range(a):
            g0, g1, g2 = g[i, 0], g[i, 1], g[i, 2]
            for s in range(3):
                out, c0, c1, c2 = half[3 * i + s], col[s], col[3 + s], col[6 + s]
                for l in range(width):
                    out[l] = g0 * c0[l] + g1 * c1[l] + g2 * c2[l]
        for i in range(a):
            h0, h1, h2 = half[3 * i], half[3 * i + 1], half[3 * i + 2]
            for b in range(a):
                g0, g1, g2 = g[b, 0], g[b, 1], g[b, 2]
                out = u[a * i + b, j0 : j0 + width]
                for l in range(width):
                    out[l] = h0[l] * g0 + h1[l] * g1 + h2[l] * g2


@njit(**KERNEL_OPTIONS)
def transform_filters_adjoint(du, g, gw, lo, hi):  # pragma: no cover
    """``gw[j] = (Gᵀ dU_j G)`` as 9 taps, for ``dU_j = du[:, j]`` as a × a, ``lo ≤ j < hi``.

    The adjoint of :func:`transform_filters` (without ``flip``): the weight
    gradient's way back from the transform positions to the taps.
    """
    a = g.shape[0]
    half = np.empty((3 * a, BLOCK), du.dtype)  # half[3i + s]: (dU G)[i, s]
    col = np.empty((9, BLOCK), du.dtype)  # col[3r + s, l]: tap (r, s) of filter j0 + l
    for j0 in range(lo, hi, BLOCK):
        width = min(BLOCK, hi - j0)
        for i in range(a):
            h0, h1, h2 = half[3 * i], half[3 * i + 1], half[3 * i + 2]
            d = du[a * i, j0 : j0 + width]
            g0, g1, g2 = g[0, 0], g[0, 1], g[0, 2]
            for l in range(width):
                h0[l] = d[l] * g0
                h1[l] = d[l] * g1
                h2[l] = d[l] * g2
            for b in range(1, a):
                d = du[a * i + b, j0 : j0 + width]
                g0, g1, g2 = g[b, 0], g[b, 1], g[b, 2]
                for l in range(width):
                    h0[l] += d[l] * g0
                    h1[l] += d[l] * g1
                    h2[l] += d[l] * g2
        for r in range(3):
            for s in range(3):
                out = col[3 * r + s]
                first = half[s]
                g0 = g[0, r]
                for l in range(width):
                    out[l] = g0 * first[l]
                for i in range(1, a):
                    gi, hs = g[i, r], half[3 * i + s]
                    for l in range(width):
                        out[l] += gi * hs[l]
        for l in range(width):
            for t in range(9):
                gw[j0 + l, t] = col[t, l]


@njit(**KERNEL_OPTIONS)
def transform_filter_block(taps, g, flip, u, channels, k_lo, k_hi, c_lo, c_hi):  # pragma: no cover
    """:func:`transform_filters` for the filters ``j = k·channels + c`` with
    ``k_lo ≤ k < k_hi`` and ``c_lo ≤ c < c_hi``: one thread's block of a
    ``(K, channels)`` filter bank (its output channels, or in the input
    gradient its input channels)."""
    if c_lo == 0 and c_hi == channels:  # one contiguous run of filters
        transform_filters(taps, g, flip, u, k_lo * channels, k_hi * channels)
        return
    for k in range(k_lo, k_hi):
        transform_filters(taps, g, flip, u, k * channels + c_lo, k * channels + c_hi)
