"""Weight gradients as sums over output positions, 24 weights at a time in registers.

A weight ``(o, c, kh, kw)`` of a 2-d layer gets ``Σ gy[n, o, b, e] ·
xp[n, c, b·sh + kh·dh, e·sw + kw·dw]`` over images ``n`` and output positions
``(b, e)``. For a fixed tap ``(c, kh, kw)`` the input values it reads form an
``Oh × Ow`` grid. Copy, once per tap *column* ``(c, kw)`` and row phase
``r = (kh·dh) mod sh``, the input rows ``i·sh + r`` gathered at columns
``e·sw + kw·dw``: a plane of rows exactly ``Ow`` long. Then tap ``(c, kh,
kw)`` reads that plane flat from row ``(kh·dh) // sh`` on, position for
position with the flat output gradient ``gy[n, o]``: every weight's sum is a
dot product of two contiguous runs. The planes hold ``C·KW·R`` rows per
output row, far fewer values than the products read (a 3×3 layer from 3
channels copies 9 values per position and does ``9·3·C_out`` multiply-adds).

The dot products run 8 output channels × 3 taps at a time: per 16 positions,
8 gradient loads and 3 input loads feed 24 vector FMAs into 24 vector
accumulators, which LLVM keeps in registers (``reassoc`` lets it split each
sum into vector lanes; see :mod:`numconv._config`). Output channels and taps
past the end of a block repeat the last one; their sums are dropped.

Work is split into tasks, one per image and chunk of output rows, numbered
row-major; a call does tasks ``[lo, hi)`` and adds its sums into ``sums``
(float64, ``(C_out, C·KH·KW)``), so one call per worker thread gives one
partial sum per thread. Serial and GIL-free, like the other kernels that run
beside BLAS work (see :mod:`numconv.kernels.phases`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._config import KERNEL_OPTIONS, REDUCTION_OPTIONS

OUT_BLOCK = 8  # output channels per register block
TAP_BLOCK = 3  # taps per register block


@njit(inline="always", **KERNEL_OPTIONS)
def _shift_rows(
    x, n, b0, rows, e0, width, row_map, col_map, stride_h, row_phases, planes
):  # pragma: no cover
    """Copy the input rows a task reads into ``planes``, ``rows`` rows of ``width`` each.

    ``planes[(c·M + m)·R + r, i·width + e]`` is ``x[n, c, row_map[(b0 + i)·sh +
    row_phases[r]], col_map[m, e0 + e]]``, a zero where either map holds ``-1``.
    """
    channels = x.shape[1]
    maps = col_map.shape[0]
    phases = row_phases.shape[0]
    for c in range(channels):
        for m in range(maps):
            cols = col_map[m, e0 : e0 + width]
            for r in range(phases):
                plane = planes[(c * maps + m) * phases + r]
                for i in range(rows):
                    src = row_map[(b0 + i) * stride_h + row_phases[r]]
                    dst = plane[i * width : (i + 1) * width]
                    if src < 0:
                        dst[:] = 0
                        continue
                    x_row = x[n, c, src]
                    for e in range(width):
                        s = cols[e]
                        dst[e] = x_row[s] if s >= 0 else 0


@njit(**REDUCTION_OPTIONS)
def weight_grad_sums(
    x, gy, row_map, col_map, stride_h, row_phases, tap_plane, tap_row, tap_col,
    chunk_rows, chunk_cols, lo, hi, sums,
):  # fmt: skip  # pragma: no cover
    """Add tasks ``[lo, hi)``'s weight gradient into ``sums[o, t]``.

    ``x`` is the unpadded input ``(N, C, H, W)``, ``gy`` the output gradient
    ``(N, C_out, Oh, Ow)``. ``row_map`` maps padded rows to input rows
    (``-1``: a zero) for every row a task reads; ``col_map[m, e]`` is the
    input column of plane column ``e`` for column map ``m``. Tap ``t`` reads
    plane ``tap_plane[t]`` from row ``tap_row[t]``, column ``tap_col[t]`` on.

    A task is ``chunk_rows`` output rows by ``chunk_cols`` output columns of
    one image. Either a task spans whole rows (``chunk_cols == Ow``; one
    column map per tap column, ``tap_col`` zero) so that its plane rows are
    exactly ``Ow`` long and run on into each other like the output's; or the
    output is one row (``Oh == 1``) and the maps are the W phases, which tap
    columns read at offsets ``tap_col``.
    """
    out_channels, out_h, out_w = gy.shape[1:]
    taps = tap_plane.shape[0]
    reach = tap_row.max()  # rows a task reads below its last output row
    reach_cols = tap_col.max()
    planes = np.empty(
        (x.shape[1] * col_map.shape[0] * row_phases.shape[0],
         (chunk_rows + reach) * (chunk_cols + reach_cols)),
        dtype=x.dtype,
    )  # fmt: skip
    row_chunks = -(-out_h // chunk_rows)
    col_chunks = -(-out_w // chunk_cols)
    gy_flat = gy.reshape(gy.shape[0], out_channels, out_h * out_w)
    last = out_channels - 1
    for task in range(lo, hi):
        n = task // (row_chunks * col_chunks)
        b0 = (task // col_chunks) % row_chunks * chunk_rows
        e0 = task % col_chunks * chunk_cols
        rows = min(chunk_rows, out_h - b0)
        cols = min(chunk_cols, out_w - e0)
        width = cols + reach_cols
        length = rows * cols  # whole rows (cols == Ow) or one row: a flat run
        _shift_rows(
            x, n, b0, rows + reach, e0, width, row_map, col_map, stride_h, row_phases, planes
        )
        start = b0 * out_w + e0
        for o0 in range(0, out_channels, OUT_BLOCK):
            g0 = gy_flat[n, min(o0, last), start:]
            g1 = gy_flat[n, min(o0 + 1, last), start:]
            g2 = gy_flat[n, min(o0 + 2, last), start:]
            g3 = gy_flat[n, min(o0 + 3, last), start:]
            g4 = gy_flat[n, min(o0 + 4, last), start:]
            g5 = gy_flat[n, min(o0 + 5, last), start:]
            g6 = gy_flat[n, min(o0 + 6, last), start:]
            g7 = gy_flat[n, min(o0 + 7, last), start:]
            for t0 in range(0, taps, TAP_BLOCK):
                ta = min(t0, taps - 1)
                tb = min(t0 + 1, taps - 1)
                tc = min(t0 + 2, taps - 1)
                x0 = planes[tap_plane[ta], tap_row[ta] * width + tap_col[ta] :]
                x1 = planes[tap_plane[tb], tap_row[tb] * width + tap_col[tb] :]
                x2 = planes[tap_plane[tc], tap_row[tc] * width + tap_col[tc] :]
                block = _block_sums(g0, g1, g2, g3, g4, g5, g6, g7, x0, x1, x2, length)
                for i in range(OUT_BLOCK):
                    if o0 + i < out_channels:
                        for j in range(TAP_BLOCK):
                            if t0 + j < taps:
                                sums[o0 + i, t0 + j] += block[TAP_BLOCK * i + j]


@njit(inline="always", **REDUCTION_OPTIONS)
def _block_sums(g0, g1, g2, g3, g4, g5, g6, g7, x0, x1, x2, length):  # pragma: no cover
    """The 24 dot products ``Σ_q g_i[q]·x_j[q]`` over ``q < length``, row-major in ``(i, j)``.

    Written out so that each sum is one scalar LLVM can turn into a vector
    accumulator: a loop over ``i`` and ``j`` with an array of sums stayed in
    memory.
    """
    z = x0.dtype.type(0)
    a00 = a01 = a02 = a10 = a11 = a12 = a20 = a21 = a22 = a30 = a31 = a32 = z
    a40 = a41 = a42 = a50 = a51 = a52 = a60 = a61 = a62 = a70 = a71 = a72 = z
    for q in range(length):
        v0 = x0[q]
        v1 = x1[q]
        v2 = x2[q]
        u = g0[q]
        a00 += u * v0
        a01 += u * v1
        a02 += u * v2
        u = g1[q]
        a10 += u * v0
        a11 += u * v1
        a12 += u * v2
        u = g2[q]
        a20 += u * v0
        a21 += u * v1
        a22 += u * v2
        u = g3[q]
        a30 += u * v0
        a31 += u * v1
        a32 += u * v2
        u = g4[q]
        a40 += u * v0
        a41 += u * v1
        a42 += u * v2
        u = g5[q]
        a50 += u * v0
        a51 += u * v1
        a52 += u * v2
        u = g6[q]
        a60 += u * v0
        a61 += u * v1
        a62 += u * v2
        u = g7[q]
        a70 += u * v0
        a71 += u * v1
        a72 += u * v2
    return (
        a00, a01, a02, a10, a11, a12, a20, a21, a22, a30, a31, a32,
        a40, a41, a42, a50, a51, a52, a60, a61, a62, a70, a71, a72,
    )  # fmt: skip
