"""Layers with few weights per filter: forward and weight gradient as sums over flat runs.

The planar GEMM computes these layers as BLAS products with one short side:
``C·KH·KW`` is 27 on cifar_first, so its forward multiplies 32 × 27 by 27 ×
positions and its weight gradient ends in a 27 × 32 result. OpenBLAS runs
such products at 68 GFLOP/s per core, about two thirds of its large-matrix
speed, and longer products over many images were slower still
(docs/performance.md §16, §19). Here (:mod:`numconv.kernels.tap_sums`) each
tap column's input rows are copied once into planes laid out like the
output, so that every tap reads one contiguous run per task:

- forward: each output row is ``bias + Σ_t w[o, t]·run_t``, 8 rows × 3
  vectors of positions at a time (4 × 3 with AVX2) over every tap in vector
  registers, written straight into the result;
- weight gradient: each weight is the dot product of its tap's run with the
  output gradient read in place, 8 output channels × 3 taps at a time in 24
  vector accumulators (4 × 3 in 12 with AVX2).

Neither builds a column matrix. The input gradient of the same layers stays
on the planar GEMM, whose products there (``Wᵀ @ gy``) have long rows and
run fast. For 1-d and 2-d layers (one kernel slice deep) in one group, any
stride, dilation and padding mode.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numba
import numpy as np

from .. import _aligned
from .._padding import extended_map, source_indices
from .._params import ConvPlan, kernel_array
from .._workers import run_parts, split_range
from ..kernels import register_blocks, simd
from ..kernels.tap_sums import forward_sums, weight_grad_sums
from . import planar_gemm
from .common import tap_rows_operands

NAME = "tap_sums"

# Output positions per task: the sums of a block run over a task's positions
# before their lanes are added up. Measured on one thread (8×3×224² stem, 7×7
# stride 2): 76, 83, 90 and 94 GFLOP/s at 512, 1024, 2048 and 4096; on
# cifar_first (whole 32² images per task from 1024 on) 66-71 throughout.
TASK_POSITIONS = 4096

# Work per thread below which one more thread does not pay: handing a part to
# a worker and waiting for it cost 115 µs (two parts that do nothing, against
# 18 µs for one), what a thread's sums do with ~8 MFLOP at 70 GFLOP/s. A
# 1 × 3 × 64² first layer (3.5 MFLOP) took 0.29 ms forward in two parts and
# 0.22 in one.
PART_FLOPS = 8_000_000


def applies(plan: ConvPlan) -> bool:
    """One group, a kernel one slice deep, and an output one slice deep (1-d and 2-d layers)."""
    return plan.groups == 1 and plan.kernel[0] == 1 and plan.out[0] == 1 and plan.spatial[0] == 1


def forward(plan: ConvPlan, x5, w5, bias, dtype) -> np.ndarray:
    layout = _layout(plan, numba.get_num_threads(), TASK_POSITIONS)
    x4 = kernel_array(x5, (plan.batch, plan.in_channels, *plan.spatial[1:]), dtype)
    weights, biases = tap_rows_operands(plan, w5, bias, dtype)
    y = _aligned.empty((plan.batch, plan.out_channels, *plan.out[1:]), dtype=dtype)
    run_parts(
        lambda bounds: forward_sums(
            x4, weights[0], biases, y, layout.row_source, layout.col_map, layout.col_first,
            plan.stride[2], *layout.taps, *layout.chunks, *bounds,
        ),
        layout.parts,
        blas=False,
    )  # fmt: skip
    return y.reshape(plan.output5)


def input_grad(plan: ConvPlan, w5, gy5, dtype) -> np.ndarray:
    return planar_gemm.input_grad(plan, w5, gy5, dtype)


def weight_grad(plan: ConvPlan, x5, gy5, dtype) -> np.ndarray:
    return _tap_totals(plan, x5, gy5, dtype, bias=False).astype(dtype).reshape(plan.weight5)


def weight_bias_grad(plan: ConvPlan, x5, gy5, dtype) -> tuple[np.ndarray, np.ndarray]:
    """The weight gradient and the bias gradient (``Σ gy`` per output channel) in one pass.

    The bias is one more tap, whose run is a plane of ones: its dot products
    with the output gradient's rows come out of the same blocks as the
    weights', so the gradient is read once, where a separate bias sum reads
    it again from memory (cifar_first's 8.4 MB: 0.1 ms; docs/performance.md §42).
    The weight sums are the same blocks' as :func:`weight_grad`'s, bit for bit.
    """
    totals = _tap_totals(plan, x5, gy5, dtype, bias=True)
    return totals[:, :-1].astype(dtype).reshape(plan.weight5), totals[:, -1].astype(dtype)


def _tap_totals(plan: ConvPlan, x5, gy5, dtype, bias: bool) -> np.ndarray:
    """``(C_out, taps)`` float64 sums over every task, a last column for the bias if asked."""
    layout = _layout(plan, numba.get_num_threads(), TASK_POSITIONS)
    x4 = kernel_array(x5, (plan.batch, plan.in_channels, *plan.spatial[1:]), dtype)
    gy4 = kernel_array(gy5, (plan.batch, plan.out_channels, *plan.out[1:]), dtype)
    taps = layout.bias_taps if bias else layout.taps

    def part(bounds):
        sums = _aligned.zeros((plan.out_channels, len(taps[0])), dtype=np.float64)
        weight_grad_sums(
            x4, gy4, layout.row_source, layout.col_map, layout.col_first, plan.stride[2],
            *taps, *layout.chunks, *bounds, sums, bias,
        )  # fmt: skip
        return sums

    partials = run_parts(part, layout.parts, blas=False)
    total = partials[0]
    for partial in partials[1:]:  # in part order: deterministic at a fixed thread count
        total += partial
    return total


def task_positions(plan: ConvPlan) -> int:
    """Output positions per task: the length of the runs each pass and sum goes over."""
    parts = _part_count(plan, numba.get_num_threads())
    rows, cols = _task_shape(plan, parts, TASK_POSITIONS)
    return rows * cols


def scratch_elements(plan: ConvPlan) -> int:
    """Values of the planes every part allocates, summed over the parts.

    The planes are an im2col along W (``C·KW`` copies of the input rows), so
    with many channels, wide kernels and few output channels they can outgrow
    the input and output; the dispatch leaves such layers to the planar GEMM,
    whose tiles are bounded.
    """
    layout = _layout(plan, numba.get_num_threads(), TASK_POSITIONS)
    rows, cols = layout.chunks
    _, tap_row, tap_col = layout.taps
    planes = plan.in_channels * _column_maps(plan) * len(layout.row_source)
    tail = register_blocks.TILE_VECTORS * simd.VECTOR_BYTES // 4  # float32's, the longer
    per_part = planes * (rows + int(tap_row.max())) * (cols + int(tap_col.max()))
    per_part += tail + plan.out_channels * tail  # the forward's overrun and spill rows
    return per_part * len(layout.parts)


class _Layout(NamedTuple):
    row_source: np.ndarray  # per row phase tap rows fall in: input row of each row (-1: a zero)
    col_map: np.ndarray  # input column of each plane column, per column map
    col_first: np.ndarray  # per column map: input column of plane column 0, if not in the padding
    taps: tuple  # per tap in weight order: plane, first row, first column
    bias_taps: tuple  # the same and one more, the bias's: the plane of ones after the input's
    chunks: tuple[int, int]  # output rows and columns per task
    parts: list[tuple[int, int]]  # task ranges, one per thread used


@functools.lru_cache(maxsize=64)
def _layout(plan: ConvPlan, threads: int, task_positions: int) -> _Layout:
    """Everything but the arrays' values, for one problem, thread count and task size.

    Cached: it depends on the shape only (55 µs a call, a quarter of a small
    layer's time), and the kernels never write these arrays.
    """
    tap_plane, tap_row, tap_col, row_phases = _taps(plan)
    row_map, col_map, col_first = _maps(plan, int(tap_row.max()), int(tap_col.max()))
    stride_h = plan.stride[1]
    row_source = np.stack([row_map[phase::stride_h] for phase in row_phases])
    count = _part_count(plan, threads)
    rows, cols = _task_shape(plan, count, task_positions)
    tasks = plan.batch * -(-plan.out[1] // rows) * -(-plan.out[2] // cols)
    ones_plane = plan.in_channels * len(col_map) * len(row_phases)  # the kernel's plane count
    bias_taps = (np.append(tap_plane, ones_plane), np.append(tap_row, 0), np.append(tap_col, 0))
    return _Layout(
        row_source, col_map, col_first, (tap_plane, tap_row, tap_col), bias_taps, (rows, cols),
        split_range(tasks, count),
    )  # fmt: skip


def _part_count(plan: ConvPlan, threads: int) -> int:
    return max(1, min(threads, round(plan.flops / PART_FLOPS)))


def _task_shape(plan: ConvPlan, parts: int, positions: int) -> tuple[int, int]:
    """Output rows and columns per task: whole rows, or columns of the one row.

    About ``positions`` positions each; but when there are few tasks,
    enough more of them that every part gets the same count: a 1-d layer of
    20000 positions in 5 tasks kept one thread busy for 3 of them (0.94× the
    planar GEMM's forward).
    """
    _, out_h, out_w = plan.out
    length = out_w if _one_row(plan) else out_h  # the axis tasks split
    unit = 1 if _one_row(plan) else out_w  # positions per step along it
    chunks = -(-length // max(1, positions // unit))
    if plan.batch * chunks < 4 * parts:
        while (plan.batch * chunks) % parts and chunks < length:
            chunks += 1
    size = -(-length // chunks)
    return (1, size) if _one_row(plan) else (size, out_w)


def _one_row(plan: ConvPlan) -> bool:
    """Whether the output is one row: tap columns then read W phases at offsets, not own copies."""
    return plan.out[1] == 1


def _column_maps(plan: ConvPlan) -> int:
    """Column maps: the W phases for one output row, else one per tap column."""
    return plan.stride[2] if _one_row(plan) else plan.kernel[2]


def _taps(plan: ConvPlan):
    """Per tap ``(c, kh, kw)`` in weight order: plane, first row, first column; the row phases."""
    _, kh_count, kw_count = plan.kernel
    _, stride_h, stride_w = plan.stride
    _, dilation_h, dilation_w = plan.dilation
    row_offsets = [kh * dilation_h for kh in range(kh_count)]
    row_phases = sorted({offset % stride_h for offset in row_offsets})
    maps = _column_maps(plan)
    if _one_row(plan):  # column map m: W phase m; tap column kw reads it from kw·dw // sw on
        column = [
            ((kw * dilation_w) % stride_w, kw * dilation_w // stride_w) for kw in range(kw_count)
        ]
    else:  # column map m: tap column m, read from 0
        column = [(kw, 0) for kw in range(kw_count)]
    slot = {phase: i for i, phase in enumerate(row_phases)}
    planes, rows, cols = [], [], []
    for c in range(plan.in_channels):
        for offset in row_offsets:
            for m, col in column:
                planes.append((c * maps + m) * len(row_phases) + slot[offset % stride_h])
                rows.append(offset // stride_h)
                cols.append(col)
    return tuple(np.array(a, dtype=np.int64) for a in (planes, rows, cols, row_phases))


def _maps(plan: ConvPlan, reach: int, reach_cols: int):
    """Input row of each padded row a task reads; input column of each plane column, per map,
    and of its column 0 if it were inside the input (the vector copy's start)."""
    _, height, width = plan.spatial
    _, (top, bottom), (left, right) = plan.pads
    _, stride_h, stride_w = plan.stride
    _, _, dilation_w = plan.dilation
    _, out_h, out_w = plan.out
    row_map = extended_map(
        source_indices(height, top, bottom, plan.padding_mode), (out_h + reach) * stride_h
    )
    plane_cols = np.arange(out_w + reach_cols) * stride_w
    if _one_row(plan):
        starts = list(range(stride_w))  # the W phases
    else:
        starts = [kw * dilation_w for kw in range(plan.kernel[2])]
    columns = extended_map(
        source_indices(width, left, right, plan.padding_mode), plane_cols[-1] + starts[-1] + 1
    )
    col_map = np.array([columns[plane_cols + start] for start in starts], dtype=np.int64)
    return row_map, col_map, np.array(starts, dtype=np.int64) - left
