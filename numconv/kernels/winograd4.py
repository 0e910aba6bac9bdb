"""Winograd F(4×4, 3×3) tile transforms, on channel-first arrays.

The larger sibling of :mod:`numconv.kernels.winograd` (read its docstring
first: the tile numbering and the arrays are the same). Each 4×4 block of
outputs comes from a 6×6 patch of input, so a 3×3 layer becomes 36 matrix
products per tile, 2.25 multiply-adds per output against F(2×2)'s 4. With the
interpolation points 0, ±1, ±2 and ∞ (Lavin & Gray, 2015):

    Bᵀ = [[4,  0, -5,  0, 1, 0],     G = [[ 1/4,     0,    0],
          [0, -4, -4,  1, 1, 0],          [-1/6,  -1/6, -1/6],
          [0,  4, -4, -1, 1, 0],          [-1/6,   1/6, -1/6],
          [0, -2, -1,  2, 1, 0],          [1/24,  1/12,  1/6],
          [0,  2, -1, -2, 1, 0],          [1/24, -1/12,  1/6],
          [0,  4,  0, -5, 0, 1]]          [   0,     0,    1]]

    Aᵀ = [[1, 1,  1, 1,  1, 0],
          [0, 1, -1, 2, -2, 0],
          [0, 1,  1, 4,  4, 0],
          [0, 1, -1, 8, -8, 1]]

Every transform is separable: first along H, as whole rows combined into
rows (contiguous loads and stores, which LLVM vectorises over the width), then
along W, tile by tile, from a scratch row. Each loop writes at most six arrays'
worth of values: with more, LLVM gives up vectorising over the tiles (see the
F(2×2) module). The tile stride along W is 4, so the second stage reads or
writes groups of 4 neighbouring values, which LLVM turns into shuffles.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._config import KERNEL_OPTIONS
from .winograd import _tile_row

# The three combinations, written once each. Every pass applies one of them
# along H (to whole rows) or along W (to a tile's values). Inlined, they give
# the same results bit for bit as the formulas written in place, and ran as
# fast or faster (input transform 0.18 -> 0.16 ms on a 56² chunk), except in
# _output_row (see there).


@njit(inline="always", **KERNEL_OPTIONS)
def _times_bt(p0, p1, p2, p3, p4, p5):  # pragma: no cover
    """``Bᵀ p`` for six values ``p``: the input transform along one axis."""
    return (
        4 * p0 - 5 * p2 + p4,
        (p3 + p4) - 4 * (p1 + p2),
        (p4 - p3) + 4 * (p1 - p2),
        (p4 - p2) + 2 * (p3 - p1),
        (p4 - p2) - 2 * (p3 - p1),
        4 * p1 - 5 * p3 + p5,
    )


@njit(inline="always", **KERNEL_OPTIONS)
def _times_at(m0, m1, m2, m3, m4, m5):  # pragma: no cover
    """``Aᵀ m`` for six values ``m``: the output transform along one axis."""
    return (
        m0 + (m1 + m2) + (m3 + m4),
        (m1 - m2) + 2 * (m3 - m4),
        (m1 + m2) + 4 * (m3 + m4),
        (m1 - m2) + 8 * (m3 - m4) + m5,
    )


@njit(inline="always", **KERNEL_OPTIONS)
def _times_a(g0, g1, g2, g3):  # pragma: no cover
    """``A g`` for four values ``g``: the gradient transform (the adjoint of ``Aᵀ``)."""
    even, odd = g0 + g2, g1 + g3
    even4, odd2 = g0 + 4 * g2, 2 * g1 + 8 * g3
    return g0, even + odd, even - odd, even4 + odd2, even4 - odd2, g3


@njit(inline="always", **KERNEL_OPTIONS)
def _store_six(out, first, channel, tile, values):  # pragma: no cover
    """``out[first + i, channel, tile] = values[i]`` for a tile's six transformed values."""
    c0, c1, c2, c3, c4, c5 = values
    out[first, channel, tile], out[first + 1, channel, tile] = c0, c1
    out[first + 2, channel, tile], out[first + 3, channel, tile] = c2, c3
    out[first + 4, channel, tile], out[first + 5, channel, tile] = c4, c5


@njit(inline="always", **KERNEL_OPTIONS)
def _input_rows(x0, x1, x2, x3, x4, x5, t, base, width):  # pragma: no cover
    """``t[a, base + w] = Σ_r Bᵀ[a, r] x_r[w]`` for ``w < width``: one tile row along H."""
    for w in range(width):
        at = np.uint64(base + w)
        c0, c1, c2, c3, c4, c5 = _times_bt(x0[w], x1[w], x2[w], x3[w], x4[w], x5[w])
        t[0, at], t[1, at], t[2, at], t[3, at], t[4, at], t[5, at] = c0, c1, c2, c3, c4, c5


