"""Forward and weight gradient of few-weight filters as sums over contiguous runs.

A weight ``(o, c, kh, kw)`` of a 2-d layer meets ``xp[n, c, b·sh + kh·dh,
e·sw + kw·dw]`` at output position ``(b, e)``. For a fixed tap ``(c, kh,
kw)`` those input values form an ``Oh × Ow`` grid. Copy, once per tap
*column* ``(c, kw)`` and row phase ``r = (kh·dh) mod sh``, the input rows
``i·sh + r`` gathered at columns ``e·sw + kw·dw``: a plane of rows exactly
``Ow`` long. Tap ``(c, kh, kw)`` then reads that plane flat from row
``(kh·dh) // sh`` on, position for position with the flat output (or output
gradient) of the image: a contiguous run. The planes hold ``C·KW·R`` values
per output position, far fewer than the multiply-adds (a 3×3 layer from 3
channels copies 9 values per position and does ``27·C_out`` multiply-adds).
With one output row (1-d layers) the planes are the W phases instead, which
tap columns read at offsets.

- :func:`forward_sums`: each output row is ``bias + Σ_t w[o, t]·run_t``, two
  rows × 9 taps per pass, written straight into the output.
- :func:`weight_grad_sums`: each weight is the dot product of its run with
  the output gradient, 8 output channels × 3 taps at a time: per 16
  positions, 8 gradient loads and 3 input loads feed 24 FMAs into 24 vector
  accumulators, which LLVM keeps in registers (``reassoc`` lets it split each
  sum into vector lanes; see :mod:`numconv._config`). Output channels and
  taps past the end of a block repeat the last one; their sums are dropped.

Work is split into tasks of whole output rows (or, with one row, of
columns) of one image, numbered row-major; a call does tasks ``[lo, hi)``.
Serial and GIL-free: the algorithm runs one call per worker thread, like the
kernels that run beside BLAS work (see :mod:`numconv.kernels.phases`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._config import KERNEL_OPTIONS, REDUCTION_OPTIONS

OUT_BLOCK = 8  # output channels per register block
TAP_BLOCK = 3  # taps per register block
FORWARD_TAP_BLOCK = 9  # taps per pass of the forward


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


@njit(inline="always", **KERNEL_OPTIONS)
def _planes(x, col_map, row_phases, rows, width):  # pragma: no cover
    """Scratch for a task's planes, and one more plane of zeros after them (see forward_sums)."""
    count = x.shape[1] * col_map.shape[0] * row_phases.shape[0]
    planes = np.empty((count + 1, rows * width), dtype=x.dtype)
    planes[count] = 0
    return planes


