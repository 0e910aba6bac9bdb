"""Layers with few weights per group: forward and gradients as sums over flat runs.

Grouped, strided and 3-d layers with few weights per group ran on the planar
GEMM (BLAS products with 24 to 64 rows, at well under BLAS's peak, plus an
im2col gather) or on Winograd, whose transforms cost as much as for an
ungrouped layer of the same width. Here (:mod:`numconv.kernels.phase_sums`)
each image's padded input is split once into its stride phases, planes whose
rows run on into each other, so that every tap reads one contiguous run of a
plane; each output row is ``bias + Σ_t w[o, t]·run_t`` over its group's
taps, summed over every tap in vector registers, 8 output channels × 3
vectors of positions at a time (4 × 3 with AVX2's 16 registers)
(:mod:`numconv.kernels.register_blocks`). The copy is one input's worth,
whatever the kernel; the price is the junk columns (the plane width minus
the output width) computed and dropped.

The input gradient is the same sums over the output gradient: one stride-1
forward per stride residue of the input, with the residue's taps reversed
and the filters' channels swapped (:func:`input_grad`). The weight gradient
is each tap's run dotted with the output gradient's wide rows, zeros in
their junk positions (:func:`weight_grad`); where an input the planes hold
is not finite, ``0·inf`` would be NaN there, so such calls go to the planar
GEMM. All three for any groups, dims, stride, dilation and padding mode.
"""

from __future__ import annotations

import collections
import functools
import itertools
import math
from typing import NamedTuple

import numba
import numpy as np

from .. import _aligned, _workspace
from .._padding import extended_map, pad_adjoint_channels_last, source_indices
from .._params import ConvPlan, kernel_array
from .._workers import run_parts, split_range
from ..kernels import register_blocks, simd
from ..kernels.phase_sums import (
    forward_phase_sums,
    input_grad_phase_sums,
    plane_elements,
    weight_grad_phase_sums,
)
from . import planar_gemm
from .common import tap_rows_operands

NAME = "phase_sums"

# Wide output positions per task: the planes a task copies stay in L2 while
# its register blocks sweep them (the same length as the tap sums').
TASK_POSITIONS = 4096

# Weight-gradient runs across several images: at most this long (see _weight_grad_tasks).
RUN_POSITIONS = 1024

# Work per part below which a second thread does not pay: two parts from 1.5×
# this, 16.5 MFLOP. Waking the idle worker costs far more than an empty call's
# ~35 µs (§28) here: one-thread calls beat two-thread ones up to 14.5 MFLOP
# (batch-1 grouped 3×3 stride 2: 0.16 against 0.24 ms forward) and lost from
# 19 MFLOP on (docs/performance.md §33).
PART_FLOPS = 11_000_000


def applies(plan: ConvPlan) -> bool:
    """Every convolution."""
    return True


def forward(plan: ConvPlan, x5, w5, bias, dtype) -> np.ndarray:
    layout = _layout(plan, _part_count(plan, numba.get_num_threads()), TASK_POSITIONS)
    x4 = _rows_array(x5, plan.batch, plan.in_channels, plan.spatial, dtype)
    weights, biases = tap_rows_operands(plan, w5, bias, dtype)
    out_d, out_h, out_w = plan.out
    y = _aligned.empty((plan.batch, plan.out_channels, out_d * out_h, out_w), dtype=dtype)
    run_parts(
        lambda bounds: _sums(x4, weights, biases, y, layout, layout.row_target, 1, 0, bounds),
        layout.parts,
        blas=False,
    )
    return y.reshape(plan.output5)