@njit(inline="always", **KERNEL_OPTIONS)
def _input_columns(row, e, v, first, c, t0, tiles):  # pragma: no cover
    """``v[first + b, c, t0 + j] = Σ_s row[4j + s] Bᵀ[b, s]`` for ``j < tiles``.

    Tile ``j`` reads ``row[4j : 4j + 6]``: six loads with a stride of four,
    which LLVM compiles to gathers. So the row is first split into its four
    phases ``e[s, j] = row[4j + s]`` (a whole group of four, which LLVM
    compiles to loads and shuffles); tile ``j`` then reads ``e[:, j]`` and
    ``e[0:2, j + 1]``, all unit-stride. ``row`` holds ``4·tiles + 4`` values.
    """
    for j in range(tiles + 1):
        w = np.uint64(4 * j)  # unsigned: no wraparound code, which keeps loops scalar
        e[0, j], e[1, j], e[2, j], e[3, j] = row[w], row[w + 1], row[w + 2], row[w + 3]
    for j in range(tiles):
        t = np.uint64(t0 + j)
        _store_six(
            v, first, c, t, _times_bt(e[0, j], e[1, j], e[2, j], e[3, j], e[0, j + 1], e[1, j + 1])
        )


@njit(**KERNEL_OPTIONS)
def input_tiles(src, v, row0, rows, tiles_h, t0, c0):  # pragma: no cover
    """``v[ξ, c, t] = (Bᵀ d B)[ξ]`` for the 6×6 patch ``d`` of tile ``t`` in channel ``c``.

    ``src`` is ``(N, C, D, H, W)`` with ``H ≥ 4·tiles_h + 2`` and
    ``W = 4·tiles_w + 2``; ``v`` is ``(36, C', T)``, its channel ``c`` from
    ``src``'s channel ``c0 + c``. Tile rows ``row0`` to ``row0 + rows`` go to
    columns ``t0`` onwards; ``ξ = 6a + b`` for transform row ``a``, column ``b``.

    A tile row holds few tiles (7 on a 28² image), too few for a vector loop
    over them, so each channel's tile rows are combined along H into one
    scratch row per transform row, ``4·tiles_w`` values a tile row, and the
    pass along W runs over all of them at once. The last tile of a tile row
    then reads the next one's first two values; it is redone from the two
    values it should have read (``tail``), which each tile row's pass along H
    writes past its end before the next one overwrites them.
    """
    _, _, depth, _, width = src.shape
    tiles_w = (width - 2) // 4
    stride = 4 * tiles_w
    t = np.zeros((6, rows * stride + 4), dtype=src.dtype)
    tail = np.empty((6, rows, 2), dtype=src.dtype)
    e = np.empty((4, rows * tiles_w + 1), dtype=src.dtype)
    for c in range(v.shape[1]):
        # Unsigned: a channel that may be negative (wraparound code) kept the
        # F(2×2) tile loops scalar, 6× slower.
        channel = np.uint64(c0 + c)
        for r in range(rows):
            n, d, i = _tile_row(row0 + r, tiles_h, depth)
            x = src[n, channel, d]
            top = 4 * i
            x0, x1, x2, x3, x4, x5 = (
                x[top],
                x[top + 1],
                x[top + 2],
                x[top + 3],
                x[top + 4],
                x[top + 5],
            )
            _input_rows(x0, x1, x2, x3, x4, x5, t, r * stride, width)
            for a in range(6):
                tail[a, r, 0] = t[a, (r + 1) * stride]
                tail[a, r, 1] = t[a, (r + 1) * stride + 1]
        for a in range(6):
            _input_columns(t[a], e, v, 6 * a, c, t0, rows * tiles_w)
            for r in range(rows):  # each tile row's last tile, from its own two last values
                last = (r + 1) * tiles_w - 1
                at = 4 * last
                values = _times_bt(
                    t[a, at], t[a, at + 1], t[a, at + 2], t[a, at + 3], tail[a, r, 0], tail[a, r, 1]
                )
                _store_six(v, 6 * a, c, t0 + last, values)


@njit(inline="always", **KERNEL_OPTIONS)
def _output_column(m, b, k, t0, tiles, s):  # pragma: no cover
    """``s[r, b, j] = Σ_a Aᵀ[r, a] m[6a + b, k, t0 + j]``: one transform column along H."""
    for j in range(tiles):
        t = np.uint64(t0 + j)
        s0, s1, s2, s3 = _times_at(
            m[b, k, t], m[6 + b, k, t], m[12 + b, k, t],
            m[18 + b, k, t], m[24 + b, k, t], m[30 + b, k, t],
        )  # fmt: skip
        s[0, b, j], s[1, b, j], s[2, b, j], s[3, b, j] = s0, s1, s2, s3


