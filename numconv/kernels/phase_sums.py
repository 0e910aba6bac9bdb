"""Convolution as sums over flat runs of stride-phase planes, any groups and dims.

Split the padded input along each axis into its stride phases: phase ``p``
of an axis with stride ``s`` holds the padded positions ``i·s + p``. A tap at
offset ``k·d`` along that axis reads phase ``(k·d) mod s`` from position
``o + (k·d) // s`` for output position ``o``: a plain shift. Laid out as
planes whose rows are ``Wq`` long (the output width plus the largest W
shift), with depth and height folded into one row axis of ``Hq`` rows per
depth slice, every tap of a channel is then one contiguous run of its plane,
position for position with a "wide" output of ``Wq``-long rows. The columns
past the output width (and, in 3-d, the rows past its height) are junk: they
are computed and never copied out. Unlike :mod:`numconv.kernels.tap_sums`,
which copies each tap column's rows so that runs have no junk, the planes
here are one copy of the input, whatever the kernel size.

:func:`forward_phase_sums` writes each wide output row as ``bias + Σ_t w[o,
t]·run_t`` over its group's taps, a block of rows × 3 vectors of positions
at a time in vector registers (:mod:`numconv.kernels.register_blocks`), then copies the valid
positions out, to any rows and to every ``col_step``-th column of the
result (the input gradient, one stride-1 forward per stride residue, writes
each residue's positions straight into the gradient this way).
:func:`weight_grad_phase_sums` dots each tap's run with the output
gradient's wide rows, ``OUT_BLOCK`` output channels × 3 taps at a time. Work is
split into tasks of output rows (in the folded row axis) of one image; a
call does tasks ``[lo, hi)``. Serial and GIL-free: the algorithm runs one
call per worker thread.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._config import KERNEL_OPTIONS, REDUCTION_OPTIONS
from . import simd
from .plane_rows import (
    column_fixes,
    copy_row_columns,
    copy_row_vector_pairs,
    copy_row_vectors,
)
from .register_blocks import TILE_VECTORS, sum_outputs
from .tap_sums import OUT_BLOCK, add_dot_blocks


@njit(inline="always", **KERNEL_OPTIONS)
def _copy_planes(
    x, n, r0, rows, row_source, col_source, col_first, col_stride, fixes, width, planes, flat,
    origin,
):  # fmt: skip  # pragma: no cover
    """Plane rows ``[r0, r0 + rows)`` of image ``n`` into ``planes``, ``width`` values each.

    ``planes[(c·PR + pr)·PC + pc, origin + i·width + e]`` is ``x[n, c,
    row_source[pr, r0 + i], col_source[pc, e]]``, a zero where either source
    is ``-1``; ``flat`` is the planes' memory, one axis.

    Rows are copied in vectors with stride 1 or 2 along W: plane column ``e``
    of W phase ``pc`` reads input column ``col_first[pc] + e·col_stride``,
    masked loads giving the zeros outside the input (zero padding), and the
    columns in ``fixes`` (:func:`~numconv.kernels.plane_rows.column_fixes`: other padding modes) are
    then copied one by one from ``col_source``. The rows are 14-30 values on
    typical layers: one element at a time they cost ~7 ns a row (§33).
    """
    channels, height, in_w = x.shape[1], x.shape[2], x.shape[3]
    row_phases, col_phases = row_source.shape[0], col_source.shape[0]
    size = planes.shape[1]
    # Stride 2 with both W phases: one pair of loads per vector serves both.
    paired = col_stride == 2 and col_phases == 2 and col_first[1] == col_first[0] + 1
    for c in range(channels):
        for pr in range(row_phases):
            if paired:
                plane = c * row_phases + pr
                copy_row_vector_pairs(x, (n * channels + c) * height, r0, rows, row_source[pr],
                                      col_first[0], in_w, width, flat, 2 * plane * size + origin,
                                      (2 * plane + 1) * size + origin)  # fmt: skip
            for pc in range(col_phases):
                plane = (c * row_phases + pr) * col_phases + pc
                if col_stride > 2:
                    copy_row_columns(x, n, c, r0, rows, row_source[pr], col_source[pc],
                                        range(width), width, planes[plane, origin:])  # fmt: skip
                    continue
                if not paired:
                    copy_row_vectors(x, (n * channels + c) * height, r0, rows, row_source[pr],
                                     col_first[pc], col_stride, in_w, width, flat,
                                     plane * size + origin)  # fmt: skip
                count = fixes[pc, 0]
                if count:
                    copy_row_columns(x, n, c, r0, rows, row_source[pr], col_source[pc],
                                        fixes[pc, 1 : count + 1], width,
                                        planes[plane, origin:])  # fmt: skip


@njit(**KERNEL_OPTIONS)
def plane_elements(
    channels, row_phases, col_source, tap_row, chunk_rows, tail, images
):  # pragma: no cover
    """Values of a task's planes (and the ``tail`` after them) for ``channels`` input channels:
    the size of the ``scratch`` a kernel's caller hands it (see :func:`_plane_space`)."""
    width = col_source.shape[1]
    size = images * (chunk_rows + tap_row.max() + 1) * width
    return channels * row_phases * col_source.shape[0] * size + tail


