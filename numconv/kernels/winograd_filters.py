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

Filters are vectorised across: lane ``l`` of every vector holds filter
``j + l``. A filter's 9 taps are contiguous, so they reach and leave the
vectors through de-interleaving loads and interleaving stores
(:mod:`numconv.kernels.simd`), whole vectors at a time; a scalar stride-9
copy did this before and took about half of each kernel's time. Between
them the values stay in registers, except in F(4×4)'s forward transform,
whose 36 rows of ``u`` are written from blocks of ``BLOCK`` filters in an
L1-sized buffer (see :func:`transform_filters`). Kernels are serial and
release the GIL; the algorithms run one per worker thread on a range
``[lo, hi)`` of filters.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._config import KERNEL_OPTIONS
from . import simd

BLOCK = 128  # filters a pass holds: 9 + 3·6 rows of 128 floats stay in L1


@njit(**KERNEL_OPTIONS)
def _taps_to_columns(taps, flip, col, j0, width):  # pragma: no cover
    """``col[t, l]`` = tap ``t`` of filter ``j0 + l`` (tap ``8 − t`` with ``flip``), ``l < width``.

    A whole vector of filters at a time through one de-interleaving load
    (:func:`~numconv.kernels.simd.load_interleaved`) and nine row stores;
    the filters short of a vector one value at a time.
    """
    lanes = simd.lanes(taps)
    stride = col.shape[1]
    whole = width - width % lanes
    for l in range(0, whole, lanes):
        t = simd.load_interleaved(taps, (j0 + l) * 9, 9)
        if flip:
            t = t[::-1]
        for k in range(9):
            simd.store(col, k * stride + l, t[k])
    for l in range(whole, width):
        for k in range(9):
            col[k, l] = taps[j0 + l, 8 - k] if flip else taps[j0 + l, k]


@njit(**KERNEL_OPTIONS)
def transform_filters(taps, g, flip, u, lo, hi):  # pragma: no cover
    """``u[a·i + b, j] = (G g_j Gᵀ)[i, b]`` for filters ``lo ≤ j < hi``.

    ``g_j`` is ``taps[j]`` as 3×3, turned by 180° first when ``flip`` (the
    input gradient's filters).

    F(2×2) (a = 4) takes one vector of filters at a time from their taps to
    their 16 rows of ``u`` in registers: 512 × 512 filters in 0.94 ms on one
    thread, against 1.24 through the blocks and 1.55 before the blocks'
    vector gather. F(4×4)'s 36 rows written a vector at a time ran at half
    the blocks' speed (5.5 against 2.8 ms): 36 write streams of one line
    each. Both give the same sums in the same order.
    """
    if g.shape[0] != 4:
        _transform_blocks(taps, g, flip, u, lo, hi)
        return
    lanes = simd.lanes(taps)
    row = u.shape[1]
    j = lo
    while j + lanes <= hi:
        t = simd.load_interleaved(taps, j * 9, 9)
        if flip:
            t = t[::-1]
        for i in range(4):
            g0, g1, g2 = g[i, 0], g[i, 1], g[i, 2]
            # (G g)[i, s] for the columns s = 0, 1, 2.
            h0 = simd.fma(simd.fma(simd.fma(simd.zero(taps), t[0], g0), t[3], g1), t[6], g2)
            h1 = simd.fma(simd.fma(simd.fma(simd.zero(taps), t[1], g0), t[4], g1), t[7], g2)
            h2 = simd.fma(simd.fma(simd.fma(simd.zero(taps), t[2], g0), t[5], g1), t[8], g2)
            for b in range(4):
                value = simd.fma(simd.fma(simd.fma(simd.zero(taps), h0, g[b, 0]), h1, g[b, 1]),
                                 h2, g[b, 2])  # fmt: skip
                simd.store(u, (4 * i + b) * row + j, value)
        j += lanes
    if j < hi:
        _transform_blocks(taps, g, flip, u, j, hi)


@njit(**KERNEL_OPTIONS)
def _transform_blocks(taps, g, flip, u, lo, hi):  # pragma: no cover
    """:func:`transform_filters` in blocks of filters through L1 buffers, any ``a``."""
    a = g.shape[0]
    col = np.empty((9, BLOCK), taps.dtype)  # col[t, l]: tap t of filter j0 + l
    half = np.empty((3 * a, BLOCK), taps.dtype)  # half[3i + s]: (G g)[i, s]
    for j0 in range(lo, hi, BLOCK):
        width = min(BLOCK, hi - j0)
        _taps_to_columns(taps, flip, col, j0, width)
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
    gradient's way back from the transform positions to the taps. One
    vector of filters at a time, held in registers from ``du``'s rows to
    their 9 taps, which one interleaving store writes filter by filter
    (:func:`~numconv.kernels.simd.store_interleaved`): 2.2-2.8× faster
    than blocks through L1 buffers and a scalar stride-9 copy (512 × 512
    filters on one thread: F(2×2) 0.68-0.86 against 1.73-1.89 ms, F(4×4)
    2.4 against 4.8), with the same sums in the same order. The last
    filters short of a vector go through those blocks.
    """
    a = g.shape[0]
    lanes = simd.lanes(du)
    row = du.shape[1]
    j = lo
    while j + lanes <= hi:
        # t_rs accumulates tap (r, s) = Σ_i G[i, r] · (dU G)[i, s].
        t00 = t01 = t02 = t10 = t11 = t12 = t20 = t21 = t22 = simd.zero(du)
        for i in range(a):
            h0 = h1 = h2 = simd.zero(du)  # (dU G)[i, s]
            for b in range(a):
                d = simd.load(du, (a * i + b) * row + j)
                h0 = simd.fma(h0, d, g[b, 0])
                h1 = simd.fma(h1, d, g[b, 1])
                h2 = simd.fma(h2, d, g[b, 2])
            g0, g1, g2 = g[i, 0], g[i, 1], g[i, 2]
            t00, t01, t02 = simd.fma(t00, h0, g0), simd.fma(t01, h1, g0), simd.fma(t02, h2, g0)
            t10, t11, t12 = simd.fma(t10, h0, g1), simd.fma(t11, h1, g1), simd.fma(t12, h2, g1)
            t20, t21, t22 = simd.fma(t20, h0, g2), simd.fma(t21, h1, g2), simd.fma(t22, h2, g2)
        simd.store_interleaved(gw, j * 9, (t00, t01, t02, t10, t11, t12, t20, t21, t22))
        j += lanes
    if j < hi:
        _adjoint_blocks(du, g, gw, j, hi)


@njit(**KERNEL_OPTIONS)
def _adjoint_blocks(du, g, gw, lo, hi):  # pragma: no cover
    """:func:`transform_filters_adjoint` in blocks through L1 buffers, any filter count."""
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