@njit(inline="always", **KERNEL_OPTIONS)
def _output_row(s, first, tiles_w, y_row, bias):  # pragma: no cover
    """``y_row[4j + q] = Σ_b s[b, first + j] Aᵀ[q, b] + bias``: one output row along W."""
    for j in range(tiles_w):
        w = np.uint64(4 * j)
        at = np.uint64(first + j)
        # Aᵀ written out rather than through _times_at: with the helper this
        # loop ran 20% slower on 4-tile rows (same results, other vector code).
        s0, s1, s2, s3, s4, s5 = s[0, at], s[1, at], s[2, at], s[3, at], s[4, at], s[5, at]
        y_row[w] = s0 + (s1 + s2) + (s3 + s4) + bias
        y_row[w + 1] = (s1 - s2) + 2 * (s3 - s4) + bias
        y_row[w + 2] = (s1 + s2) + 4 * (s3 + s4) + bias
        y_row[w + 3] = (s1 - s2) + 8 * (s3 - s4) + s5 + bias


@njit(**KERNEL_OPTIONS)
def output_tiles(m, bias, dst, row0, rows, tiles_h, t0, k0):  # pragma: no cover
    """Write ``Aᵀ m A + bias`` of every tile into its 4×4 block of ``dst``.

    ``m`` is ``(36, K', T)``, ``dst`` is ``(N, K, D, 4·tiles_h, 4·tiles_w)``
    and ``bias`` has ``K`` entries; ``m``'s channel ``k`` is ``dst``'s channel
    ``k0 + k`` (``k0 + K' ≤ K``); tile rows and columns as in
    :func:`input_tiles`. The pass along H runs over all tile rows of a
    channel at once (long loops), the pass along W one tile row at a time.
    """
    _, _, depth, _, width = dst.shape
    tiles_w = width // 4
    s = np.empty((4, 6, rows * tiles_w), dtype=dst.dtype)
    for k in range(m.shape[1]):
        channel = np.uint64(k0 + k)  # unsigned, as in input_tiles
        for b in range(6):
            _output_column(m, b, k, t0, rows * tiles_w, s)
        for r in range(rows):
            n, d, i = _tile_row(row0 + r, tiles_h, depth)
            for q in range(4):
                _output_row(
                    s[q], r * tiles_w, tiles_w, dst[n, channel, d, 4 * i + q], bias[channel]
                )


@njit(inline="always", **KERNEL_OPTIONS)
def _gradient_rows(g0, g1, g2, g3, q, base):  # pragma: no cover
    """``q[a, base + w] = Σ_r Aᵀ[r, a] g_r[w]``: one tile row's gradient rows spread along H."""
    for w in range(g0.shape[0]):
        at = np.uint64(base + w)
        c0, c1, c2, c3, c4, c5 = _times_a(g0[w], g1[w], g2[w], g3[w])
        q[0, at], q[1, at], q[2, at], q[3, at], q[4, at], q[5, at] = c0, c1, c2, c3, c4, c5


@njit(inline="always", **KERNEL_OPTIONS)
def _gradient_columns(row, dm, first, k, t0, tiles):  # pragma: no cover
    """``dm[first + b, k, t0 + j] = Σ_s row[4j + s] Aᵀ[s, b]`` for ``j < tiles``."""
    for j in range(tiles):
        w = np.uint64(4 * j)
        t = np.uint64(t0 + j)
        _store_six(dm, first, k, t, _times_a(row[w], row[w + 1], row[w + 2], row[w + 3]))


@njit(**KERNEL_OPTIONS)
def gradient_tiles(gy, dm, row0, rows, tiles_h, t0, k0):  # pragma: no cover
    """``dm[ξ, k, t] = (A g Aᵀ)[ξ]`` for the 4×4 output-gradient block ``g`` of tile ``t``.

    The adjoint of :func:`output_tiles` (without the bias). ``gy`` is
    ``(N, K, D, 4·tiles_h, 4·tiles_w)``; ``dm`` is ``(36, K', T)``, its
    channel ``k`` from ``gy``'s channel ``k0 + k``; tile rows and columns as
    in :func:`input_tiles`. A tile reads only its own four
    columns, so each channel's tile rows go through the pass along W at once
    with nothing to redo.
    """
    _, _, depth, _, width = gy.shape
    tiles_w = width // 4
    q = np.empty((6, rows * width), dtype=gy.dtype)
    for k in range(dm.shape[1]):
        for r in range(rows):
            n, d, i = _tile_row(row0 + r, tiles_h, depth)
            g = gy[n, np.uint64(k0 + k), d]  # unsigned, as in input_tiles
            top = 4 * i
            _gradient_rows(g[top], g[top + 1], g[top + 2], g[top + 3], q, r * width)
        for a in range(6):
            _gradient_columns(q[a], dm, 6 * a, k, t0, rows * tiles_w)