@njit(inline="always", **KERNEL_OPTIONS)
def _plane_space(
    x, row_source, col_source, tap_row, chunk_rows, tail, images, scratch
):  # pragma: no cover
    """Plane width, the taps' row reach, the input's plane count, room for a task's planes,
    and the same memory flat with ``tail`` zeros more.

    Each plane holds one more row than the taps reach below a task's last
    row: the last row's junk columns run on into it. The forward's blocks
    read up to ``tail`` values past a run's end: into the next plane (junk
    positions, never stored), or past the last one. A task of several
    ``images`` holds each image's rows after the other's in each plane.

    The memory is the caller's ``scratch`` when it holds
    :func:`plane_elements` values, else a fresh array: freed at the end of
    each call, a fresh buffer of a few hundred KB moved the heap top up and
    back down every call in some processes, so its pages faulted in anew
    (g4_k5_s2's forward, 201 faults a call; docs/performance.md §42).
    """
    width = col_source.shape[1]
    reach = tap_row.max()
    count = x.shape[1] * row_source.shape[0] * col_source.shape[0]
    size = images * (chunk_rows + reach + 1) * width
    need = plane_elements(
        x.shape[1], row_source.shape[0], col_source, tap_row, chunk_rows, tail, images
    )  # = count·size + tail
    flat = scratch[:need] if scratch.shape[0] >= need else np.empty(need, dtype=x.dtype)
    # Zeroed whole: with only the tail zeroed the forward ran 4-7% slower
    # (g8_3x3, g4_k5_s2; the junk positions then read leftover memory), and
    # the weight gradient was no faster (docs/performance.md §31).
    flat[:] = 0
    return width, reach, count, flat[: count * size].reshape((count, size)), flat


@njit(inline="always", **KERNEL_OPTIONS)
def _start_task(
    x, task, chunks, chunk_rows, out_rows, reach, row_source, col_source, col_first, col_stride,
    fixes, width, planes, flat,
):  # fmt: skip  # pragma: no cover
    """Copy task ``task``'s plane rows; return its image, first wide row and row count."""
    n = task // chunks
    r0 = task % chunks * chunk_rows
    rows = min(chunk_rows, out_rows - r0)
    _copy_planes(x, n, r0, rows + reach + 1, row_source, col_source, col_first, col_stride,
                 fixes, width, planes, flat, 0)  # fmt: skip
    return n, r0, rows


@njit(inline="always", **KERNEL_OPTIONS)
def _sum_buffers(
    x, y, row_source, col_source, col_first, col_stride, tap_row, chunk_rows, scratch
):  # fmt: skip  # pragma: no cover
    """The forwards' buffers: plane width, the taps' row reach, the planes and their
    flat memory, the column fixes, and the wide and spill rows of ``y``'s channels."""
    tile = TILE_VECTORS * simd.lanes(y)  # the blocks' reads past a task's end
    width, reach, _, planes, source = _plane_space(
        x, row_source, col_source, tap_row, chunk_rows, tile, 1, scratch
    )
    fixes = column_fixes(col_source, col_first, col_stride, x.shape[3])
    wide = np.empty((y.shape[1], chunk_rows * width), dtype=y.dtype)
    spill = np.empty((y.shape[1], tile), dtype=y.dtype)
    return width, reach, planes, source, fixes, wide, spill


