"""Pointwise (1×1) convolution as plain matrix products in the caller's layout.

With a 1×1 kernel, no padding and one group, image ``n`` of the output is one
matrix product in channel-first layout, where every spatial position is a
column:

- forward:      y[n]  = W @ x[n]               (C_out × C_in) @ (C_in × positions)
- input grad:   gx[n] = Wᵀ @ gy[n]
- weight grad:  gW    = Σ_n gy[n] @ x[n]ᵀ

So there is nothing to copy: no column matrix and no channels-last layout
change on the way in or out, which the GEMM algorithm spends a third of its
time on for pw1x1. A stride only subsamples the input (forward, weight grad)
or spreads the gradient onto every ``stride``-th position (input grad).

Threads as in :mod:`~numconv._algorithms.gemm`: one part of the work per
thread, single-threaded BLAS in each. Parts own whole images when there are at
least as many images as threads, and a range of positions of every image
otherwise. Weight-gradient partials are summed in part order, so results are
deterministic at a fixed thread count.
"""

from __future__ import annotations

import numba
import numpy as np

from .. import _aligned
from .._params import ConvPlan
from .._workers import run_parts, split_range
from ..kernels.bias import add_channel_bias

NAME = "pointwise"


def applies(plan: ConvPlan) -> bool:
    """1×1 kernels in one group without padding (any stride)."""
    return plan.groups == 1 and set(plan.kernel) == {1} and all(pad == (0, 0) for pad in plan.pads)


def _subsampled(plan: ConvPlan, a5: np.ndarray, dtype) -> np.ndarray:
    """``(N, C, D, H, W)`` -> C-contiguous ``(N, C, positions)`` at the strided positions."""
    d, h, w = plan.stride
    a5 = a5[:, :, ::d, ::h, ::w] if (d, h, w) != (1, 1, 1) else a5
    return np.ascontiguousarray(a5, dtype=dtype).reshape(*a5.shape[:2], -1)


def _parts(batch: int, positions: int) -> list[tuple[range, slice]]:
    """(images, positions) of each thread's share of the work."""
    threads = numba.get_num_threads()
    if batch >= threads:
        return [(range(lo, hi), slice(0, positions)) for lo, hi in split_range(batch, threads)]
    return [(range(batch), slice(lo, hi)) for lo, hi in split_range(positions, threads)]


def _matrix(w5: np.ndarray, dtype) -> np.ndarray:
    return np.ascontiguousarray(w5.reshape(w5.shape[:2]), dtype=dtype)


def forward(plan: ConvPlan, x5, w5, bias, dtype) -> np.ndarray:
    x3 = _subsampled(plan, x5, dtype)
    wm = _matrix(w5, dtype)
    y3 = _aligned.empty((plan.batch, plan.out_channels, x3.shape[2]), dtype=dtype)
    bias = None if bias is None else np.ascontiguousarray(bias, dtype=dtype)

    def part(share):
        images, columns = share
        for n in images:
            np.matmul(wm, x3[n, :, columns], out=y3[n, :, columns])
            if bias is not None:  # while the image's block is in cache
                add_channel_bias(y3, bias, n, n + 1, columns.start, columns.stop)

    run_parts(part, _parts(plan.batch, x3.shape[2]))
    return y3.reshape(plan.batch, plan.out_channels, *plan.out)


def input_grad(plan: ConvPlan, w5, gy5, dtype) -> np.ndarray:
    gy3 = np.ascontiguousarray(gy5, dtype=dtype).reshape(plan.batch, plan.out_channels, -1)
    wm_t = _matrix(w5, dtype).T
    # With a stride, the products land on a compact array first and are then
    # spread onto every stride-th position of a zero gradient.
    gx3 = _aligned.empty((plan.batch, plan.in_channels, gy3.shape[2]), dtype=dtype)

    def part(share):
        images, columns = share
        for n in images:
            np.matmul(wm_t, gy3[n, :, columns], out=gx3[n, :, columns])

    run_parts(part, _parts(plan.batch, gy3.shape[2]))
    compact = gx3.reshape(plan.batch, plan.in_channels, *plan.out)
    if plan.stride == (1, 1, 1):
        return compact
    gx5 = _aligned.zeros((plan.batch, plan.in_channels, *plan.spatial), dtype=dtype)
    d, h, w = plan.stride
    gx5[:, :, ::d, ::h, ::w] = compact
    return gx5


def weight_grad(plan: ConvPlan, x5, gy5, dtype) -> np.ndarray:
    x3 = _subsampled(plan, x5, dtype)
    gy3 = np.ascontiguousarray(gy5, dtype=dtype).reshape(plan.batch, plan.out_channels, -1)
    # OpenBLAS ran these products 13-21% faster with the larger channel count
    # as the rows of the result (one core; 256 -> 64 channels over 28²: 92
    # against 76 GFLOP/s as x @ gyᵀ; 64 -> 256: 91 against 76 as gy @ xᵀ), so
    # the sum is kept as gWᵀ when there are more input channels.
    transposed = plan.in_channels > plan.out_channels
    left, right = (x3, gy3) if transposed else (gy3, x3)
    shape = (left.shape[1], right.shape[1])

    def part(share):  # every position feeds every weight: one partial sum per part
        images, columns = share
        total, product = _aligned.zeros(shape, dtype=dtype), _aligned.empty(shape, dtype=dtype)
        for n in images:
            np.matmul(left[n, :, columns], right[n, :, columns].T, out=product)
            total += product
        return total

    partials = run_parts(part, _parts(plan.batch, x3.shape[2]))
    total = partials[0]
    for partial in partials[1:]:
        total += partial
    if transposed:
        total = np.ascontiguousarray(total.T)
    return total.reshape(plan.out_channels, plan.in_channels, 1, 1, 1)
