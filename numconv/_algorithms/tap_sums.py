"""Weight gradients of layers with few weights per filter, as register-blocked sums.

The planar GEMM computes a weight gradient as BLAS products ``cols @ gyᵀ``
whose result is only ``C·KH·KW × C_out``: 27 × 32 on cifar_first. OpenBLAS
runs such short, wide products at 68 GFLOP/s per core, about two thirds of
its large-matrix speed, and longer products over many images were slower
still (docs/performance.md §16, §19). Here each weight's sum over positions
is a dot product of two contiguous runs (:mod:`numconv.kernels.tap_sums`),
computed 24 at a time in vector registers, straight from the caller's output
gradient, with no column matrix: the only copy is of the input rows each tap
column reads.

Only the weight gradient is this module's own: the forward and input
gradient of the same layers run on the planar GEMM, whose products there
have long rows (``C_out × positions``) and are fast. For 1-d and 2-d layers
(one kernel slice deep) in one group, any stride, dilation and padding mode.
"""

from __future__ import annotations

import numpy as np

from .._padding import source_indices
from .._params import ConvPlan, kernel_array
from ..kernels.tap_sums import weight_grad_sums
from . import planar_gemm
from .gemm import run_parts, thread_parts

NAME = "tap_sums"

# Output positions per task: the sums of a block run over a task's positions
# before their lanes are added up. Measured on one thread (8×3×224² stem, 7×7
# stride 2): 76, 83, 90 and 94 GFLOP/s at 512, 1024, 2048 and 4096; on
# cifar_first (whole 32² images per task from 1024 on) 66-71 throughout.
TASK_POSITIONS = 4096


def applies(plan: ConvPlan) -> bool:
    """One group, a kernel one slice deep, and an output one slice deep (1-d and 2-d layers)."""
    return plan.groups == 1 and plan.kernel[0] == 1 and plan.out[0] == 1 and plan.spatial[0] == 1


def forward(plan: ConvPlan, x5, w5, bias, dtype) -> np.ndarray:
    return planar_gemm.forward(plan, x5, w5, bias, dtype)


def input_grad(plan: ConvPlan, w5, gy5, dtype) -> np.ndarray:
    return planar_gemm.input_grad(plan, w5, gy5, dtype)


def _one_row(plan: ConvPlan) -> bool:
    """Whether the output is one row: tap columns then read W phases at offsets, not own copies."""
    return plan.out[1] == 1


def _taps(plan: ConvPlan):
    """Per tap ``(c, kh, kw)`` in weight order: plane, first row, first column; the row phases."""
    _, kh_count, kw_count = plan.kernel
    _, stride_h, stride_w = plan.stride
    _, dilation_h, dilation_w = plan.dilation
    row_offsets = [kh * dilation_h for kh in range(kh_count)]
    row_phases = sorted({offset % stride_h for offset in row_offsets})
    if _one_row(plan):  # column map m: W phase m; tap column kw reads it from kw·dw // sw on
        maps = stride_w
        column = [
            ((kw * dilation_w) % stride_w, kw * dilation_w // stride_w) for kw in range(kw_count)
        ]
    else:  # column map m: tap column m, read from 0
        maps = kw_count
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
    """Input row of each padded row a task reads; input column of each plane column, per map."""
    _, height, width = plan.spatial
    _, (top, bottom), (left, right) = plan.pads
    _, stride_h, stride_w = plan.stride
    _, _, dilation_w = plan.dilation
    _, out_h, out_w = plan.out
    row_map = _extended(
        source_indices(height, top, bottom, plan.padding_mode), (out_h + reach) * stride_h
    )
    plane_cols = np.arange(out_w + reach_cols) * stride_w
    if _one_row(plan):
        starts = list(range(stride_w))  # the W phases
    else:
        starts = [kw * dilation_w for kw in range(plan.kernel[2])]
    columns = _extended(
        source_indices(width, left, right, plan.padding_mode), plane_cols[-1] + starts[-1] + 1
    )
    return row_map, np.array([columns[plane_cols + start] for start in starts], dtype=np.int64)


def _extended(source: np.ndarray, size: int) -> np.ndarray:
    """A padding map cut or extended with zeros (``-1``) to ``size`` entries."""
    out = np.full(size, -1, dtype=np.int64)
    out[: min(size, len(source))] = source[:size]
    return out


def _task_shape(plan: ConvPlan) -> tuple[int, int]:
    """Output rows and columns per task: whole rows, or columns of the one row."""
    _, out_h, out_w = plan.out
    if _one_row(plan):
        return 1, min(out_w, TASK_POSITIONS)
    return min(out_h, max(1, TASK_POSITIONS // out_w)), out_w


def task_positions(plan: ConvPlan) -> int:
    """Output positions per task: the length of the runs each sum adds up before its lanes."""
    rows, cols = _task_shape(plan)
    return rows * cols


def weight_grad(plan: ConvPlan, x5, gy5, dtype) -> np.ndarray:
    _, height, width = plan.spatial
    _, out_h, out_w = plan.out
    x4 = kernel_array(x5, (plan.batch, plan.in_channels, height, width), dtype)
    gy4 = kernel_array(gy5, (plan.batch, plan.out_channels, out_h, out_w), dtype)
    tap_plane, tap_row, tap_col, row_phases = _taps(plan)
    row_map, col_map = _maps(plan, int(tap_row.max()), int(tap_col.max()))
    chunk_rows, chunk_cols = _task_shape(plan)
    tasks = plan.batch * -(-out_h // chunk_rows) * -(-out_w // chunk_cols)
    stride_h = plan.stride[1]

    def part(bounds):
        sums = np.zeros((plan.out_channels, len(tap_plane)), dtype=np.float64)
        weight_grad_sums(
            x4, gy4, row_map, col_map, stride_h, row_phases, tap_plane, tap_row, tap_col,
            chunk_rows, chunk_cols, *bounds, sums,
        )  # fmt: skip
        return sums

    partials = run_parts(part, thread_parts(tasks))
    total = partials[0]
    for partial in partials[1:]:  # in part order: deterministic at a fixed thread count
        total += partial
    return total.astype(dtype).reshape(plan.weight5)
