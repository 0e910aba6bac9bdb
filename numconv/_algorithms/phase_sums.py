"""Layers with few weights per group: forward and gradients as sums over flat runs.

Grouped, strided and 3-d layers with few weights per group ran on the planar
GEMM (BLAS products with 24 to 64 rows, at well under BLAS's peak, plus an
im2col gather) or on Winograd, whose transforms cost as much as for an
ungrouped layer of the same width. Here (:mod:`numconv.kernels.phase_sums`)
each image's padded input is split once into its stride phases, planes whose
rows run on into each other, so that every tap reads one contiguous run of a
plane; each output row is ``bias + Σ_t w[o, t]·run_t`` over its group's
taps, summed over every tap in vector registers, 8 output channels × 48
positions at a time (:mod:`numconv.kernels.register_blocks`). The copy is
one input's worth, whatever the kernel; the price is the junk columns (the
plane width minus the output width) computed and dropped.

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
import dataclasses
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
from ..kernels.phase_sums import forward_phase_sums, weight_grad_phase_sums
from . import planar_gemm
from .common import tap_rows_operands

NAME = "phase_sums"

# Wide output positions per task: the planes a task copies stay in L2 while
# its register blocks sweep them (the same length as the tap sums').
TASK_POSITIONS = 4096

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
    :class:`_Residue`). Each residue is a forward of these phase sums,
    written straight into every ``s``-th position of the gradient. One
    hand-off runs all residues: part ``i`` does the ``i``-th task range of
    each. Residues write disjoint positions, tasks disjoint rows: no races.
    """
    layout = _gradient_layout(plan, numba.get_num_threads())
    gy4 = _rows_array(gy5, plan.batch, plan.out_channels, plan.out, dtype)
    # Every residue's filters in one gather: 48 µs of Python a batch-1 call as
    # four strided views and copies (§33), np.ix_ indexing 0.55 ms (§30).
    gathered = np.asarray(w5).reshape(-1).take(layout.weight_index).astype(dtype, copy=False)
    no_bias = np.zeros(plan.in_channels, dtype=dtype)
    operands = [
        (residue, gathered[start : start + math.prod(shape)].reshape(shape), no_bias)
        for residue, (start, shape) in zip(layout.residues, layout.weight_blocks, strict=True)
    ]
    depth, height, width = layout.extent
    shape = (plan.batch, plan.in_channels, depth * height, width)
    # The residues write every position but the gaps: only those need zeros first.
    if layout.padded:  # folded back below, so reused scratch will do
        fill = _workspace.zeroed if layout.gaps else _workspace.scratch
        gx = fill("phase_sums.padded_gradient", shape, dtype)
    else:
        gx = (_aligned.zeros if layout.gaps else _aligned.empty)(shape, dtype=dtype)

    def part(index):
        for residue, weights, biases in operands:
            bounds = residue.layout.parts
            if index < len(bounds):
                _sums(
                    gy4, weights, biases, gx, residue.layout, residue.row_target,
                    plan.stride[2], residue.col_offset, bounds[index],
                )  # fmt: skip

    run_parts(part, range(layout.parts), blas=False)
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
    layout = _layout(plan, _part_count(plan, numba.get_num_threads()), TASK_POSITIONS)
    x4 = _rows_array(x5, plan.batch, plan.in_channels, plan.spatial, dtype)
    gy4 = _rows_array(gy5, plan.batch, plan.out_channels, plan.out, dtype)

    def part(bounds):
        sums = _aligned.zeros((plan.out_channels, layout.tap_row.shape[0]), dtype=np.float64)
        probe = weight_grad_phase_sums(
            x4, gy4, layout.row_source, layout.col_source, layout.col_first, layout.col_stride,
            layout.tap_plane, layout.tap_row, layout.tap_col, layout.row_target,
            layout.chunk_rows, *bounds, sums,
        )  # fmt: skip
        return sums, probe

    partials = run_parts(part, layout.parts, blas=False)
    if not all(np.isfinite(probe) for _, probe in partials):
        return planar_gemm.weight_grad(plan, x5, gy5, dtype)
    total = partials[0][0]
    for sums, _ in partials[1:]:  # in part order: deterministic at a fixed thread count
        total += sums
    return total.astype(dtype).reshape(plan.weight5)


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
    """Values of the planes and wide outputs every part allocates, summed over the parts."""
    layout = _layout(plan, _part_count(plan, numba.get_num_threads()), TASK_POSITIONS)
    width = layout.col_source.shape[1]
    planes = plan.in_channels * layout.row_source.shape[0] * layout.col_source.shape[0]
    plane_rows = layout.chunk_rows + int(layout.tap_row.max()) + 1
    tail = register_blocks.TILE_VECTORS * simd.VECTOR_BYTES // 4  # float32's, the longer
    per_part = planes * plane_rows * width + tail  # the planes and the blocks' overrun
    per_part += plan.out_channels * (layout.chunk_rows * width + tail)  # wide and spill rows
    return per_part * len(layout.parts)


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
    )  # fmt: skip


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
    plane_h`` (junk from ``out[1]`` on); output position ``(d, h)`` goes to
    ``(d·steps[0] + offsets[0], h·steps[1] + offsets[1])``.
    """
    rows = np.arange(out_rows)
    d, h = rows // plane_h, rows % plane_h
    target = (d * steps[0] + offsets[0]) * target_h + h * steps[1] + offsets[1]
    return np.where(h < out[1], target, -1).astype(np.int64)


class _Residue(NamedTuple):
    """One stride residue ``(r_D, r_H, r_W)`` of the input gradient, as a forward problem.

    Along an axis with stride ``s``, dilation ``d`` and padding ``p``, the
    residue's taps are the ``k`` with ``k·d ≡ r (mod s)``; ``m_k = (k·d -
    r)/s`` steps by ``d' = d / gcd(d, s)`` between them. Its positions ``j =
    q·s + r`` for ``q`` in ``[q0, q1)`` (those inside the written extent)
    read ``gy[q - m_k]``: a stride-1 forward of ``gy`` with the taps in
    reverse, dilation ``d'``, padding ``max(m) - q0`` before, whose output
    ``e`` is position ``(e + q0)·s + r``, gradient index ``e·s + (q0·s + r -
    shift)`` (``shift``: ``p`` when writing the unpadded input, else 0).
    """

    plan: ConvPlan  # the forward problem: C_out channels in, C_in out, groups kept
    layout: _Layout
    taps: tuple  # per axis: the slice of kernel indices of the sub-filter's taps, in its order
    row_target: np.ndarray  # gradient row (depth·height) of each wide output row, or -1
    col_offset: int  # gradient column of output column 0 (then every stride-th)


class _GradientLayout(NamedTuple):
    residues: list[_Residue]
    weight_index: np.ndarray  # flat filter index of each residue's tap-row operand, in turn
    weight_blocks: list[tuple[int, tuple[int, int, int]]]  # each one's start and (G, T, C/G)
    extent: tuple[int, int, int]  # the gradient's written extent: the input's, or padded
    padded: bool  # written over the padded input, then folded back by the padding's adjoint
    gaps: bool  # some positions no tap reaches (stride above the kernel's, or sharing a
    # factor with the dilation)
    parts: int


@functools.lru_cache(maxsize=64)
def _gradient_layout(plan: ConvPlan, threads: int) -> _GradientLayout:
    """The input gradient's residue problems, for one problem and thread count (cached)."""
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
    count = _part_count(plan, threads)
    residues = []
    for combo in itertools.product(*(found for found, _ in axes)):
        taps, dilation, pads, out, first = zip(*combo, strict=True)
        sizes = tuple(len(range(size)[t]) for size, t in zip(plan.kernel, taps, strict=True))
        sub = dataclasses.replace(
            plan, in_channels=plan.out_channels, out_channels=plan.in_channels,
            spatial=plan.out, kernel=sizes, stride=(1, 1, 1),
            dilation=dilation, pads=pads, out=out, padding_mode="zeros",
        )  # fmt: skip
        layout = _layout(sub, count, TASK_POSITIONS)
        row_target = _row_targets(
            layout.plane_h, layout.out_rows, out, plan.stride[:2], first[:2], extent[1]
        )
        residues.append(_Residue(sub, layout, taps, row_target, first[2]))
    weight_index, weight_blocks = _residue_weight_index(plan, residues)
    return _GradientLayout(residues, weight_index, weight_blocks, extent, padded, gaps, count)


