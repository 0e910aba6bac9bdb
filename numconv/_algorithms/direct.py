"""Direct convolution: channels-last layout conversion around the direct kernels.

All arrays handed in are lifted to three spatial dims, ``(N, C, D, H, W)``,
and validated by the plan. Each function returns an array in ``dtype`` in the
caller's channel-first layout (possibly a transposed view).
"""

from __future__ import annotations

import numpy as np

from .. import _aligned
from .._padding import pad_adjoint_channels_last, pad_channels_last
from .._params import ConvPlan
from ..kernels.direct import conv_forward, conv_input_grad, conv_weight_grad
from .common import (
    channels_last,
    grouped_weight,
    partial_sum_count,
    ungrouped_weight,
    weight_grad_operands,
)

NAME = "direct"


def applies(plan: ConvPlan) -> bool:
    """Every convolution."""
    return True


def forward(plan: ConvPlan, x5, w5, bias, dtype) -> np.ndarray:
    xp = pad_channels_last(x5, plan.pads, plan.padding_mode, dtype)
    wt = grouped_weight(w5, plan.groups, dtype, swap=False)
    y = _aligned.empty((plan.batch, *plan.out, plan.out_channels), dtype=dtype)
    y[...] = 0 if bias is None else bias  # the kernel accumulates onto the bias
    conv_forward(xp, wt, y, *plan.stride, *plan.dilation)
    return y.transpose(0, 4, 1, 2, 3)


def input_grad(plan: ConvPlan, w5, gy5, dtype) -> np.ndarray:
    gy = channels_last(gy5, dtype)
    wtt = grouped_weight(w5, plan.groups, dtype, swap=True)
    gxp = _aligned.zeros((plan.batch, *plan.padded, plan.in_channels), dtype=dtype)
    conv_input_grad(gy, wtt, gxp, *plan.stride, *plan.dilation)
    return pad_adjoint_channels_last(gxp, plan.spatial, plan.pads, plan.padding_mode)


def weight_grad(plan: ConvPlan, x5, gy5, dtype) -> np.ndarray:
    xp, gy = weight_grad_operands(plan, x5, gy5, dtype)
    chunks = partial_sum_count(plan)
    cgi, cgo = plan.in_channels // plan.groups, plan.out_channels // plan.groups
    partial = _aligned.zeros((chunks, plan.groups, *plan.kernel, cgi, cgo), dtype=dtype)
    conv_weight_grad(xp, gy, partial, *plan.stride, *plan.dilation)
    return ungrouped_weight(partial.sum(axis=0), plan)
