"""Forwards of layers with few weights per group: sums over flat runs of stride-phase planes.

Grouped, strided and 3-d layers with few weights per group ran on the planar
GEMM (BLAS products with 24 to 64 rows, at well under BLAS's peak, plus an
im2col gather) or on Winograd, whose transforms cost as much as for an
ungrouped layer of the same width. Here (:mod:`numconv.kernels.phase_sums`)
each image's padded input is split once into its stride phases, planes whose
rows run on into each other, so that every tap reads one contiguous run of a
plane; each output row is ``bias + Σ_t w[o, t]·run_t`` over its group's
taps, summed in vector registers two rows × 9 taps at a time. The copy is
one input's worth, whatever the kernel; the price is the junk columns (the
plane width minus the output width) computed and dropped.

Forward only, for any groups, dims, stride, dilation and padding mode. The
dispatch never chooses it for a gradient; forced (in tests), the gradients
run on the planar GEMM.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numba
import numpy as np

from .._padding import extended_map, source_indices
from .._params import ConvPlan, kernel_array
from .._workers import run_parts, split_range
from ..kernels.phase_sums import forward_phase_sums
from ..kernels.tap_sums import FORWARD_TAP_BLOCK
from . import planar_gemm
from .common import tap_block_operands

NAME = "phase_sums"

# Wide output positions per task: each pass of two rows × 9 taps runs over a
# task's positions (the same length as the tap sums', see tap_sums.py).
TASK_POSITIONS = 4096

# Work per thread below which one more thread does not pay. Handing a part to
# a worker costs ~50 µs (docs/performance.md §28), what these sums do with
# ~3 MFLOP at 60 GFLOP/s.
PART_FLOPS = 4_000_000


def applies(plan: ConvPlan) -> bool:
    """Every convolution."""
    return True


def forward(plan: ConvPlan, x5, w5, bias, dtype) -> np.ndarray:
    layout = _layout(plan, numba.get_num_threads(), TASK_POSITIONS)
    depth, height, width = plan.spatial
    x4 = kernel_array(x5, (plan.batch, plan.in_channels, depth * height, width), dtype)
    weights, biases = tap_block_operands(plan, w5, bias, layout.tap_plane.shape[1], dtype)
    out_d, out_h, out_w = plan.out
    y = np.empty((plan.batch, plan.out_channels, out_d * out_h, out_w), dtype=dtype)
    run_parts(
        lambda bounds: forward_phase_sums(
            x4, weights, biases, y, layout.row_source, layout.col_source, layout.tap_plane,
            layout.tap_row, layout.tap_col, layout.plane_h, out_h, layout.out_rows,
            layout.chunk_rows, *bounds,
        ),
        layout.parts,
    )  # fmt: skip
    return y.reshape(plan.output5)


def input_grad(plan: ConvPlan, w5, gy5, dtype) -> np.ndarray:
    return planar_gemm.input_grad(plan, w5, gy5, dtype)


def weight_grad(plan: ConvPlan, x5, gy5, dtype) -> np.ndarray:
    return planar_gemm.weight_grad(plan, x5, gy5, dtype)


def group_weights(plan: ConvPlan) -> int:
    """Weights of one group's filters: ``C_out/G · C/G · KD·KH·KW``."""
    return plan.out_channels // plan.groups * math.prod(plan.weight5[1:])


def scratch_elements(plan: ConvPlan) -> int:
    """Values of the planes and wide outputs every part allocates, summed over the parts."""
    layout = _layout(plan, numba.get_num_threads(), TASK_POSITIONS)
    width = layout.col_source.shape[1]
    planes = plan.in_channels * layout.row_source.shape[0] * layout.col_source.shape[0] + 1
    plane_rows = layout.chunk_rows + int(layout.tap_row.max()) + 1
    per_part = (planes * plane_rows + (plan.out_channels + 1) * layout.chunk_rows) * width
    return per_part * len(layout.parts)


class _Layout(NamedTuple):
    row_source: np.ndarray  # per (depth, height) phase pair: input row of each plane row, or -1
    col_source: np.ndarray  # per W phase: input column of each plane column, or -1
    tap_plane: np.ndarray  # (G, T): each group's taps' planes, padded to whole blocks
    tap_row: np.ndarray  # (T,): first plane row each tap reads
    tap_col: np.ndarray  # (T,): first plane column each tap reads
    plane_h: int  # plane rows per depth slice
    out_rows: int  # wide output rows, junk rows between depth slices included
    chunk_rows: int  # wide output rows per task
    parts: list[tuple[int, int]]  # task ranges, one per thread used


@functools.lru_cache(maxsize=64)
def _layout(plan: ConvPlan, threads: int, task_positions: int) -> _Layout:
    """Everything but the arrays' values, for one problem, thread count and task size.

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
    extra = -len(tap_plane) % FORWARD_TAP_BLOCK
    group_planes = plan.in_channels // plan.groups * planes_per_channel
    zeros_plane = plan.in_channels * planes_per_channel
    planes = np.array(tap_plane, dtype=np.int64)
    tap_planes = np.array(
        [np.concatenate([planes + g * group_planes, np.full(extra, zeros_plane)])
         for g in range(plan.groups)],
        dtype=np.int64,
    )  # fmt: skip
    padding = np.zeros(extra, dtype=np.int64)
    tap_rows = np.concatenate([np.array(tap_row, dtype=np.int64), padding])
    tap_cols = np.concatenate([np.array(tap_col, dtype=np.int64), padding])

    count = max(1, min(threads, round(plan.flops / PART_FLOPS)))
    chunk_rows = _chunk_rows(plan.batch, out_rows, width, reach, count, task_positions)
    tasks = plan.batch * -(-out_rows // chunk_rows)
    return _Layout(
        row_source, col_source, tap_planes, tap_rows, tap_cols, plane_h, out_rows, chunk_rows,
        split_range(tasks, min(count, tasks)),
    )  # fmt: skip


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
