"""Planar GEMM convolution: im2col tiles and BLAS in the caller's channel-first layout.

Image ``n``'s output is a ``(C_out, positions)`` matrix in the caller's own
layout, so with column tiles whose rows are window values and whose columns
are positions (:mod:`numconv.kernels.planar_columns`), every product lands
where it belongs, with no layout change on either side:

- forward:       y[n][:, tile]  = W @ cols                (C_out × cgi·taps) @ (cgi·taps × m)
- weight grad:   gW            += gy[n][:, tile] @ colsᵀ   accumulated tile by tile, in order
- input grad:    dcols          = Wᵀ @ gy[n][:, tile], added back into the input (col2im)

The channels-last GEMM (:mod:`~numconv._algorithms.gemm`) needs the input
and output transposed, which costs as much as the products themselves when a
window holds few channels (first layers: 3 channels) or a layer is long and
thin (1-d audio layers). There a column row is a copy of input-row runs
instead: contiguous at stride 1, strided otherwise.

One tile's columns hold every group's window values, so one kernel call and
one batched ``np.matmul`` (over images and groups, BLAS for each) serve all
groups: a per-group loop cost grouped layers a Python round trip per group.

Threads as in the GEMM algorithm: the image tiles are split into one
contiguous part per thread, each run on a worker with serial column kernels
and single-threaded BLAS. Results are deterministic at a fixed thread count.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .. import _aligned, _workspace
from .._padding import pad_adjoint_channels_last, pad_channels_first
from .._params import ConvPlan
from .._workers import run_parts, split_range
from ..kernels.bias import add_channel_bias
from ..kernels.planar_columns import gather_planar, gather_planar_by_row, scatter_planar
from ..kernels.transpose import transpose_stack

NAME = "planar_gemm"

# Column-tile bytes, shared by the threads: 2 MiB per worker on 2 cores, a
# core's whole L2. Larger than the channels-last GEMM's because it measured
# faster: from 0.5 to 2 MiB per worker every op gained 5-15% (audio1d forward
# 36.3 -> 30.5 ms, stem weight gradient 18.6 -> 17.5 ms); 4 MiB gained nothing.
TILE_BYTES = 1 << 22


def applies(plan: ConvPlan) -> bool:
    """Every convolution."""
    return True


def _geometry(plan: ConvPlan):
    return plan.kernel, plan.stride, plan.dilation, plan.out


def _depth(plan: ConvPlan) -> int:
    """Column rows per position: window values over every group's channels."""
    return plan.in_channels * math.prod(plan.kernel)