def input_grad(plan: ConvPlan, w5, gy5, dtype) -> np.ndarray:
    """The input gradient as one stride-1 forward of ``gy`` per stride residue.

    The padded input position ``j = q·s + r`` receives ``Σ gy[o]·w[k]`` over
    the taps with ``k·d ≡ r (mod s)`` at ``o = q - (k·d - r)/s``: for each
    residue ``r`` a stride-1 correlation of ``gy`` with those taps in
    reverse, dilated by the step of ``(k·d - r)/s`` between them and with
    the filters' input and output channels swapped (see
    :func:`_axis_residues`), written straight into every ``s``-th position
    of the gradient. All residues read one copy of ``gy``'s planes per task
    (:func:`~numconv.kernels.phase_sums.input_grad_phase_sums`; a copy per
    residue was most of a thin residue's time, §40). Residues write disjoint
    positions, tasks disjoint rows: no races.
    """
    layout = _gradient_layout(plan, numba.get_num_threads())
    depth, height, width = layout.extent
    shape = (plan.batch, plan.in_channels, depth * height, width)
    # The residues write every position but the gaps: only those need zeros first.
    if layout.padded:  # folded back below, so reused scratch will do
        fill = _workspace.zeroed if layout.gaps else _workspace.scratch
        gx = fill("phase_sums.padded_gradient", shape, dtype)
    else:
        gx = (_aligned.zeros if layout.gaps else _aligned.empty)(shape, dtype=dtype)
    # No residue with taps (a 1-wide input padded at stride 2 with a 1-wide
    # kernel: the one position's residue has none): the zeros are the gradient.
    if layout.tap_count.size:
        gy4 = _rows_array(gy5, plan.batch, plan.out_channels, plan.out, dtype)
        # Every residue's filters in one gather: 48 µs of Python a batch-1 call
        # as four strided views and copies (§33), np.ix_ indexing 0.55 ms (§30).
        weights = np.asarray(w5).reshape(-1).take(layout.weight_index).astype(dtype, copy=False)
        run_parts(
            lambda bounds: input_grad_phase_sums(
                gy4, weights, layout.weight_start, gx, layout.row_source, layout.col_source,
                layout.col_first, layout.tap_plane, layout.tap_row, layout.tap_col,
                layout.tap_count, layout.row_target, layout.out_w, plan.stride[2],
                layout.col_offset, layout.chunk_rows, *bounds,
                _planes_scratch(plan.out_channels, layout, _blocks_tail(dtype), 1, dtype),
            ),
            layout.parts,
            blas=False,
        )  # fmt: skip
    if not layout.padded:
        return gx.reshape(plan.input5)
    gxp = gx.reshape(plan.batch, plan.in_channels, *plan.padded).transpose(0, 2, 3, 4, 1)
    return pad_adjoint_channels_last(gxp, plan.spatial, plan.pads, plan.padding_mode)


def weight_grad(plan: ConvPlan, x5, gy5, dtype) -> np.ndarray:
    """Dot products of the taps' runs with the output gradient's wide rows.

    The wide rows' junk positions are zeros, so they add exact zeros as
    long as the inputs there are finite. The kernel reports whether every
    plane value was; if one was not, ``0·inf`` may have made a NaN no real
    position makes, and the planar GEMM computes the gradient instead.
    """
    count = _part_count(plan, numba.get_num_threads())
    layout = _layout(plan, count, TASK_POSITIONS)
    images, parts = _weight_grad_tasks(plan, count, TASK_POSITIONS)
    x4 = _rows_array(x5, plan.batch, plan.in_channels, plan.spatial, dtype)
    gy4 = _rows_array(gy5, plan.batch, plan.out_channels, plan.out, dtype)

    def part(bounds):
        sums = _aligned.zeros((plan.out_channels, layout.tap_row.shape[0]), dtype=np.float64)
        probe = weight_grad_phase_sums(
            x4, gy4, layout.row_source, layout.col_source, layout.col_first, layout.col_stride,
            layout.tap_plane, layout.tap_row, layout.tap_col, layout.row_target,
            layout.chunk_rows, images, *bounds, sums,
            _planes_scratch(plan.in_channels, layout, 0, images, dtype),
        )  # fmt: skip
        return sums, probe

    partials = run_parts(part, parts, blas=False)
    if not all(np.isfinite(probe) for _, probe in partials):
        return planar_gemm.weight_grad(plan, x5, gy5, dtype)
    total = partials[0][0]
    for sums, _ in partials[1:]:  # in part order: deterministic at a fixed thread count
        total += sums
    return total.astype(dtype).reshape(plan.weight5)


