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

Results are deterministic at a fixed thread count: tiles run in a fixed order
and the column kernels give every element one writer.
"""

from __future__ import annotations

import math

import numpy as np

from .._padding import pad_adjoint_channels_last, pad_channels_last
from .._params import ConvPlan
from ..kernels.columns import gather_columns, scatter_columns

NAME = "gemm"

# Column-tile size: large enough that BLAS gets long products, small enough
# that the tile is still in the core's 2 MiB L2 when BLAS reads it.
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
    total_rows = plan.batch * plan.out[0] * plan.out[1]
    return max(1, min(total_rows, budget // row_bytes))


def _weight_matrices(w5: np.ndarray, groups: int, dtype) -> np.ndarray:
    """``(C_out, Cgi, KD, KH, KW)`` -> ``(G, taps·Cgi, Cgo)``, rows in the columns' order."""
    c_out, cgi, *kernel = w5.shape
    w6 = w5.reshape(groups, c_out // groups, cgi, *kernel)
    wm = np.array(w6.transpose(0, 3, 4, 5, 2, 1), dtype=dtype, order="C")
    return wm.reshape(groups, math.prod(kernel) * cgi, c_out // groups)


def _geometry(plan: ConvPlan):
    return plan.kernel, plan.stride, plan.dilation, plan.out


def _tiles(plan: ConvPlan, tile_rows: int):
    """(first row, row count) of each tile, in order."""
    total = plan.batch * plan.out[0] * plan.out[1]
    for row0 in range(0, total, tile_rows):
        yield row0, min(tile_rows, total - row0)


def forward(plan: ConvPlan, x5, w5, bias, dtype) -> np.ndarray:
    xp = pad_channels_last(x5, plan.pads, plan.padding_mode, dtype)
    wm = _weight_matrices(w5, plan.groups, dtype)
    groups, taps_cgi, cgo = wm.shape
    ow = plan.out[2]
    y = np.empty((plan.batch, *plan.out, plan.out_channels), dtype=dtype)
    y2 = y.reshape(-1, plan.out_channels)
    tile_rows = _tile_rows(plan, dtype, x5.size)
    scratch = np.empty((tile_rows * ow, taps_cgi), dtype=dtype)
    product = np.empty((tile_rows * ow, cgo), dtype=dtype) if groups > 1 else None
    for row0, rows in _tiles(plan, tile_rows):
        cols, p0, p1 = scratch[: rows * ow], row0 * ow, (row0 + rows) * ow
        for g in range(groups):
            gather_columns(xp, cols, row0, g, *_geometry(plan))
            if groups == 1:
                np.matmul(cols, wm[0], out=y2[p0:p1])
            else:  # BLAS writes contiguous blocks; a group's channels are a strided slice
                np.matmul(cols, wm[g], out=product[: rows * ow])
                y2[p0:p1, g * cgo : (g + 1) * cgo] = product[: rows * ow]
    if bias is not None:
        y2 += bias
    return y.transpose(0, 4, 1, 2, 3)


def input_grad(plan: ConvPlan, w5, gy5, dtype) -> np.ndarray:
    gy2 = pad_channels_last(gy5, ((0, 0),) * 3, "zeros", dtype).reshape(-1, plan.out_channels)
    wm = _weight_matrices(w5, plan.groups, dtype)
    groups, taps_cgi, cgo = wm.shape
    ow = plan.out[2]
    gxp = np.zeros((plan.batch, *plan.padded, plan.in_channels), dtype=dtype)
    tile_rows = _tile_rows(plan, dtype, gxp.size)
    scratch = np.empty((tile_rows * ow, taps_cgi), dtype=dtype)
    for row0, rows in _tiles(plan, tile_rows):
        cols, p0, p1 = scratch[: rows * ow], row0 * ow, (row0 + rows) * ow
        for g in range(groups):
            np.matmul(gy2[p0:p1, g * cgo : (g + 1) * cgo], wm[g].T, out=cols)
            scatter_columns(cols, gxp, row0, g, *_geometry(plan))
    return pad_adjoint_channels_last(gxp, plan.spatial, plan.pads, plan.padding_mode)


def weight_grad(plan: ConvPlan, x5, gy5, dtype) -> np.ndarray:
    xp = pad_channels_last(x5, plan.pads, plan.padding_mode, dtype)
    gy2 = pad_channels_last(gy5, ((0, 0),) * 3, "zeros", dtype).reshape(-1, plan.out_channels)
    cgi = plan.in_channels // plan.groups
    groups, cgo = plan.groups, plan.out_channels // plan.groups
    taps_cgi = math.prod(plan.kernel) * cgi
    ow = plan.out[2]
    gw = np.zeros((groups, taps_cgi, cgo), dtype=dtype)
    product = np.empty((taps_cgi, cgo), dtype=dtype)
    tile_rows = _tile_rows(plan, dtype, x5.size)
    scratch = np.empty((tile_rows * ow, taps_cgi), dtype=dtype)
    for row0, rows in _tiles(plan, tile_rows):
        cols, p0, p1 = scratch[: rows * ow], row0 * ow, (row0 + rows) * ow
        for g in range(groups):
            gather_columns(xp, cols, row0, g, *_geometry(plan))
            np.matmul(cols.T, gy2[p0:p1, g * cgo : (g + 1) * cgo], out=product)
            gw[g] += product
    # (G, KD·KH·KW·Cgi, Cgo) -> (C_out, Cgi, KD, KH, KW)
    gw = gw.reshape(groups, *plan.kernel, cgi, cgo).transpose(0, 5, 4, 1, 2, 3)
    return gw.reshape(plan.out_channels, cgi, *plan.kernel)
