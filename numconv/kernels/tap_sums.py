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

- :func:`forward_sums`: each output row is ``bias + Σ_t w[t, o]·run_t``, 8
  rows × 48 positions (AVX2: 4 × 24) at a time over every tap in vector registers
  (:mod:`numconv.kernels.register_blocks`), straight into the output.
- :func:`weight_grad_sums`: each weight is the dot product of its run with
  the output gradient, :data:`OUT_BLOCK` (8 with AVX-512, 4 with AVX2)
  output channels × 3 taps at a time: per vector of positions, 8 gradient
  loads and 3 input loads feed 24 FMAs into 24 vector accumulators (AVX2: 4,
  3, 12 and 12), which LLVM keeps in registers (``reassoc`` lets it split each
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
from . import simd
from .plane_rows import column_fixes, copy_row_columns, copy_row_vectors
from .register_blocks import TILE_VECTORS, sum_outputs

# Output channels per register block: 8 × 3 sums fill 24 of AVX-512's 32
# vector registers; with AVX2's 16 they spilled to the stack every position
# (33 against 61 GFLOP/s for 4 × 3 on a Zen 3 core, §43).
OUT_BLOCK = 8 if simd.REGISTERS >= 32 else 4
TAP_BLOCK = 3  # taps per register block


@njit(inline="always", **KERNEL_OPTIONS)
def _shift_rows(
    x, n, b0, rows, e0, width, row_source, col_map, col_first, col_stride, fixes, planes, flat
):  # fmt: skip  # pragma: no cover
    """Copy the input rows a task reads into ``planes``, ``rows`` rows of ``width`` each.

    ``planes[(c·M + m)·R + r, i·width + e]`` is ``x[n, c, row_source[r, b0 +
    i], col_map[m, e0 + e]]``, a zero where either map holds ``-1``; ``flat``
    is the planes' memory, one axis. Column map ``m`` reads input column
    ``col_first[m] + e·col_stride`` inside the input, so with a stride of 1
    or 2 the rows are copied in vectors (:mod:`numconv.kernels.plane_rows`),
    and the columns in ``fixes`` (other padding modes) then one by one.
    """
    channels, height, in_w = x.shape[1], x.shape[2], x.shape[3]
    maps = col_map.shape[0]
    phases = row_source.shape[0]
    size = planes.shape[1]
    for c in range(channels):
        first_row = (n * channels + c) * height
        for m in range(maps):
            cols = col_map[m, e0:]
            for r in range(phases):
                plane = (c * maps + m) * phases + r
                if col_stride > 2:
                    copy_row_columns(x, n, c, b0, rows, row_source[r], cols, range(width), width,
                                     planes[plane])  # fmt: skip
                    continue
                copy_row_vectors(x, first_row, b0, rows, row_source[r],
                                 col_first[m] + e0 * col_stride, col_stride, in_w, width, flat,
                                 plane * size)  # fmt: skip
                for k in range(1, fixes[m, 0] + 1):
                    e = fixes[m, k] - e0
                    if 0 <= e < width:
                        copy_row_columns(x, n, c, b0, rows, row_source[r], cols, range(e, e + 1),
                                         width, planes[plane])  # fmt: skip


@njit(inline="always", **KERNEL_OPTIONS)
def _planes(x, col_map, row_source, rows, width, tail, ones):  # pragma: no cover
    """Scratch for a task's planes, and the same memory flat with ``tail`` zeros more.

    The forward's blocks read up to ``tail`` values past a run's end: into
    the next plane (junk positions, never stored), or past the last one.
    With ``ones`` a last plane of ones follows the input's: the weight
    gradient's tap for the bias.
    """
    count = x.shape[1] * col_map.shape[0] * row_source.shape[0] + (1 if ones else 0)
    flat = np.zeros(count * rows * width + tail, dtype=x.dtype)  # why whole: see phase_sums
    if ones:
        flat[(count - 1) * rows * width : count * rows * width] = 1
    return flat[: count * rows * width].reshape((count, rows * width)), flat


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
    x, gy, row_source, col_map, col_first, col_stride, tap_plane, tap_row, tap_col,
    chunk_rows, chunk_cols, lo, hi, sums, bias_tap,
):  # fmt: skip  # pragma: no cover
    """Add tasks ``[lo, hi)``'s weight gradient into ``sums[o, t]``.

    With ``bias_tap`` the planes end with one of ones, which the last tap
    reads: its sums are the output gradient's own, the bias gradient, made
    in the same pass over the gradient rows as the weights'.

    ``x`` is the unpadded input ``(N, C, H, W)``, ``gy`` the output gradient
    ``(N, C_out, Oh, Ow)``. ``row_source[r, i]`` is the input row (``-1``: a
    zero) of row ``i`` of row phase ``r``'s planes, for every row a task
    reads; ``col_map[m, e]`` is the input column of plane column ``e`` for
    column map ``m``, ``col_first[m] + e·col_stride`` inside the input. Tap ``t`` reads
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
    planes, flat = _planes(
        x, col_map, row_source, chunk_rows + reach, chunk_cols + reach_cols, 0, bias_tap
    )
    fixes = column_fixes(col_map, col_first, col_stride, x.shape[3])
    gy_flat = gy.reshape(gy.shape[0], out_channels, out_h * out_w)
    last = out_channels - 1
    for task in range(lo, hi):
        n, b0, e0, rows, cols = _task(task, out_h, out_w, chunk_rows, chunk_cols)
        width = cols + reach_cols
        length = rows * cols  # whole rows (cols == Ow) or one row: a flat run
        _shift_rows(
            x, n, b0, rows + reach, e0, width, row_source, col_map, col_first, col_stride, fixes,
            planes, flat,
        )  # fmt: skip
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
    ``o0 … min(o0 + OUT_BLOCK - 1, last)`` and every tap, :data:`OUT_BLOCK` outputs
    × 3 taps per block.

    Tap ``t`` runs from plane ``tap_plane[t]``, row ``tap_row[t]``, column
    ``tap_col[t]`` of ``width``-long rows; outputs past ``last`` and taps
    past the end repeat the last ones, and their sums are dropped.
    """
    if OUT_BLOCK == 8:
        _add_dot_blocks_8(
            sums, gy_rows, start, o0, last, planes, tap_plane, tap_row, tap_col, width, length
        )
    else:
        _add_dot_blocks_4(
            sums, gy_rows, start, o0, last, planes, tap_plane, tap_row, tap_col, width, length
        )