@njit(**KERNEL_OPTIONS)
def forward_phase_sums(
    x, w, bias, y, row_source, col_source, col_first, col_stride, tap_plane, tap_row, tap_col,
    row_target, out_w, col_step, col_offset, chunk_rows, lo, hi, scratch,
):  # fmt: skip  # pragma: no cover
    """Write tasks ``[lo, hi)``'s outputs ``y[n, o] = bias[o] + Σ_t w[g, t, o - g·C_out/G]·x_t``.

    ``x`` is the unpadded input ``(N, C, D·H, W)``; ``y`` the output ``(N,
    C_out, OD·OH, OW)``; ``w`` ``(G, T, C_out/G)``, each group's filters one
    row per tap; ``bias`` ``(C_out,)``. ``row_source[pr, r]`` is the input
    row (``d·H + h``, or ``-1`` for a zero) of plane row ``r`` in row phase
    ``pr`` (a depth and height phase pair); ``col_source[pc, e]`` the input
    column of plane column ``e`` in W phase ``pc``: ``col_first[pc] +
    e·col_stride`` inside the input (the copy's vector path relies on it,
    :func:`_copy_planes`). Group ``g``'s tap ``t``
    reads plane ``tap_plane[g, t]`` from row ``tap_row[t]``, column
    ``tap_col[t]`` on.

    Wide output row ``r`` goes to row ``row_target[r]`` of ``y`` (``-1``:
    a junk row, between depth slices), its first ``out_w`` columns ``e`` to
    columns ``e·col_step + col_offset`` (the forward: ``1`` and ``0``; the
    input gradient writes each stride residue's outputs to every
    ``col_step``-th column); the columns past ``out_w`` are junk. A task is
    ``chunk_rows`` wide rows of one image, summed in register blocks
    (:mod:`numconv.kernels.register_blocks`) into wide rows, then copied out.
    """
    out_rows = row_target.shape[0]
    groups, taps, group_outputs = w.shape
    width, reach, planes, source, fixes, wide, spill = _sum_buffers(
        x, y, row_source, col_source, col_first, col_stride, tap_row, chunk_rows, scratch
    )
    size = planes.shape[1]
    offsets = np.empty(taps, dtype=np.int64)
    chunks = -(-out_rows // chunk_rows)
    for task in range(lo, hi):
        n, r0, rows = _start_task(x, task, chunks, chunk_rows, out_rows, reach, row_source,
                                  col_source, col_first, col_stride, fixes, width, planes,
                                  source)  # fmt: skip
        for g in range(groups):
            for t in range(taps):
                offsets[t] = tap_plane[g, t] * size + tap_row[t] * width + tap_col[t]
            first = g * group_outputs
            length = rows * width
            sum_outputs(source, offsets, w[g], bias, wide, 0, spill, first, group_outputs, length)
            targets = row_target[r0 : r0 + rows]
            _copy_out(wide, y, n, first, group_outputs, targets, width, out_w, col_step, col_offset)


@njit(**KERNEL_OPTIONS)
def input_grad_phase_sums(
    gy, w, w_start, gx, row_source, col_source, col_first, tap_plane, tap_row, tap_col,
    tap_count, row_target, out_w, col_step, col_offset, chunk_rows, lo, hi, scratch,
):  # fmt: skip  # pragma: no cover
    """:func:`forward_phase_sums` of ``gy`` for every stride residue of the input gradient.

    Each task copies ``gy``'s planes once (one phase: the residues are
    stride-1 forwards) and runs every residue on them: residue ``r`` sums
    its first ``tap_count[r]`` taps, ``tap_plane[r, g, t]`` from row
    ``tap_row[r, t]``, column ``tap_col[r, t]`` on, with weights
    ``w[w_start[r]:w_start[r + 1]]`` as ``(G, tap_count[r], C/G)``, and
    writes wide row ``i`` to row ``row_target[r, i]`` of ``gx``, its first
    ``out_w[r]`` columns ``e`` to columns ``e·col_step + col_offset[r]``. No
    bias.
    """
    residues, groups = tap_plane.shape[:2]
    group_outputs = gx.shape[1] // groups
    out_rows = row_target.shape[1]
    width, reach, planes, source, fixes, wide, spill = _sum_buffers(
        gy, gx, row_source, col_source, col_first, 1, tap_row, chunk_rows, scratch
    )
    size = planes.shape[1]
    no_bias = np.zeros(gx.shape[1], dtype=gx.dtype)
    chunks = -(-out_rows // chunk_rows)
    for task in range(lo, hi):
        n, r0, rows = _start_task(gy, task, chunks, chunk_rows, out_rows, reach, row_source,
                                  col_source, col_first, 1, fixes, width, planes,
                                  source)  # fmt: skip
        for r in range(residues):
            offsets = np.empty(tap_count[r], dtype=np.int64)
            weights = w[w_start[r] : w_start[r + 1]].reshape((groups, tap_count[r], group_outputs))
            targets = row_target[r, r0 : r0 + rows]
            for g in range(groups):
                for t in range(offsets.shape[0]):
                    offsets[t] = tap_plane[r, g, t] * size + tap_row[r, t] * width + tap_col[r, t]
                first = g * group_outputs
                sum_outputs(source, offsets, weights[g], no_bias, wide, 0, spill, first,
                            group_outputs, rows * width)  # fmt: skip
                _copy_out(wide, gx, n, first, group_outputs, targets, width, out_w[r], col_step,
                          col_offset[r])  # fmt: skip


@njit(inline="always", **KERNEL_OPTIONS)
def _copy_out(
    wide, y, n, first, count, row_target, width, out_w, col_step, col_offset
):  # fmt: skip  # pragma: no cover
    """Channels ``first … first + count - 1``: wide row ``i``'s first ``out_w`` values to
    ``y[n, o, row_target[i]]``, columns ``e·col_step + col_offset``.

    Called per group, right after its sums (no faster than one copy after
    all groups on g8_3x3: the writes to ``y`` bound it, docs/performance.md
    §31). Channel by channel, so that consecutive rows land next to each
    other. Rows in masked vectors for steps 1 and 2 (step 2 writes every
    other lane; the input gradient's other residue fills the rest), else one
    value at a time (§33).
    """
    lanes = simd.lanes(y)
    rows, y_w = y.shape[2], y.shape[3]
    for o in range(first, first + count):
        for i in range(row_target.shape[0]):
            row = row_target[i]
            if row < 0:
                continue
            read = o * wide.shape[1] + i * width
            if col_step > 2:
                dst = y[n, o, row]
                for e in range(out_w):
                    dst[e * col_step + col_offset] = wide[o, i * width + e]
                continue
            at = ((n * y.shape[1] + o) * rows + row) * y_w + col_offset
            for e0 in range(0, out_w, lanes):
                left = out_w - e0
                v = simd.masked_load(wide, read + e0, 0, left)
                if col_step == 1:
                    simd.masked_store(y, at + e0, v, left, 1)
                else:
                    simd.masked_store(y, at + 2 * e0, simd.spread_low(v), 2 * left, 2)
                    if 2 * left > lanes:
                        simd.masked_store(
                            y, at + 2 * e0 + lanes, simd.spread_high(v), 2 * left - lanes, 2
                        )


@njit(**REDUCTION_OPTIONS)
def weight_grad_phase_sums(
    x, gy, row_source, col_source, col_first, col_stride, tap_plane, tap_row, tap_col,
    row_target, chunk_rows, images, lo, hi, sums, scratch,
):  # fmt: skip  # pragma: no cover
    """Add tasks ``[lo, hi)``'s weight gradient into ``sums[o, t]``; return a finiteness probe.

    Arguments as for :func:`forward_phase_sums`, with ``gy`` the output
    gradient ``(N, C_out, OD·OH, OW)`` and ``tap_plane`` ``(G, T)`` the
    group's ``T = C/G·KD·KH·KW`` taps, unpadded. Each weight is the dot
    product of its tap's run with the output gradient's wide rows, copied
    with zeros in the junk columns and rows, ``OUT_BLOCK`` output channels × 3
    taps at a time (:func:`numconv.kernels.tap_sums.add_dot_blocks`).

    With ``images`` above 1 (then ``chunk_rows`` is every wide row), task
    ``i`` is images ``i·images …``, laid one after the other in each plane,
    and the output gradient's rows likewise with zeros in the rows between
    them: one run of a tap crosses them all. Each dot block ends in 24
    horizontal sums; on 210-long runs of one image they were much of its
    time (g8_3x3_s2, docs/performance.md §40).

    The junk positions multiply zeros by inputs no real output reads at
    that tap: exact zeros while the planes are finite. The return value is
    ``Σ 0·v`` over the planes' values, NaN if any was not finite; then the
    sums are wrong and the caller must compute the gradient another way.
    """
    out_channels = gy.shape[1]
    out_rows = row_target.shape[0]
    groups = tap_plane.shape[0]
    group_outputs = out_channels // groups
    width, reach, count, planes, flat = _plane_space(
        x, row_source, col_source, tap_row, chunk_rows, 0, images, scratch
    )
    fixes = column_fixes(col_source, col_first, col_stride, x.shape[3])
    size = planes.shape[1] // images  # one image's plane rows
    wide = np.empty((out_channels, images * size), dtype=gy.dtype)
    probe = x.dtype.type(0)
    chunks = -(-out_rows // chunk_rows)
    for task in range(lo, hi):
        n0, r0 = task // chunks * images, task % chunks * chunk_rows
        rows = min(chunk_rows, out_rows - r0)
        taken = min(images, x.shape[0] - n0)
        targets = row_target[r0 : r0 + rows]
        for i in range(taken):
            _copy_planes(x, n0 + i, r0, rows + reach + 1, row_source, col_source, col_first,
                         col_stride, fixes, width, planes, flat, i * size)  # fmt: skip
            _copy_gradient_rows(gy, n0 + i, targets, width, wide, i * size)
            if i + 1 < taken:  # the rows up to the next image's: zeros
                for o in range(out_channels):
                    wide[o, i * size + rows * width : (i + 1) * size] = 0
        length = (taken - 1) * size + rows * width
        used = (taken - 1) * size + (rows + reach + 1) * width
        for p in range(count):
            plane = planes[p]
            for q in range(used):
                probe += plane[q] * 0
        for g in range(groups):
            first = g * group_outputs
            last = first + group_outputs - 1
            for o0 in range(first, last + 1, OUT_BLOCK):
                add_dot_blocks(
                    sums, wide, 0, o0, last, planes, tap_plane[g], tap_row, tap_col, width,
                    length,
                )  # fmt: skip
    return probe


@njit(inline="always", **KERNEL_OPTIONS)
def _copy_gradient_rows(gy, n, row_target, width, wide, origin):  # pragma: no cover
    """``wide[o, origin + i·width + e] = gy[n, o, row_target[i], e]``, zeros in the junk
    rows (``row_target[i] < 0``) and columns (``e >= OW``); in masked vectors."""
    lanes = simd.lanes(wide)
    out_channels, out_rows, out_w = gy.shape[1], gy.shape[2], gy.shape[3]
    for o in range(out_channels):
        for i in range(row_target.shape[0]):
            row = row_target[i]
            at = o * wide.shape[1] + origin + i * width
            read = ((n * out_channels + o) * out_rows + row) * out_w
            valid = out_w if row >= 0 else 0  # a junk row: every lane a zero
            for e0 in range(0, width, lanes):
                v = simd.masked_load(gy, read + e0, 0, valid - e0)
                simd.masked_store(wide, at + e0, v, width - e0, 1)