def _residue_weight_index(plan: ConvPlan, residues):
    """Where each residue's filters come from in the flat filters, and each one's block.

    Residue ``r``'s operand is :func:`tap_rows_operands` of its sub-filter
    (its taps of every filter, input and output channels swapped), ``(G,
    T_r, C/G)``; the same function applied to the filters' flat indices
    gives where each value comes from.
    """
    flat = np.arange(math.prod(plan.weight5)).reshape(
        plan.groups, plan.out_channels // plan.groups, *plan.weight5[1:]
    )
    pieces, blocks, start = [np.zeros(0, dtype=np.int64)], [], 0  # no residue: no filters
    for residue in residues:
        sub = flat[(slice(None),) * 3 + residue.taps].transpose(0, 2, 1, 3, 4, 5)
        rows, _ = tap_rows_operands(residue.plan, sub, None, np.int64)
        pieces.append(rows.ravel())
        blocks.append((start, rows.shape))
        start += rows.size
    return np.concatenate(pieces), blocks


def _axis_residues(stride, dilation, size, out, extent, shift):
    """One axis's residues with taps and positions, and whether a residue's positions lack taps.

    Each residue as ``(taps, dilation, (before, after), positions, first)``:
    the slice of kernel indices in the sub-filter's (reversed) order, the forward's
    dilation and padding, its output length, and the gradient index of its
    first position (see :class:`_Residue`).
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
        before = m[-1] - q0
        after = (q1 - q0) - out - before + (len(taps) - 1) * step
        # The taps in reverse as a slice: they step by stride / gcd(dilation, stride).
        spacing = taps[1] - taps[0] if len(taps) > 1 else 1
        reverse = slice(taps[-1], taps[0] - 1 if taps[0] else None, -spacing)
        found.append((reverse, step, (before, after), q1 - q0, q0 * stride + r - shift))
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
