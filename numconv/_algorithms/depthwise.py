"""Depthwise convolution: one filter per channel (``groups == C_in == C_out``).

The generic kernels loop over groups with one channel each, so their innermost
loop has length 1 and nothing vectorises (~1 GFLOP/s). Here the channel axis is
innermost everywhere: see :mod:`numconv.kernels.depthwise`.
"""

from __future__ import annotations

import numpy as np

from .._padding import pad_adjoint_channels_last, pad_channels_last
from .._params import ConvPlan
from ..kernels.depthwise import depthwise_forward, depthwise_input_grad, depthwise_weight_grad
from .common import channels_last, partial_sum_count, weight_grad_operands

NAME = "depthwise"


def applies(plan: ConvPlan) -> bool:
    """Only one input and one output channel per group (no channel multiplier)."""
    return plan.groups == plan.in_channels == plan.out_channels


def _channel_filters(w5: np.ndarray, dtype) -> np.ndarray:
    """``(C, 1, KD, KH, KW)`` -> C-contiguous ``(KD, KH, KW, C)``."""
    return np.array(w5[:, 0].transpose(1, 2, 3, 0), dtype=dtype, order="C")


def forward(plan: ConvPlan, x5, w5, bias, dtype) -> np.ndarray:
    xp = pad_channels_last(x5, plan.pads, plan.padding_mode, dtype)
    y = np.empty((plan.batch, *plan.out, plan.out_channels), dtype=dtype)
    y[...] = 0 if bias is None else bias  # the kernel accumulates onto the bias
    depthwise_forward(xp, _channel_filters(w5, dtype), y, plan.stride, plan.dilation)
    return y.transpose(0, 4, 1, 2, 3)


def input_grad(plan: ConvPlan, w5, gy5, dtype) -> np.ndarray:
    gy = channels_last(gy5, dtype)
    gxp = np.zeros((plan.batch, *plan.padded, plan.in_channels), dtype=dtype)
    depthwise_input_grad(gy, _channel_filters(w5, dtype), gxp, plan.stride, plan.dilation)
    return pad_adjoint_channels_last(gxp, plan.spatial, plan.pads, plan.padding_mode)


def weight_grad(plan: ConvPlan, x5, gy5, dtype) -> np.ndarray:
    xp, gy = weight_grad_operands(plan, x5, gy5, dtype)
    partial = np.zeros((partial_sum_count(plan), *plan.kernel, plan.in_channels), dtype=dtype)
    depthwise_weight_grad(xp, gy, partial, plan.stride, plan.dilation)
    gw = partial.sum(axis=0)  # (KD, KH, KW, C)
    return gw.transpose(3, 0, 1, 2)[:, None]