@njit(inline="always", **KERNEL_OPTIONS)
def _task(task, out_h, out_w, chunk_rows, chunk_cols):  # pragma: no cover
    """Image, first output row and column, and row and column counts of task ``task``."""
    row_chunks = -(-out_h // chunk_rows)
    col_chunks = -(-out_w // chunk_cols)
    n = task // (row_chunks * col_chunks)
    b0 = (task // col_chunks) % row_chunks * chunk_rows
    e0 = task % col_chunks * chunk_cols
    return n, b0, e0, min(chunk_rows, out_h - b0), min(chunk_cols, out_w - e0)


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
    reach = tap_row.max()  # rows a task reads below its last output row
    reach_cols = tap_col.max()  # columns it reads past its last (one-row tasks)
    planes = _planes(x, col_map, row_phases, chunk_rows + reach, chunk_cols + reach_cols)
    gy_flat = gy.reshape(gy.shape[0], out_channels, out_h * out_w)
    last = out_channels - 1
    for task in range(lo, hi):
        n, b0, e0, rows, cols = _task(task, out_h, out_w, chunk_rows, chunk_cols)
        width = cols + reach_cols
        length = rows * cols  # whole rows (cols == Ow) or one row: a flat run
        _shift_rows(
            x, n, b0, rows + reach, e0, width, row_map, col_map, stride_h, row_phases, planes
        )
        start = b0 * out_w + e0
        for o0 in range(0, out_channels, OUT_BLOCK):
            add_dot_blocks(
                sums, gy_flat[n], start, o0, last, planes, tap_plane, tap_row, tap_col, width,
                length,
            )  # fmt: skip


@njit(inline="always", **REDUCTION_OPTIONS)
def add_dot_blocks(
    sums, gy_rows, start, o0, last, planes, tap_plane, tap_row, tap_col, width, length
):  # fmt: skip  # pragma: no cover
    """Add ``Σ_q gy_rows[o, start + q]·run_t[q]`` into ``sums[o, t]`` for outputs
    ``o0 … min(o0 + 7, last)`` and every tap, 8 outputs × 3 taps per block.

    Tap ``t`` runs from plane ``tap_plane[t]``, row ``tap_row[t]``, column
    ``tap_col[t]`` of ``width``-long rows; outputs past ``last`` and taps
    past the end repeat the last ones, and their sums are dropped.
    """
    taps = tap_plane.shape[0]
    g0 = gy_rows[min(o0, last), start:]
    g1 = gy_rows[min(o0 + 1, last), start:]
    g2 = gy_rows[min(o0 + 2, last), start:]
    g3 = gy_rows[min(o0 + 3, last), start:]
    g4 = gy_rows[min(o0 + 4, last), start:]
    g5 = gy_rows[min(o0 + 5, last), start:]
    g6 = gy_rows[min(o0 + 6, last), start:]
    g7 = gy_rows[min(o0 + 7, last), start:]
    for t0 in range(0, taps, TAP_BLOCK):
        ta = min(t0, taps - 1)
        tb = min(t0 + 1, taps - 1)
        tc = min(t0 + 2, taps - 1)
        x0 = planes[tap_plane[ta], tap_row[ta] * width + tap_col[ta] :]
        x1 = planes[tap_plane[tb], tap_row[tb] * width + tap_col[tb] :]
        x2 = planes[tap_plane[tc], tap_row[tc] * width + tap_col[tc] :]
        block = dot_tap_block(g0, g1, g2, g3, g4, g5, g6, g7, x0, x1, x2, length)
        for i in range(OUT_BLOCK):
            if o0 + i <= last:
                for j in range(TAP_BLOCK):
                    if t0 + j < taps:
                        sums[o0 + i, t0 + j] += block[TAP_BLOCK * i + j]


@njit(inline="always", **REDUCTION_OPTIONS)
def dot_tap_block(g0, g1, g2, g3, g4, g5, g6, g7, x0, x1, x2, length):  # pragma: no cover
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


@njit(**KERNEL_OPTIONS)
def forward_sums(
    x, w, bias, y, row_map, col_map, stride_h, row_phases, tap_plane, tap_row, tap_col,
    chunk_rows, chunk_cols, lo, hi,
):  # fmt: skip  # pragma: no cover
    """Write tasks ``[lo, hi)``'s outputs ``y[n, o, q] = bias[o] + Σ_t w[o, t]·tap_t[q]``.

    Arguments as for :func:`weight_grad_sums`; ``y`` is ``(N, C_out, Oh,
    Ow)`` and ``w`` ``(C_out, T)`` with ``T`` a multiple of
    :data:`FORWARD_TAP_BLOCK`. Taps past the filter's end have zero weights
    and read the plane of zeros after the input's (``tap_plane`` one past
    the last), so they add exact zeros even where the input holds infinities.

    Two output rows × 9 taps per pass over a task's positions: one
    ``y[q] += Σ c·v`` per row with the 18 weights in registers and 9 loads
    shared by both rows. With three rows per pass it ran at 43 GFLOP/s on one
    thread against two rows' 60 (cifar_first, docs/performance.md §20), and
    fewer taps per pass read and write ``y`` more often.
    """
    out_channels, out_h, out_w = y.shape[1:]
    taps = tap_plane.shape[0]
    reach = tap_row.max()
    reach_cols = tap_col.max()
    planes = _planes(x, col_map, row_phases, chunk_rows + reach, chunk_cols + reach_cols)
    spare = np.empty(chunk_rows * chunk_cols, dtype=y.dtype)  # the missing row of an odd pair
    y_flat = y.reshape(y.shape[0], out_channels, out_h * out_w)
    for task in range(lo, hi):
        n, b0, e0, rows, cols = _task(task, out_h, out_w, chunk_rows, chunk_cols)
        width = cols + reach_cols
        length = rows * cols
        _shift_rows(
            x, n, b0, rows + reach, e0, width, row_map, col_map, stride_h, row_phases, planes
        )
        start = b0 * out_w + e0
        for o0 in range(0, out_channels, 2):
            o1 = min(o0 + 1, out_channels - 1)
            y0 = y_flat[n, o0, start : start + length]
            y1 = y_flat[n, o1, start : start + length] if o0 + 1 < out_channels else spare[:length]
            bias0 = bias[o0]
            bias1 = bias[o1]
            for q in range(length):
                y0[q] = bias0
                y1[q] = bias1
            for t0 in range(0, taps, FORWARD_TAP_BLOCK):
                add_tap_block(
                    y0, y1, w[o0], w[o1], t0, planes, tap_plane, tap_row, tap_col, width, length
                )


@njit(inline="always", **KERNEL_OPTIONS)
def add_tap_block(
    y0, y1, w0, w1, t0, planes, tap_plane, tap_row, tap_col, width, length
):  # pragma: no cover
    """``y_i[q] += Σ_j w_i[t0 + j]·tap_{t0+j}[q]`` for the two rows over 9 taps, in order.

    Tap ``t`` reads ``planes[tap_plane[t]]`` from ``tap_row[t]·width +
    tap_col[t]`` on. Shared with :mod:`numconv.kernels.phase_sums`, whose
    planes are laid out differently but read the same way.
    """
    x0 = planes[tap_plane[t0], tap_row[t0] * width + tap_col[t0] :]
    x1 = planes[tap_plane[t0 + 1], tap_row[t0 + 1] * width + tap_col[t0 + 1] :]
    x2 = planes[tap_plane[t0 + 2], tap_row[t0 + 2] * width + tap_col[t0 + 2] :]
    x3 = planes[tap_plane[t0 + 3], tap_row[t0 + 3] * width + tap_col[t0 + 3] :]
    x4 = planes[tap_plane[t0 + 4], tap_row[t0 + 4] * width + tap_col[t0 + 4] :]
    x5 = planes[tap_plane[t0 + 5], tap_row[t0 + 5] * width + tap_col[t0 + 5] :]
    x6 = planes[tap_plane[t0 + 6], tap_row[t0 + 6] * width + tap_col[t0 + 6] :]
    x7 = planes[tap_plane[t0 + 7], tap_row[t0 + 7] * width + tap_col[t0 + 7] :]
    x8 = planes[tap_plane[t0 + 8], tap_row[t0 + 8] * width + tap_col[t0 + 8] :]
    a0, a1, a2, a3, a4, a5, a6, a7, a8 = (
        w0[t0],
        w0[t0 + 1],
        w0[t0 + 2],
        w0[t0 + 3],
        w0[t0 + 4],
        w0[t0 + 5],
        w0[t0 + 6],
        w0[t0 + 7],
        w0[t0 + 8],
    )
    c0, c1, c2, c3, c4, c5, c6, c7, c8 = (
        w1[t0],
        w1[t0 + 1],
        w1[t0 + 2],
        w1[t0 + 3],
        w1[t0 + 4],
        w1[t0 + 5],
        w1[t0 + 6],
        w1[t0 + 7],
        w1[t0 + 8],
    )
    for q in range(length):
        v0 = x0[q]
        v1 = x1[q]
        v2 = x2[q]
        v3 = x3[q]
        v4 = x4[q]
        v5 = x5[q]
        v6 = x6[q]
        v7 = x7[q]
        v8 = x8[q]
        y0[q] += (
            a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3 + a4 * v4 + a5 * v5 + a6 * v6 + a7 * v7 + a8 * v8
        )
        y1[q] += (
            c0 * v0 + c1 * v1 + c2 * v2 + c3 * v3 + c4 * v4 + c5 * v5 + c6 * v6 + c7 * v7 + c8 * v8
        )