@functools.lru_cache(maxsize=256)
def _weight_grad_tasks(
    plan: ConvPlan, part_count: int, task_positions: int
) -> tuple[int, list[tuple[int, int]]]:
    """Images a weight-gradient task takes, and each part's range of tasks (cached).

    Where a task is one whole image, several: up to ``task_positions``
    plane positions, but not so many that a part has none. Their runs cross
    every image of the task (see
    :func:`~numconv.kernels.phase_sums.weight_grad_phase_sums`).
    """
    layout = _layout(plan, part_count, task_positions)
    if layout.chunk_rows < layout.out_rows:  # images split into tasks of rows
        return 1, layout.parts
    size = (layout.out_rows + int(layout.tap_row.max()) + 1) * layout.col_source.shape[1]
    images = max(1, min(RUN_POSITIONS // size, -(-plan.batch // part_count)))
    tasks = -(-plan.batch // images)
    return images, split_range(tasks, min(part_count, tasks))


def group_weights(plan: ConvPlan) -> int:
    """Weights of one group's filters: ``C_out/G · C/G · KD·KH·KW``."""
    return plan.out_channels // plan.groups * math.prod(plan.weight5[1:])


@functools.lru_cache(maxsize=256)
def strided_residues_have_several_taps(plan: ConvPlan) -> bool:
    """Whether every stride residue of every strided axis has two taps or more (or none).

    The input gradient runs one forward per residue; with one tap along an
    axis (3×3 at stride 2) those forwards are thin, and the forward's and
    weight gradient's runs short; the selection gives such layers to these
    sums only with fewer weights a group. Cached: the selection asks on every
    call, and the count took 1.6 µs a strided plan.
    """
    for size, stride, dilation in zip(plan.kernel, plan.stride, plan.dilation, strict=True):
        if stride > 1:
            per_residue = collections.Counter(k * dilation % stride for k in range(size))
            if min(per_residue.values()) < 2:
                return False
    return True


def scratch_elements(plan: ConvPlan) -> int:
    """Values of the planes and wide outputs every part allocates, summed over the parts.

    The larger of the forward's and the weight gradient's (whose tasks may
    hold several images).
    """
    count = _part_count(plan, numba.get_num_threads())
    layout = _layout(plan, count, TASK_POSITIONS)
    images, parts = _weight_grad_tasks(plan, count, TASK_POSITIONS)
    width = layout.col_source.shape[1]
    planes = plan.in_channels * layout.row_source.shape[0] * layout.col_source.shape[0]
    plane_rows = layout.chunk_rows + int(layout.tap_row.max()) + 1
    tail = _blocks_tail(np.float32)  # float32's, the longer
    per_part = planes * plane_rows * width + tail  # the planes and the blocks' overrun
    per_part += plan.out_channels * (layout.chunk_rows * width + tail)  # wide and spill rows
    # The weight gradient: several images' planes and wide rows (gaps included).
    per_task = (planes + plan.out_channels) * images * plane_rows * width
    return max(per_part * len(layout.parts), per_task * len(parts))


@functools.lru_cache(maxsize=256)
def _part_count(plan: ConvPlan, threads: int) -> int:
    """Parts worth handing out: one per :data:`PART_FLOPS`, at most one per thread (cached)."""
    return max(1, min(threads, round(plan.flops / PART_FLOPS)))


def _rows_array(a5, batch: int, channels: int, spatial, dtype) -> np.ndarray:
    """``(N, C, D, H, W)`` as the kernel's ``(N, C, D·H, W)`` rows."""
    depth, height, width = spatial
    return kernel_array(a5, (batch, channels, depth * height, width), dtype)


def _sums(x4, weights, biases, y, layout, row_target, col_step, col_offset, bounds) -> None:
    forward_phase_sums(
        x4, weights, biases, y, layout.row_source, layout.col_source, layout.col_first,
        layout.col_stride, layout.tap_plane, layout.tap_row, layout.tap_col, row_target,
        layout.out_w, col_step, col_offset, layout.chunk_rows, *bounds,
        _planes_scratch(x4.shape[1], layout, _blocks_tail(y.dtype), 1, y.dtype),
    )  # fmt: skip


def _blocks_tail(dtype) -> int:
    """Values the register blocks read past a run's end (the planes' tail)."""
    return register_blocks.TILE_VECTORS * simd.VECTOR_BYTES // np.dtype(dtype).itemsize


def _planes_scratch(channels: int, layout, tail: int, images: int, dtype) -> np.ndarray:
    """This thread's scratch for a kernel's planes of ``channels`` input channels, so that
    they are not a fresh buffer every call (:func:`~numconv.kernels.phase_sums.plane_elements`)."""
    count = plane_elements(
        channels, len(layout.row_source), layout.col_source, layout.tap_row, layout.chunk_rows,
        tail, images,
    )  # fmt: skip
    return _workspace.scratch("phase_sums.planes", (count,), dtype)


class _Layout(NamedTuple):
    row_source: np.ndarray  # per (depth, height) phase pair: input row of each plane row, or -1
    col_source: np.ndarray  # per W phase: input column of each plane column, or -1
    col_first: np.ndarray  # per W phase: input column of plane column 0, if not in the padding
    col_stride: int  # input columns from one plane column to the next (the W stride)
    tap_plane: np.ndarray  # (G, T): each group's taps' planes
    tap_row: np.ndarray  # (T,): first plane row each tap reads
    tap_col: np.ndarray  # (T,): first plane column each tap reads
    plane_h: int  # plane rows per depth slice
    out_rows: int  # wide output rows, junk rows between depth slices included
    row_target: np.ndarray  # (out_rows,): output row (OD·OH rows) of each wide row, or -1
    out_w: int  # output columns per wide row
    chunk_rows: int  # wide output rows per task
    parts: list[tuple[int, int]]  # task ranges, one per part


@functools.lru_cache(maxsize=256)
def _layout(plan: ConvPlan, part_count: int, task_positions: int) -> _Layout:
    """Everything but the arrays' values, for one problem, part count and task size.

    Cached: it depends on the shape only, and the kernel never writes these arrays.
    """
    offsets = [
        [k * dilation for k in range(size)]
        for size, dilation in zip(plan.kernel, plan.dilation, strict=True)
    ]
    phases = [sorted({o % s for o in axis}) for axis, s in zip(offsets, plan.stride, strict=True)]
    shifts = [max(axis) // s for axis, s in zip(offsets, plan.stride, strict=True)]
    grid = [o + shift for o, shift in zip(plan.out, shifts, strict=True)]  # plane extent per axis
    plane_h, width = grid[1], grid[2]
    out_rows = (plan.out[0] - 1) * plane_h + plan.out[1]
    reach = shifts[0] * plane_h + shifts[1]
    sources = [
        extended_map(source_indices(n, before, after, plan.padding_mode), extent * s)
        for n, (before, after), extent, s in zip(
            plan.spatial, plan.pads, grid, plan.stride, strict=True
        )
    ]
    # Plane rows are (depth, height) positions, read up to one row past the taps' reach.
    rows = np.arange(out_rows + reach + 1)
    depth_index, height_index = rows // plane_h, rows % plane_h
    inside = depth_index < grid[0]
    depth_index = np.minimum(depth_index, grid[0] - 1)
    row_pairs = [(pd, ph) for pd in phases[0] for ph in phases[1]]
    row_source = np.full((len(row_pairs), len(rows)), -1, dtype=np.int64)
    for p, (pd, ph) in enumerate(row_pairs):
        d = sources[0][depth_index * plan.stride[0] + pd]
        h = sources[1][height_index * plan.stride[1] + ph]
        row_source[p] = np.where(inside & (d >= 0) & (h >= 0), d * plan.spatial[1] + h, -1)
    columns = np.arange(width) * plan.stride[2]
    col_source = np.array([sources[2][columns + pw] for pw in phases[2]], dtype=np.int64)
    # Inside the input, col_source is col_first + e·stride: the kernel copies those in vectors.
    col_first = np.array([pw - plan.pads[2][0] for pw in phases[2]], dtype=np.int64)

    planes_per_channel = len(row_pairs) * len(phases[2])
    tap_plane, tap_row, tap_col = [], [], []
    for c in range(plan.in_channels // plan.groups):
        for od in offsets[0]:
            for oh in offsets[1]:
                for ow in offsets[2]:
                    pair = row_pairs.index((od % plan.stride[0], oh % plan.stride[1]))
                    pw = phases[2].index(ow % plan.stride[2])
                    tap_plane.append((c * len(row_pairs) + pair) * len(phases[2]) + pw)
                    tap_row.append(od // plan.stride[0] * plane_h + oh // plan.stride[1])
                    tap_col.append(ow // plan.stride[2])
    group_planes = plan.in_channels // plan.groups * planes_per_channel
    planes = np.array(tap_plane, dtype=np.int64)
    tap_planes = planes + group_planes * np.arange(plan.groups, dtype=np.int64)[:, None]

    row_target = _row_targets(plane_h, out_rows, plan.out, (1, 1), (0, 0), plan.out[1])
    chunk_rows = _chunk_rows(plan.batch, out_rows, width, reach, part_count, task_positions)
    tasks = plan.batch * -(-out_rows // chunk_rows)
    return _Layout(
        row_source, col_source, col_first, plan.stride[2], tap_planes,
        np.array(tap_row, dtype=np.int64), np.array(tap_col, dtype=np.int64), plane_h,
        out_rows, row_target, plan.out[2], chunk_rows, split_range(tasks, min(part_count, tasks)),
    )  # fmt: skip


def _row_targets(plane_h: int, out_rows: int, out, steps, offsets, target_h: int) -> np.ndarray:
    """Row of the ``(·, target_h rows a slice, ·)`` result each wide output row goes to, or -1.

    Wide row ``r`` is output row ``r mod plane_h`` of depth slice ``r //
    plane_h`` (junk from ``out[1]`` on, and from depth slice ``out[0]`` on:
    the input gradient's residues share ``out_rows``); output position ``(d,
    h)`` goes to ``(d·steps[0] + offsets[0], h·steps[1] + offsets[1])``.
    """
    rows = np.arange(out_rows)
    d, h = rows // plane_h, rows % plane_h
    target = (d * steps[0] + offsets[0]) * target_h + h * steps[1] + offsets[1]
    return np.where((h < out[1]) & (d < out[0]), target, -1).astype(np.int64)


class _GradientLayout(NamedTuple):
    """The input gradient's residues as forwards over shared planes of ``gy``.

    ``R`` residues (the stride residues some tap reaches), each with its
    own taps into the one plane layout (``tap_*[r, …]``, the first
    ``tap_count[r]`` of them), its own weights (``(G, tap_count[r], C/G)``
    from ``weight_start[r]`` on in one flat array) and its own targets:
    wide output row ``i`` of residue ``r`` goes to gradient row
    ``row_target[r, i]`` (``-1``: none), its first ``out_w[r]`` columns to
    every ``stride``-th column from ``col_offset[r]``.
    """

    row_source: np.ndarray  # (1, rows): gy row (depth·height) of each plane row, or -1
    col_source: np.ndarray  # (1, width): gy column of each plane column, or -1
    col_first: np.ndarray  # (1,): gy column of plane column 0
    tap_plane: np.ndarray  # (R, G, T): each residue's and group's taps' planes
    tap_row: np.ndarray  # (R, T): first plane row each tap reads
    tap_col: np.ndarray  # (R, T): first plane column each tap reads
    tap_count: np.ndarray  # (R,): taps each residue has
    row_target: np.ndarray  # (R, wide rows)
    out_w: np.ndarray  # (R,)
    col_offset: np.ndarray  # (R,)
    chunk_rows: int  # wide output rows per task
    parts: list[tuple[int, int]]  # task ranges, one per part
    weight_index: np.ndarray  # flat filter index of each residue's weights, in turn
    weight_start: np.ndarray  # (R + 1,): where each residue's weights start
    extent: tuple[int, int, int]  # the gradient's written extent: the input's, or padded
    padded: bool  # written over the padded input, then folded back by the padding's adjoint
    gaps: bool  # some positions no tap reaches (stride above the kernel's, or sharing a
    # factor with the dilation)


@functools.lru_cache(maxsize=64)
def _gradient_layout(plan: ConvPlan, threads: int) -> _GradientLayout:
    """The input gradient's residue problems, for one problem and thread count (cached).

    Along each axis a residue is a stride-1 forward of ``gy`` with its own
    padding ``before``; the shared planes take the largest, ``B``, so that
    plane position ``p`` holds ``gy[p - B]`` and the residue's taps start
    ``B - before`` further on. The planes reach as far as the furthest
    residue reads.
    """
    # Other padding modes fold the pads back onto the input: write the padded extent.
    padded = plan.padding_mode != "zeros" and any(b or a for b, a in plan.pads)
    extent = plan.padded if padded else plan.spatial
    shifts = (0, 0, 0) if padded else tuple(b for b, _ in plan.pads)
    axes = [
        _axis_residues(*args)
        for args in zip(
            plan.stride, plan.dilation, plan.kernel, plan.out, extent, shifts, strict=True
        )
    ]
    gaps = any(gap for _, gap in axes)
    residues = list(itertools.product(*(found for found, _ in axes)))  # (depth, height, width)
    before = [max((r[a].before for r in residues), default=0) for a in range(3)]
    # Plane extent per axis: the furthest any residue reads, plus one.
    grid = [
        max((r[a].positions + r[a].reach + before[a] - r[a].before for r in residues), default=1)
        for a in range(3)
    ]
    plane_h, width = grid[1], grid[2]
    out_rows = max(((d.positions - 1) * plane_h + h.positions for d, h, _ in residues), default=1)

    group_in = plan.out_channels // plan.groups  # the forwards' input channels a group
    tap_count = np.array([group_in * r[0].size * r[1].size * r[2].size for r in residues])
    taps = int(tap_count.max(initial=0))
    tap_plane = np.zeros((len(residues), plan.groups, taps), np.int64)
    tap_row = np.zeros((len(residues), taps), np.int64)
    tap_col = np.zeros((len(residues), taps), np.int64)
    for i, residue in enumerate(residues):
        # Taps in the filters' order (channel, depth, height, width): tap_rows_operands'.
        d, h, w = (
            [axis.dilation * k + before[a] - axis.before for k in range(axis.size)]
            for a, axis in enumerate(residue)
        )
        channel, row, col = np.meshgrid(
            np.arange(group_in), np.add.outer(np.array(d) * plane_h, h).ravel(), w, indexing="ij"
        )
        count = tap_count[i]
        tap_row[i, :count], tap_col[i, :count] = row.ravel(), col.ravel()
        tap_plane[i, :, :count] = channel.ravel() + group_in * np.arange(plan.groups)[:, None]
    reach = int(tap_row.max(initial=0))

    # The planes: gy's rows and columns, B on, zeros outside gy.
    rows = np.arange(out_rows + reach + 1)
    depth, height = rows // plane_h - before[0], rows % plane_h - before[1]
    inside = (rows // plane_h < grid[0]) & (depth >= 0) & (depth < plan.out[0])
    inside &= (height >= 0) & (height < plan.out[1])
    row_source = np.where(inside, depth * plan.out[1] + height, -1)[None, :]
    cols = np.arange(width) - before[2]
    col_source = np.where((cols >= 0) & (cols < plan.out[2]), cols, -1)[None, :]

    row_target = np.zeros((len(residues), out_rows), dtype=np.int64)
    for i, (d, h, _) in enumerate(residues):
        row_target[i] = _row_targets(plane_h, out_rows, (d.positions, h.positions),
                                     plan.stride[:2], (d.first, h.first), extent[1])  # fmt: skip
    count = _part_count(plan, threads)
    chunk_rows = _chunk_rows(plan.batch, out_rows, width, reach, count, TASK_POSITIONS)
    tasks = plan.batch * -(-out_rows // chunk_rows)
    return _GradientLayout(
        row_source.astype(np.int64), col_source.astype(np.int64),
        np.array([-before[2]], dtype=np.int64), tap_plane, tap_row, tap_col,
        tap_count.astype(np.int64), row_target,
        np.array([r[2].positions for r in residues], dtype=np.int64),
        np.array([r[2].first for r in residues], dtype=np.int64), chunk_rows,
        split_range(tasks, min(count, tasks)), *_residue_weight_index(plan, residues),
        extent, padded, gaps,
    )  # fmt: skip


def _residue_weight_index(plan: ConvPlan, residues) -> tuple[np.ndarray, np.ndarray]:
    """Where each residue's weights come from in the flat filters, and where each starts.

    Residue ``r``'s weights are :func:`tap_rows_operands` of its sub-filter
    (its taps of every filter, input and output channels swapped), ``(G,
    T_r, C/G)``; the same reordering applied to the filters' flat indices
    gives where each value comes from. One flat index for all residues, in
    turn: a gather of 18K values took 8 µs, and 15 with every residue padded
    to the longest's taps (b1_g8_3x3_s2's input gradient, a 110 µs call).
    """
    flat = np.arange(math.prod(plan.weight5)).reshape(plan.groups, -1, *plan.weight5[1:])
    pieces = [np.zeros(0, dtype=np.int64)]  # no residue: no weights
    for residue in residues:
        sub = flat[(slice(None),) * 3 + tuple(axis.taps for axis in residue)]
        # (G, K/G, C/G, taps…) -> (G, K/G · taps, C/G): channel-major taps, as the planes'.
        pieces.append(sub.transpose(0, 1, 3, 4, 5, 2).reshape(-1))
    sizes = [piece.size for piece in pieces[1:]]
    start = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
    return np.concatenate(pieces).astype(np.int64), start


class _AxisResidue(NamedTuple):
    """One stride residue along one axis, as a stride-1 forward of ``gy`` (see :func:`input_grad`).

    Its taps are the kernel indices ``taps`` (a slice, in reverse), ``size``
    of them, ``dilation`` apart in ``gy``; the forward pads ``gy`` by
    ``before`` and has ``positions`` outputs, the first at gradient index
    ``first``, then every stride-th.
    """

    taps: slice
    size: int
    dilation: int
    before: int
    positions: int
    first: int

    @property
    def reach(self) -> int:
        return (self.size - 1) * self.dilation


def _axis_residues(stride, dilation, size, out, extent, shift):
    """One axis's residues (:class:`_AxisResidue`), and whether a residue's positions lack taps.

    Residue ``r``'s taps are the ``k`` with ``k·d ≡ r (mod s)``; ``m_k = (k·d
    - r)/s`` steps by ``d / gcd(d, s)`` between them. Its positions ``j = q·s
    + r`` for ``q`` in ``[q0, q1)`` (those inside the written extent) read
    ``gy[q - m_k]``: a stride-1 forward of ``gy`` with the taps in reverse,
    padded by ``max(m) - q0`` before, whose output ``e`` is gradient index
    ``e·s + (q0·s + r - shift)`` (``shift``: the padding before when writing
    the unpadded input, else 0).
    """
    found, gap = [], False
    for r in range(stride):
        q0 = -((r - shift) // stride)  # first q with q·s + r >= shift
        q1 = -((r - shift - extent) // stride)
        if q1 <= q0:
            continue
        taps = [k for k in range(size) if k * dilation % stride == r]
        if not taps:
            gap = True
            continue
        m = [(k * dilation - r) // stride for k in taps]
        step = m[1] - m[0] if len(taps) > 1 else 1
        # The taps in reverse as a slice: they step by stride / gcd(dilation, stride).
        spacing = taps[1] - taps[0] if len(taps) > 1 else 1
        reverse = slice(taps[-1], taps[0] - 1 if taps[0] else None, -spacing)
        found.append(
            _AxisResidue(reverse, len(taps), step, m[-1] - q0, q1 - q0, q0 * stride + r - shift)
        )
    return found, gap


def _chunk_rows(batch: int, out_rows: int, width: int, reach: int, parts: int, positions: int):
    """Wide output rows per task.

    About ``positions`` positions, and not fewer rows than the taps reach
    below a row, so that a task copies at most about twice the plane rows it
    computes on; but when there are few tasks, enough more of them that
    every part gets the same count (a batch-1 image in one task would leave
    the second thread idle).
    """
    rows = min(out_rows, max(1, positions // width, reach))
    chunks = -(-out_rows // rows)
    if batch * chunks < 4 * parts:
        while (batch * chunks) % parts and chunks < out_rows:
            chunks += 1
    return -(-out_rows // chunks)
