"""Depthwise convolution: one filter per channel (``groups == C_in == C_out``).

The generic kernels loop over groups with one channel each, so their innermost
loop has length 1 and nothing vectorises (~1 GFLOP/s). The depthwise kernels
(:mod:`numconv.kernels.depthwise`) work plane by plane in the caller's
channel-first layout instead, vectorised along W, padding each plane in a
per-thread buffer: no layout conversion and no padded copy of the whole input.
With stride 1 they treat the padded plane as one flat row (see the kernels'
module): a 3×3 layer on 28×28 planes ran 3× faster than row by row.
"""

from __future__ import annotations

import numba
import numpy as np

from .._padding import source_indices
from .._params import ConvPlan
from ..kernels.depthwise import (
    depthwise_forward,
    depthwise_forward_flat,
    depthwise_input_grad,
    depthwise_input_grad_flat,
    depthwise_weight_grad,
    depthwise_weight_grad_flat,
)

NAME = "depthwise"


def applies(plan: ConvPlan) -> bool:
    """Only one input and one output channel per group (no channel multiplier)."""
    return plan.groups == plan.in_channels == plan.out_channels


def _padding_args(plan: ConvPlan, dtype) -> tuple:
    """``src_d, src_h, src_w, before_w`` and a per-thread padded-plane buffer."""
    maps = tuple(
        np.ascontiguousarray(source_indices(n, before, after, plan.padding_mode), dtype=np.int64)
        for n, (before, after) in zip(plan.spatial, plan.pads, strict=True)
    )
    # One buffer per thread Numba may run (get_thread_id() is below this count).
    scratch = np.empty((numba.config.NUMBA_NUM_THREADS, *plan.padded), dtype=dtype)
    return (*maps, plan.pads[2][0]), scratch


def _flat_args(plan: ConvPlan, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Tap offsets in the flat padded plane, and a per-thread flat row buffer.

    The buffer holds a flat result (forward) or gy placed past the largest
    offset (input gradient), so it is the padded plane plus that offset.
    """
    _, hp, wp = plan.padded
    taps = np.indices(plan.kernel).reshape(3, -1) * np.array(plan.dilation)[:, None]
    offsets = np.ascontiguousarray((taps[0] * hp + taps[1]) * wp + taps[2], dtype=np.int64)
    size = int(np.prod(plan.padded)) + int(offsets[-1])
    rows = np.empty((numba.config.NUMBA_NUM_THREADS, size), dtype=dtype)
    return offsets, rows


def _flat(plan: ConvPlan) -> bool:
    return plan.stride == (1, 1, 1)


def _filters(w5: np.ndarray, dtype) -> np.ndarray:
    """``(C, 1, KD, KH, KW)`` -> C-contiguous ``(C, KD, KH, KW)``."""
    return np.ascontiguousarray(w5[:, 0], dtype=dtype)


def _tap_rows(w5: np.ndarray, dtype) -> np.ndarray:
    """``(C, 1, KD, KH, KW)`` -> C-contiguous ``(C, taps)``, taps in C order."""
    return np.ascontiguousarray(w5[:, 0].reshape(w5.shape[0], -1), dtype=dtype)


def _planes(a5: np.ndarray, dtype) -> np.ndarray:
    return np.ascontiguousarray(a5, dtype=dtype)


def forward(plan: ConvPlan, x5, w5, bias, dtype) -> np.ndarray:
    padding, scratch = _padding_args(plan, dtype)
    y = np.empty((plan.batch, plan.out_channels, *plan.out), dtype=dtype)
    bias = np.zeros(plan.out_channels, dtype) if bias is None else np.asarray(bias, dtype)
    if _flat(plan):
        offsets, rows = _flat_args(plan, dtype)
        depthwise_forward_flat(_planes(x5, dtype), *padding, offsets, _tap_rows(w5, dtype), bias,
                               y, scratch, rows)  # fmt: skip
        return y
    depthwise_forward(_planes(x5, dtype), *padding, _filters(w5, dtype), bias, y, plan.stride,
                      plan.dilation, scratch)  # fmt: skip
    return y


def input_grad(plan: ConvPlan, w5, gy5, dtype) -> np.ndarray:
    padding, scratch = _padding_args(plan, dtype)
    gx = np.empty((plan.batch, plan.in_channels, *plan.spatial), dtype=dtype)
    if _flat(plan):
        offsets, rows = _flat_args(plan, dtype)
        depthwise_input_grad_flat(_planes(gy5, dtype), *padding, offsets, _tap_rows(w5, dtype),
                                  gx, scratch, rows)  # fmt: skip
        return gx
    depthwise_input_grad(_planes(gy5, dtype), *padding, _filters(w5, dtype), gx, plan.stride,
                         plan.dilation, scratch)  # fmt: skip
    return gx


def weight_grad(plan: ConvPlan, x5, gy5, dtype) -> np.ndarray:
    padding, scratch = _padding_args(plan, dtype)
    partial = np.empty((plan.batch, plan.in_channels, *plan.kernel), dtype=dtype)
    if _flat(plan):
        offsets, rows = _flat_args(plan, dtype)
        depthwise_weight_grad_flat(_planes(x5, dtype), *padding, offsets, _planes(gy5, dtype),
                                   partial.reshape(plan.batch, plan.in_channels, -1), scratch,
                                   rows)  # fmt: skip
        return partial.sum(axis=0)[:, None]
    depthwise_weight_grad(_planes(x5, dtype), *padding, _planes(gy5, dtype), partial,
                          plan.stride, plan.dilation, scratch)  # fmt: skip
    # Summed over the batch in a fixed order: deterministic at any thread count.
    return partial.sum(axis=0)[:, None]