def _tiles(plan: ConvPlan, dtype, x_elements: int) -> list[tuple[int, int, int, int]]:
    """The column tiles ``(n0, n1, p0, p1)``: images ``n0:n1``, positions ``p0:p1``.

    A tile holds at most TILE_BYTES of columns per worker, and all of them at
    most twice input + output. Small images are grouped several to a tile, so
    one kernel call and one (batched) matrix product serve them all: per call,
    Python and the thread hand-off cost microseconds that cifar_first's
    32² images would pay 64 times. Tiles are equal, and as many as a multiple
    of the thread count, so the parts (:func:`_parts`) are balanced.
    """
    positions = math.prod(plan.out)
    itemsize = np.dtype(dtype).itemsize
    threads = max(1, numba.get_num_threads())
    out_elements = plan.batch * positions * plan.out_channels
    budget = max(1, min(TILE_BYTES, 2 * (x_elements + out_elements) * itemsize) // threads)
    image_bytes = _depth(plan) * positions * itemsize
    if plan.batch >= threads and image_bytes <= budget:
        count = _round_up(-(-plan.batch // max(1, budget // image_bytes)), threads)
        images = -(-plan.batch // count)
        return [(n, min(plan.batch, n + images), 0, positions)
                for n in range(0, plan.batch, images)]  # fmt: skip
    count = -(-image_bytes // budget)
    if plan.batch < threads:  # every thread needs a share of the few images
        count = _round_up(count, -(-threads // plan.batch))
    tile = -(-positions // count)
    if tile > 128:  # whole vectors for the column copies and BLAS's micro-kernels
        tile += -tile % 16
    return [(n, n + 1, p, min(positions, p + tile))
            for n in range(plan.batch) for p in range(0, positions, tile)]  # fmt: skip


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _parts(tiles, whole_images: bool):
    """Each thread's list of tiles, contiguous in (image, position) order.

    With ``whole_images`` no two parts share an image (the input gradient's
    col2im adds into the image's halo).
    """
    per_image = sum(1 for t in tiles if t[0] == tiles[0][0]) if whole_images else 1
    threads = numba.get_num_threads()
    return [tiles[lo:hi] for lo, hi in split_range(len(tiles), threads, per_image)]


def _columns(scratch: np.ndarray, groups: int, depth: int, tile) -> np.ndarray:
    """The tile's ``(images, groups, depth, positions)`` columns, at the start of ``scratch``."""
    n0, n1, p0, p1 = tile
    size = (n1 - n0) * groups * depth * (p1 - p0)
    return scratch[:size].reshape(n1 - n0, groups, depth, p1 - p0)


def _weight_matrices(w5: np.ndarray, groups: int, dtype) -> np.ndarray:
    """``(C_out, Cgi, KD, KH, KW)`` -> ``(G, Cgo, Cgi·taps)``: rows already in column order."""
    return np.ascontiguousarray(w5, dtype=dtype).reshape(groups, w5.shape[0] // groups, -1)


def _positions_matrix(a5: np.ndarray, dtype) -> np.ndarray:
    """``(N, C, D, H, W)`` -> C-contiguous ``(N, C, positions)`` of ``dtype``."""
    return np.ascontiguousarray(a5, dtype=dtype).reshape(*a5.shape[:2], -1)


def forward(plan: ConvPlan, x5, w5, bias, dtype) -> np.ndarray:
    xp = pad_channels_first(x5, plan.pads, plan.padding_mode, dtype)
    wm = _weight_matrices(w5, plan.groups, dtype)
    groups, cgo, depth = wm.shape
    y = _aligned.empty((plan.batch, plan.out_channels, math.prod(plan.out)), dtype=dtype)
    y4 = y.reshape(plan.batch, groups, cgo, -1)
    bias = None if bias is None else np.ascontiguousarray(bias, dtype=dtype)
    tiles = _tiles(plan, dtype, x5.size)
    scratch_size = max(_columns_size(t, groups * depth) for t in tiles)

    def part(items):  # writes only its own output tiles
        scratch = _workspace.scratch("planar_gemm.columns", (scratch_size,), dtype)
        for n0, n1, p0, p1 in items:
            cols = _columns(scratch, groups, depth, (n0, n1, p0, p1))
            gather_planar(xp, cols.reshape(n1 - n0, -1, p1 - p0), n0, p0, *_geometry(plan))
            block = y4[n0:n1, :, :, p0:p1]
            np.matmul(wm, cols, out=block)  # every image and group in one call
            if bias is not None:  # while the tile's block is in cache
                add_channel_bias(y, bias, n0, n1, p0, p1)

    run_parts(part, _parts(tiles, whole_images=False))
    return y.reshape(plan.batch, plan.out_channels, *plan.out)


def input_grad(plan: ConvPlan, w5, gy5, dtype) -> np.ndarray:
    wm = _weight_matrices(w5, plan.groups, dtype)
    groups, cgo, depth = wm.shape
    gy4 = _positions_matrix(gy5, dtype).reshape(plan.batch, groups, cgo, -1)
    shape = (plan.batch, plan.in_channels, *plan.padded)
    tiles = _tiles(plan, dtype, math.prod(shape))
    scratch_size = max(_columns_size(t, groups * depth) for t in tiles)
    # Windows overlap, so two parts may add into the same input row. With a
    # batch per part, parts own whole images and share one gradient array;
    # otherwise each part adds into its own, summed in part order afterwards.
    shared = plan.batch >= numba.get_num_threads()
    parts = _parts(tiles, whole_images=shared)
    gxp = _aligned.zeros(shape, dtype=dtype)

    def part(items):
        own = shared or items is parts[0]
        target = gxp if own else _workspace.zeroed("planar_gemm.partial", shape, dtype)
        scratch = _workspace.scratch("planar_gemm.columns", (scratch_size,), dtype)
        for n0, n1, p0, p1 in items:
            cols = _columns(scratch, groups, depth, (n0, n1, p0, p1))
            np.matmul(wm.transpose(0, 2, 1), gy4[n0:n1, :, :, p0:p1], out=cols)
            scatter_planar(cols.reshape(n1 - n0, -1, p1 - p0), target, n0, p0, *_geometry(plan))
        return target

    for partial in run_parts(part, parts)[1:]:
        if partial is not gxp:
            gxp += partial
    return pad_adjoint_channels_last(
        gxp.transpose(0, 2, 3, 4, 1), plan.spatial, plan.pads, plan.padding_mode
    )


def weight_grad(plan: ConvPlan, x5, gy5, dtype) -> np.ndarray:
    xp = pad_channels_first(x5, plan.pads, plan.padding_mode, dtype)
    groups = plan.groups
    cgo = plan.out_channels // groups
    gy4 = _positions_matrix(gy5, dtype).reshape(plan.batch, groups, cgo, -1)
    depth = _depth(plan) // groups
    tiles = _tiles(plan, dtype, x5.size)
    scratch_size = max(_columns_size(t, groups * depth) for t in tiles)
    gradient_size = max(_columns_size(t, groups * cgo) for t in tiles)

    # A tile's columns hold its images side by side, (G·depth, images, m), so
    # one product per tile sums over all its images: per-image products
    # summed afterwards cost more (docs/performance.md §26). Transposed,
    # (depth × cgo) = cols @ gy_tileᵀ: OpenBLAS ran this 1.2-1.9x faster
    # than gy_tile @ colsᵀ on the suite's shapes (e.g. 97 against 77
    # GFLOP/s for 5×5 over 32 channels), the same multiply-adds.
    def part(items):  # every position feeds every weight: one partial sum per part
        gwt = None
        product = _workspace.scratch("planar_gemm.products", (groups, depth, cgo), dtype)
        scratch = _workspace.scratch("planar_gemm.columns", (scratch_size,), dtype)
        stacked = _workspace.scratch("planar_gemm.gradient", (gradient_size,), dtype)
        for n0, n1, p0, p1 in items:
            images, m = n1 - n0, p1 - p0
            cols = scratch[: _columns_size((n0, n1, p0, p1), groups * depth)]
            gather_planar_by_row(
                xp, cols.reshape(groups * depth, images, m), n0, p0, *_geometry(plan)
            )
            gy_tile = _side_by_side(gy4[n0:n1, :, :, p0:p1], stacked)
            # The first tile's product is the part's sum (a fresh array, the
            # part's result); later ones go through scratch and are added.
            result = np.matmul(
                cols.reshape(groups, depth, images * m),
                gy_tile.transpose(0, 2, 1),
                out=None if gwt is None else product,
            )
            if gwt is None:
                gwt = result
            else:
                gwt += result
        return gwt

    partials = run_parts(part, _parts(tiles, whole_images=False))
    gwt = partials[0]
    for partial in partials[1:]:
        gwt += partial
    gw = _aligned.empty((groups, cgo, depth), dtype)
    transpose_stack(gwt, gw)  # NumPy's copy of the transposed view took 2x as long
    return gw.reshape(plan.weight5)


def _side_by_side(gy_tile: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """``(images, G, cgo, m)`` -> ``(G, cgo, images·m)``, columns in
    :func:`gather_planar_by_row`'s order: a view for one image, else a copy
    into ``scratch``."""
    images, groups, cgo, m = gy_tile.shape
    if images == 1:
        return gy_tile[0]
    stacked = scratch[: gy_tile.size].reshape(groups, cgo, images, m)
    np.copyto(stacked, gy_tile.transpose(1, 2, 0, 3))
    return stacked.reshape(groups, cgo, images * m)


def _columns_size(tile, rows: int) -> int:
    n0, n1, p0, p1 = tile
    return (n1 - n0) * rows * (p1 - p0)