@njit(inline="always", **KERNEL_OPTIONS)
def _add_dot_blocks_8(
    sums, gy_rows, start, o0, last, planes, tap_plane, tap_row, tap_col, width, length
):  # fmt: skip  # pragma: no cover
    """:func:`add_dot_blocks` in 8 × 3 blocks."""
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
        _add_block(sums, block, o0, last, t0, taps, 8)


@njit(inline="always", **KERNEL_OPTIONS)
def _add_dot_blocks_4(
    sums, gy_rows, start, o0, last, planes, tap_plane, tap_row, tap_col, width, length
):  # fmt: skip  # pragma: no cover
    """:func:`add_dot_blocks` in 4 × 3 blocks."""
    taps = tap_plane.shape[0]
    g0 = gy_rows[min(o0, last), start:]
    g1 = gy_rows[min(o0 + 1, last), start:]
    g2 = gy_rows[min(o0 + 2, last), start:]
    g3 = gy_rows[min(o0 + 3, last), start:]
    for t0 in range(0, taps, TAP_BLOCK):
        ta = min(t0, taps - 1)
        tb = min(t0 + 1, taps - 1)
        tc = min(t0 + 2, taps - 1)
        x0 = planes[tap_plane[ta], tap_row[ta] * width + tap_col[ta] :]
        x1 = planes[tap_plane[tb], tap_row[tb] * width + tap_col[tb] :]
        x2 = planes[tap_plane[tc], tap_row[tc] * width + tap_col[tc] :]
        block = dot_tap_block_4(g0, g1, g2, g3, x0, x1, x2, length)
        _add_block(sums, block, o0, last, t0, taps, 4)


@njit(inline="always", **KERNEL_OPTIONS)
def _add_block(sums, block, o0, last, t0, taps, outputs):  # pragma: no cover
    """Add a block's sums, row-major ``(outputs, TAP_BLOCK)``, to the rows and taps that exist."""
    for i in range(outputs):
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


@njit(inline="always", **REDUCTION_OPTIONS)
def dot_tap_block_4(g0, g1, g2, g3, x0, x1, x2, length):  # pragma: no cover
    """:func:`dot_tap_block` for 4 rows of the output gradient: 12 sums."""
    z = x0.dtype.type(0)
    a00 = a01 = a02 = a10 = a11 = a12 = a20 = a21 = a22 = a30 = a31 = a32 = z
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
    return (a00, a01, a02, a10, a11, a12, a20, a21, a22, a30, a31, a32)


@njit(**KERNEL_OPTIONS)
def forward_sums(
    x, w, bias, y, row_source, col_map, col_first, col_stride, tap_plane, tap_row, tap_col,
    chunk_rows, chunk_cols, lo, hi,
):  # fmt: skip  # pragma: no cover
    """Write tasks ``[lo, hi)``'s outputs ``y[n, o, q] = bias[o] + Σ_t w[t, o]·tap_t[q]``.

    Arguments as for :func:`weight_grad_sums`; ``y`` is ``(N, C_out, Oh,
    Ow)`` and ``w`` ``(T, C_out)``, one row of weights per tap. Each task's
    outputs are summed in register blocks (:mod:`numconv.kernels.register_blocks`,
    a block of output channels × 3 vectors over every tap) straight into ``y``.
    """
    out_channels, out_h, out_w = y.shape[1:]
    taps = tap_plane.shape[0]
    reach = tap_row.max()
    reach_cols = tap_col.max()
    tile = TILE_VECTORS * simd.lanes(y)  # the blocks' reads past a task's end
    planes, source = _planes(
        x, col_map, row_source, chunk_rows + reach, chunk_cols + reach_cols, tile, False
    )
    fixes = column_fixes(col_map, col_first, col_stride, x.shape[3])
    size = planes.shape[1]
    spill = np.empty((out_channels, tile), dtype=y.dtype)
    offsets = np.empty(taps, dtype=np.int64)
    y_flat = y.reshape(y.shape[0], out_channels, out_h * out_w)
    for task in range(lo, hi):
        n, b0, e0, rows, cols = _task(task, out_h, out_w, chunk_rows, chunk_cols)
        width = cols + reach_cols
        length = rows * cols
        _shift_rows(
            x, n, b0, rows + reach, e0, width, row_source, col_map, col_first, col_stride, fixes,
            planes, source,
        )  # fmt: skip
        for t in range(taps):
            offsets[t] = tap_plane[t] * size + tap_row[t] * width + tap_col[t]
        start = b0 * out_w + e0
        sum_outputs(source, offsets, w, bias, y_flat[n], start, spill, 0, out_channels, length)
