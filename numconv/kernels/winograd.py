"""Winograd F(2×2, 3×3) tile transforms, on channel-first arrays (and the input
transform on a channels-last source, for planes a few tiles wide).

A 3×3 convolution of stride 1 computes each 2×2 block of outputs from a 4×4
patch of input. Winograd's minimal filtering algorithm (Lavin & Gray, 2015)
writes that block as

    y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d Bᵀᵀ) ] A

with ``d`` the 4×4 input patch, ``g`` the 3×3 filter and, for F(2×2, 3×3),

    Bᵀ = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    G  = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]].

Summed over input channels, the element-wise product becomes 16 independent
matrix products, one per position ξ of the 4×4 transform: ``M[ξ] = U[ξ] @ V[ξ]``
with ``U[ξ]`` (output × input channels) the transformed filters and ``V[ξ]``
(input channels × tiles) the transformed patches. BLAS runs those; the kernels
here are the transforms on either side, with the adjoints the gradients need.

Tiles are numbered row-major over ``(n, d, i, j)``: a *tile row* is one
``(n, d, i)`` and holds ``tiles_w`` tiles, and tile ``t`` of a run of tile rows
starting at ``row0`` goes to column ``t0 + (row − row0)·tiles_w + j`` of the
transformed arrays. Source arrays are padded
so that every 4×4 patch (and, for the gradient, every 2×2 block) lies inside
them: no bounds checks. Kernels are serial and release the GIL; the algorithm
runs one per worker thread next to single-threaded BLAS, as the GEMM one does.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._config import KERNEL_OPTIONS
from . import simd

# LLVM vectorises a loop over tiles only while it checks few enough pairs of
# pointers for overlap at run time: a loop writing all 16 transformed values
# stays scalar (measured 3 ns per value). So each transform runs as two loops
# over the tiles, each writing (or reading) 8 of the 16 values.


@njit(inline="always", **KERNEL_OPTIONS)
def _tile_row(row, tiles_h, depth):  # pragma: no cover
    """``(n, d, i)`` of a tile row: rows run over images, then depth, then tile rows."""
    return row // (tiles_h * depth), (row // tiles_h) % depth, row % tiles_h


@njit(inline="always", **KERNEL_OPTIONS)
def _input_half(v, c, t0, tiles_w, top, x_a, x_b, x_c):  # pragma: no cover
    """Transform rows ``top`` and ``top + 1`` of ``Bᵀ d B`` for one tile row.

    ``top == 0`` takes patch rows 0-2 (``Bᵀ`` rows 0 − 2 and 1 + 2), ``top == 2``
    rows 1-3 (rows 2 − 1 and 1 − 3); ``x_a, x_b, x_c`` are those three rows.
    """
    first = 4 * top
    for j in range(tiles_w):
        # Unsigned positions: no negative-index wraparound code, which would
        # keep the loop scalar.
        w = np.uint64(2 * j)
        t = np.uint64(t0 + j)
        if top == 0:  # x_a, x_b, x_c = patch rows 0, 1, 2
            p0, p1, p2, p3 = (
                x_a[w] - x_c[w],
                x_a[w + 1] - x_c[w + 1],
                x_a[w + 2] - x_c[w + 2],
                x_a[w + 3] - x_c[w + 3],
            )
            q0, q1, q2, q3 = (
                x_b[w] + x_c[w],
                x_b[w + 1] + x_c[w + 1],
                x_b[w + 2] + x_c[w + 2],
                x_b[w + 3] + x_c[w + 3],
            )
        else:  # x_a, x_b, x_c = patch rows 1, 2, 3
            p0, p1, p2, p3 = (
                x_b[w] - x_a[w],
                x_b[w + 1] - x_a[w + 1],
                x_b[w + 2] - x_a[w + 2],
                x_b[w + 3] - x_a[w + 3],
            )
            q0, q1, q2, q3 = (
                x_a[w] - x_c[w],
                x_a[w + 1] - x_c[w + 1],
                x_a[w + 2] - x_c[w + 2],
                x_a[w + 3] - x_c[w + 3],
            )
        # (Bᵀ d) B: columns 0 − 2, 1 + 2, 2 − 1, 1 − 3 of each row.
        v[first, c, t] = p0 - p2
        v[first + 1, c, t] = p1 + p2
        v[first + 2, c, t] = p2 - p1
        v[first + 3, c, t] = p1 - p3
        v[first + 4, c, t] = q0 - q2
        v[first + 5, c, t] = q1 + q2
        v[first + 6, c, t] = q2 - q1
        v[first + 7, c, t] = q1 - q3


@njit(**KERNEL_OPTIONS)
def input_tiles(src, v, row0, rows, tiles_h, t0, c0):  # pragma: no cover
    """``v[ξ, c, t] = (Bᵀ d B)[ξ]`` for the 4×4 patch ``d`` of tile ``t`` in channel ``c``.

    ``src`` is ``(N, C, D, H, W)`` with ``H ≥ 2·tiles_h + 2`` and
    ``W ≥ 2·tiles_w + 2``; ``v`` is ``(16, C', T)``, its channel ``c`` from
    ``src``'s channel ``c0 + c``. Tile rows ``row0`` to ``row0 + rows`` go to
    columns ``t0`` onwards; ``ξ = 4a + b`` for transform row ``a``, column ``b``.
    """
    _, _, depth, _, width = src.shape
    tiles_w = (width - 2) // 2
    for r in range(rows):
        n, d, i = _tile_row(row0 + r, tiles_h, depth)
        for c in range(v.shape[1]):
            # Unsigned: a channel that may be negative (wraparound code) kept
            # the tile loops scalar, 6× slower.
            channel = np.uint64(c0 + c)
            x0 = src[n, channel, d, 2 * i]
            x1 = src[n, channel, d, 2 * i + 1]
            x2 = src[n, channel, d, 2 * i + 2]
            x3 = src[n, channel, d, 2 * i + 3]
            _input_half(v, c, t0 + r * tiles_w, tiles_w, 0, x0, x1, x2)
            _input_half(v, c, t0 + r * tiles_w, tiles_w, 2, x1, x2, x3)


@njit(inline="always", **KERNEL_OPTIONS)
def _output_row(m, k, t0, tiles_w, y_row, b, lower):  # pragma: no cover
    """One output row of ``Aᵀ m A + b`` per tile.

    Row 0 combines transform rows 0 + 1 + 2; row 1 (``lower``) rows 1 − 2 − 3.
    """
    for j in range(tiles_w):
        w = np.uint64(2 * j)
        t = np.uint64(t0 + j)
        # Aᵀ m: combine the transform rows, one column at a time.
        if lower:
            u0 = m[4, k, t] - m[8, k, t] - m[12, k, t]
            u1 = m[5, k, t] - m[9, k, t] - m[13, k, t]
            u2 = m[6, k, t] - m[10, k, t] - m[14, k, t]
            u3 = m[7, k, t] - m[11, k, t] - m[15, k, t]
        else:
            u0 = m[0, k, t] + m[4, k, t] + m[8, k, t]
            u1 = m[1, k, t] + m[5, k, t] + m[9, k, t]
            u2 = m[2, k, t] + m[6, k, t] + m[10, k, t]
            u3 = m[3, k, t] + m[7, k, t] + m[11, k, t]
        # (Aᵀ m) A: the same combination along the row.
        y_row[w] = u0 + u1 + u2 + b
        y_row[w + 1] = u1 - u2 - u3 + b


@njit(**KERNEL_OPTIONS)
def output_tiles(m, bias, dst, row0, rows, tiles_h, t0, k0):  # pragma: no cover
    """Write ``Aᵀ m A + bias`` of every tile into its 2×2 block of ``dst``.

    ``m`` is ``(16, K', T)``, ``dst`` is ``(N, K, D, 2·tiles_h, 2·tiles_w)``
    and ``bias`` has ``K`` entries; ``m``'s channel ``k`` is ``dst``'s channel
    ``k0 + k`` (``k0 + K' ≤ K``); tile rows and columns as in :func:`input_tiles`.
    """
    _, _, depth, _, width = dst.shape
    tiles_w = width // 2
    for r in range(rows):
        n, d, i = _tile_row(row0 + r, tiles_h, depth)
        for k in range(m.shape[1]):
            channel = np.uint64(k0 + k)  # unsigned, as in input_tiles
            t, b = t0 + r * tiles_w, bias[channel]
            _output_row(m, k, t, tiles_w, dst[n, channel, d, 2 * i], b, False)
            _output_row(m, k, t, tiles_w, dst[n, channel, d, 2 * i + 1], b, True)


@njit(inline="always", **KERNEL_OPTIONS)
def _gradient_half(dm, k, t0, tiles_w, g0, g1, top):  # pragma: no cover
    """Rows ``top`` and ``top + 1`` of ``A g Aᵀ`` for one tile row (see :func:`gradient_tiles`)."""
    first = 4 * top
    for j in range(tiles_w):
        w = np.uint64(2 * j)
        t = np.uint64(t0 + j)
        # A g: rows g0, g0 + g1, g0 − g1, −g1.
        if top == 0:
            p0, p1 = g0[w], g0[w + 1]
            q0, q1 = g0[w] + g1[w], g0[w + 1] + g1[w + 1]
        else:
            p0, p1 = g0[w] - g1[w], g0[w + 1] - g1[w + 1]
            q0, q1 = -g1[w], -g1[w + 1]
        # (A g) Aᵀ: columns 0, 0 + 1, 0 − 1, −1 of each row.
        dm[first, k, t] = p0
        dm[first + 1, k, t] = p0 + p1
        dm[first + 2, k, t] = p0 - p1
        dm[first + 3, k, t] = -p1
        dm[first + 4, k, t] = q0
        dm[first + 5, k, t] = q0 + q1
        dm[first + 6, k, t] = q0 - q1
        dm[first + 7, k, t] = -q1


@njit(**KERNEL_OPTIONS)
def gradient_tiles(gy, dm, row0, rows, tiles_h, t0, k0):  # pragma: no cover
    """``dm[ξ, k, t] = (A g Aᵀ)[ξ]`` for the 2×2 output-gradient block ``g`` of tile ``t``.

    The adjoint of :func:`output_tiles` (without the bias): how a tile's
    output gradient reaches its 16 transformed products. ``gy`` is
    ``(N, K, D, 2·tiles_h, 2·tiles_w)``; ``dm`` is ``(16, K', T)``, its
    channel ``k`` from ``gy``'s channel ``k0 + k``; tile rows and columns as
    in :func:`input_tiles`.
    """
    _, _, depth, _, width = gy.shape
    tiles_w = width // 2
    for r in range(rows):
        n, d, i = _tile_row(row0 + r, tiles_h, depth)
        for k in range(dm.shape[1]):
            channel = np.uint64(k0 + k)  # unsigned, as in input_tiles
            g0 = gy[n, channel, d, 2 * i]
            g1 = gy[n, channel, d, 2 * i + 1]
            _gradient_half(dm, k, t0 + r * tiles_w, tiles_w, g0, g1, 0)
            _gradient_half(dm, k, t0 + r * tiles_w, tiles_w, g0, g1, 2)


# --- channels-last input tiles, for planes a few tiles wide -------------------
#
# On deep layers' small planes (res3x3_7: 4 tiles a row) the loops over a tile
# row are too short for vectors, and the transforms above run in scalar code
# (0.5 ns a value). A channels-last source holds every channel of a patch
# value side by side, so a tile's 16 values are computed for a vector of
# channels at a time and written to ``vt[ξ, t, c]``, channels contiguous: the
# transposed layout of ``v``, which BLAS takes as it is.


@njit(inline="always", **KERNEL_OPTIONS)
def _patch_rows(src, first, second, channels, factor):  # pragma: no cover
    """Four vectors ``src[first + s·C] + factor·src[second + s·C]`` for patch columns ``s``.

    ``factor`` is ±1, so each is an exact sum or difference (one rounding,
    like ``a ± b``).
    """
    return (
        simd.fma(simd.load(src, first), simd.load(src, second), factor),
        simd.fma(simd.load(src, first + channels), simd.load(src, second + channels), factor),
        simd.fma(
            simd.load(src, first + 2 * channels), simd.load(src, second + 2 * channels), factor
        ),
        simd.fma(
            simd.load(src, first + 3 * channels), simd.load(src, second + 3 * channels), factor
        ),
    )


@njit(inline="always", **KERNEL_OPTIONS)
def _patch_columns(vt, at, step, p, one, minus):  # pragma: no cover
    """``(Bᵀ d) B``'s columns 0 − 2, 1 + 2, 2 − 1 and 1 − 3 of one row ``p``, to
    ``vt.flat[at + b·step]``."""
    p0, p1, p2, p3 = p
    simd.store(vt, at, simd.fma(p0, p2, minus))
    simd.store(vt, at + step, simd.fma(p1, p2, one))
    simd.store(vt, at + 2 * step, simd.fma(p2, p1, minus))
    simd.store(vt, at + 3 * step, simd.fma(p1, p3, minus))


@njit(inline="always", **KERNEL_OPTIONS)
def _tile_offsets(row, j, tiles_h, tiles_w, t0, row0, height, width, channels):  # pragma: no cover
    """Flat offsets of tile ``j`` of tile row ``row``: its first value in ``(16, T, C)``
    transformed tiles (tiles from ``t0`` on for rows from ``row0``), and its
    patch's top-left value in a channels-last ``(N, height, width, C)`` source."""
    n, i = row // tiles_h, row % tiles_h
    out = (t0 + (row - row0) * tiles_w + j) * channels
    return out, ((n * height + 2 * i) * width + 2 * j) * channels


@njit(**KERNEL_OPTIONS)
def input_tiles_channels_last(src, vt, row0, rows, tiles_h, t0):  # pragma: no cover
    """``vt[ξ, t, c] = (Bᵀ d B)[ξ]`` for the 4×4 patch ``d`` of tile ``t`` in channel ``c``.

    :func:`input_tiles` (same tiles, same values bit for bit) on a
    channels-last source: ``src`` is ``(N, H, W, C)`` with ``H ≥ 2·tiles_h +
    2``, ``W = 2·tiles_w + 2`` and ``C`` a multiple of the vector lanes;
    ``vt`` is ``(16, T, C)``. Tile rows ``row0`` to ``row0 + rows`` go to
    tiles ``t0`` onwards.
    """
    _, height, width, channels = src.shape
    tiles_w = (width - 2) // 2
    lanes = simd.lanes(src)
    one, minus = src.dtype.type(1), src.dtype.type(-1)
    step = vt.shape[1] * channels  # one transform position ξ
    line = width * channels  # one source row
    for row in range(row0, row0 + rows):
        for j in range(tiles_w):
            out, top = _tile_offsets(row, j, tiles_h, tiles_w, t0, row0, height, width, channels)
            for c in range(0, channels, lanes):
                d0, at = top + c, out + c
                # Bᵀ's rows: patch rows 0 − 2, 1 + 2, 2 − 1 and 1 − 3.
                rows_02 = _patch_rows(src, d0, d0 + 2 * line, channels, minus)
                _patch_columns(vt, at, step, rows_02, one, minus)
                rows_12 = _patch_rows(src, d0 + line, d0 + 2 * line, channels, one)
                _patch_columns(vt, at + 4 * step, step, rows_12, one, minus)
                rows_21 = _patch_rows(src, d0 + 2 * line, d0 + line, channels, minus)
                _patch_columns(vt, at + 8 * step, step, rows_21, one, minus)
                rows_13 = _patch_rows(src, d0 + line, d0 + 3 * line, channels, minus)
                _patch_columns(vt, at + 12 * step, step, rows_13, one, minus)


@njit(inline="always", **KERNEL_OPTIONS)
def _gradient_columns(dmt, at, step, p0, p1, one, minus):  # pragma: no cover
    """``(A g) Aᵀ``'s columns 0, 0 + 1, 0 − 1 and −1 of one row ``(p0, p1)``, to
    ``dmt.flat[at + b·step]``."""
    simd.store(dmt, at, p0)
    simd.store(dmt, at + step, simd.fma(p0, p1, one))
    simd.store(dmt, at + 2 * step, simd.fma(p0, p1, minus))
    simd.store(dmt, at + 3 * step, simd.fma(simd.zero(dmt), p1, minus))


@njit(**KERNEL_OPTIONS)
def gradient_tiles_channels_last(gy, dmt, row0, rows, tiles_h, t0):  # pragma: no cover
    """``dmt[ξ, t, k] = (A g Aᵀ)[ξ]`` for the 2×2 output-gradient block ``g`` of tile ``t``.

    :func:`gradient_tiles` (the same values; a zero may come out as +0 where
    it gave −0) on a channels-last ``gy``, ``(N, 2·tiles_h, 2·tiles_w, K)``
    with ``K`` a multiple of the vector lanes; ``dmt`` is ``(16, T, K)``.
    """
    _, height, width, channels = gy.shape
    tiles_w = width // 2
    lanes = simd.lanes(gy)
    one, minus = gy.dtype.type(1), gy.dtype.type(-1)
    step = dmt.shape[1] * channels  # one transform position ξ
    line = width * channels  # one row of gy
    for row in range(row0, row0 + rows):
        for j in range(tiles_w):
            out, top = _tile_offsets(row, j, tiles_h, tiles_w, t0, row0, height, width, channels)
            for c in range(0, channels, lanes):
                g00, g01 = simd.load(gy, top + c), simd.load(gy, top + channels + c)
                g10 = simd.load(gy, top + line + c)
                g11 = simd.load(gy, top + line + channels + c)
                at = out + c
                # A g: rows g0, g0 + g1, g0 − g1, −g1 of the block's rows g0, g1.
                _gradient_columns(dmt, at, step, g00, g01, one, minus)
                _gradient_columns(
                    dmt, at + 4 * step, step, simd.fma(g00, g10, one), simd.fma(g01, g11, one),
                    one, minus,
                )  # fmt: skip
                _gradient_columns(
                    dmt, at + 8 * step, step, simd.fma(g00, g10, minus),
                    simd.fma(g01, g11, minus), one, minus,
                )  # fmt: skip
                _gradient_columns(
                    dmt, at + 12 * step, step, simd.fma(simd.zero(gy), g10, minus),
                    simd.fma(simd.zero(gy), g11, minus), one, minus,
                )  # fmt: skip
