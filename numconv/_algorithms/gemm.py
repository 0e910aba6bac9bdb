"""GEMM convolution: cache-sized im2col tiles fed to BLAS.

The output positions are cut into tiles of whole output rows. For each tile
(and group), :func:`~numconv.kernels.columns.gather_columns` copies the input
values every position's window reads into a column matrix, and one BLAS
matrix product does all the multiply-adds:

- forward:       y[tile]  = cols @ W            (positions × taps·Cgi) @ (taps·Cgi × Cgo)
- weight grad:   gW      += colsᵀ @ gy[tile]     accumulated tile by tile, in order
- input grad:    dcols    = gy[tile] @ Wᵀ, added back into the input by
  :func:`~numconv.kernels.columns.scatter_columns` (col2im)

BLAS runs these near the machine's GEMM ceiling; the direct kernels cannot,
because they stream the output row once per input channel. The price is the
column copy (taps × the tile's share of the input), which is why tiles are kept
small enough to stay in cache (:data:`TILE_BYTES`) and why the scratch never
exceeds about twice the call's input plus output.

Threads: the output rows are split into one contiguous part per thread
(Numba's thread count), and :func:`numconv._workers.run_parts` runs each
part's tiles on its own thread with serial, GIL-free column kernels and
single-threaded BLAS calls. Letting OpenBLAS thread each product while
Numba's OpenMP pool threads the column copies was measured 15x slower on 2
cores (460 vs 31 ms on res3x3_56): each pool's idle threads spin while the
other one works.

Results are deterministic at a fixed thread count: the parts, and the tiles in
each, are fixed by the shape and the thread count, and partial weight (or
input) gradients are summed in part order.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .. import _aligned, _workspace
from .._padding import pad_adjoint_channels_last, pad_channels_last
from .._params import ConvPlan
from .._workers import run_parts, split_range, thread_parts
from ..kernels.columns import gather_columns, scatter_columns
from .common import channels_last, grouped_weight, ungrouped_weight, weight_grad_operands

NAME = "gemm"

# Column-tile size: large enough that BLAS gets long products, small enough
# that the tile is still in the core's L2 when BLAS reads it.
TILE_BYTES = 1 << 20


def applies(plan: ConvPlan) -> bool:
    """Every convolution (efficient once a window holds a dozen or more values)."""
    return True


def _tile_rows(plan: ConvPlan, dtype, x_elements: int) -> int:
    """Output rows per tile: TILE_BYTES of columns, capped by twice input + output."""
    row_bytes = plan.out[2] * math.prod(plan.kernel) * (plan.in_channels // plan.groups)
    row_bytes *= np.dtype(dtype).itemsize
    out_elements = plan.batch * math.prod(plan.out) * plan.out_channels
    budget = min(TILE_BYTES, 2 * (x_elements + out_elements) * np.dtype(dtype).itemsize)
    # Each worker holds one tile at a time.
    budget //= max(1, numba.get_num_threads())
    return max(1, min(_total_rows(plan), budget // row_bytes))


def _weight_matrices(w5: np.ndarray, groups: int, dtype) -> np.ndarray:
    """``(C_out, Cgi, KD, KH, KW)`` -> ``(G, taps·Cgi, Cgo)``, rows in the columns' order."""
    return grouped_weight(w5, groups, dtype).reshape(groups, -1, w5.shape[0] // groups)


def _geometry(plan: ConvPlan):
    return plan.kernel, plan.stride, plan.dilation, plan.out


def _total_rows(plan: ConvPlan) -> int:
    return plan.batch * plan.out[0] * plan.out[1]


def _tiles(lo: int, hi: int, tile_rows: int):
    """(first row, row count) of each tile of rows ``[lo, hi)``, in order."""
    for row0 in range(lo, hi, tile_rows):
        yield row0, min(tile_rows, hi - row0)


def forward(plan: ConvPlan, x5, w5, bias, dtype) -> np.ndarray:
    xp = pad_channels_last(x5, plan.pads, plan.padding_mode, dtype)
    wm = _weight_matrices(w5, plan.groups, dtype)
    groups, taps_cgi, cgo = wm.shape
    ow = plan.out[2]
    y = _aligned.empty((plan.batch, *plan.out, plan.out_channels), dtype=dtype)
    y2 = y.reshape(-1, plan.out_channels)
    tile_rows = _tile_rows(plan, dtype, x5.size)

    def part(bounds):  # writes only its own output rows
        scratch = _workspace.scratch("gemm.columns", (tile_rows * ow, taps_cgi), dtype)
        product = _workspace.scratch(
            "gemm.product", (tile_rows * ow if groups > 1 else 0, cgo), dtype
        )
        for row0, rows in _tiles(*bounds, tile_rows):
            cols, p0, p1 = scratch[: rows * ow], row0 * ow, (row0 + rows) * ow
            for g in range(groups):
                gather_columns(xp, cols, row0, g, *_geometry(plan))
                if groups == 1:
                    np.matmul(cols, wm[0], out=y2[p0:p1])
                else:  # BLAS writes contiguous blocks; a group's channels are a strided slice
                    np.matmul(cols, wm[g], out=product[: rows * ow])
                    y2[p0:p1, g * cgo : (g + 1) * cgo] = product[: rows * ow]

    run_parts(part, thread_parts(_total_rows(plan)))
    if bias is not None:
        y2 += bias
    return y.transpose(0, 4, 1, 2, 3)


def input_grad(plan: ConvPlan, w5, gy5, dtype) -> np.ndarray:
    gy2 = channels_last(gy5, dtype).reshape(-1, plan.out_channels)
    wm = _weight_matrices(w5, plan.groups, dtype)
    groups, taps_cgi, cgo = wm.shape
    ow = plan.out[2]
    shape = (plan.batch, *plan.padded, plan.in_channels)
    tile_rows = _tile_rows(plan, dtype, math.prod(shape))
    threads = numba.get_num_threads()
    # Windows overlap, so two parts may add into the same input row. With a
    # batch per part, parts own whole images and share one gradient array;
    # otherwise each part adds into its own, summed in part order afterwards.
    per_image = plan.out[0] * plan.out[1]
    shared = plan.batch >= threads
    parts = split_range(_total_rows(plan), threads, per_image if shared else 1)
    gxp = _aligned.zeros(shape, dtype=dtype)

    def part(bounds):
        own = shared or bounds[0] == 0
        target = gxp if own else _workspace.zeroed("gemm.partial", shape, dtype)
        cols_all = _workspace.scratch("gemm.columns", (tile_rows * ow, taps_cgi), dtype)
        for row0, rows in _tiles(*bounds, tile_rows):
            cols, p0, p1 = cols_all[: rows * ow], row0 * ow, (row0 + rows) * ow
            for g in range(groups):
                np.matmul(gy2[p0:p1, g * cgo : (g + 1) * cgo], wm[g].T, out=cols)
                scatter_columns(cols, target, row0, g, *_geometry(plan))
        return target

    for partial in run_parts(part, parts)[1:]:
        if partial is not gxp:
            gxp += partial
    return pad_adjoint_channels_last(gxp, plan.spatial, plan.pads, plan.padding_mode)


def weight_grad(plan: ConvPlan, x5, gy5, dtype) -> np.ndarray:
    xp, gy = weight_grad_operands(plan, x5, gy5, dtype)
    gy2 = gy.reshape(-1, plan.out_channels)
    cgi = plan.in_channels // plan.groups
    groups, cgo = plan.groups, plan.out_channels // plan.groups
    taps_cgi = math.prod(plan.kernel) * cgi
    ow = plan.out[2]
    tile_rows = _tile_rows(plan, dtype, x5.size)

    def part(bounds):  # every output row feeds every weight: one partial sum per part
        gw = _aligned.zeros((groups, taps_cgi, cgo), dtype=dtype)
        product = _workspace.scratch("gemm.product", (taps_cgi, cgo), dtype)
        scratch = _workspace.scratch("gemm.columns", (tile_rows * ow, taps_cgi), dtype)
        for row0, rows in _tiles(*bounds, tile_rows):
            cols, p0, p1 = scratch[: rows * ow], row0 * ow, (row0 + rows) * ow
            for g in range(groups):
                gather_columns(xp, cols, row0, g, *_geometry(plan))
                np.matmul(cols.T, gy2[p0:p1, g * cgo : (g + 1) * cgo], out=product)
                gw[g] += product
        return gw

    partials = run_parts(part, thread_parts(_total_rows(plan)))
    gw = partials[0]
    for partial in partials[1:]:
        gw += partial
    return ungrouped_weight(gw.reshape(groups, *plan.kernel, cgi, cgo), plan)
