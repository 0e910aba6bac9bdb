"""Direct convolution: channels-last layout conversion around the direct kernels.

All arrays handed in are lifted to three spatial dims, ``(N, C, D, H, W)``,
and validated by the plan. Each function returns an array in ``dtype`` in the
caller's channel-first layout (possibly a transposed view).
"""

from __future__ import annotations

import numba
import numpy as np

from .._padding import pad_adjoint_channels_last, pad_channels_last
from .._params import ConvPlan
from ..kernels.direct import conv_forward, conv_input_grad, conv_weight_grad

NAME = "direct"


def applies(plan: ConvPlan) -> bool:
    """Every convolution."""
    return True


def _grouped_weight(w5: np.ndarray, groups: int, dtype, swap: bool) -> np.ndarray:
    """``(C_out, Cgi, KD, KH, KW)`` -> ``(G, KD, KH, KW, Cgi, Cgo)`` (last two swapped if ``swap``).

    Always a fresh, writable, C-contiguous copy: a view of a read-only caller
    array would compile a second (read-only) kernel signature.
    """
    c_out, cgi, *kernel = w5.shape
    w6 = w5.reshape(groups, c_out // groups, cgi, *kernel)
    axes = (0, 3, 4, 5, 1, 2) if swap else (0, 3, 4, 5, 2, 1)
    return np.array(w6.transpose(axes), dtype=dtype, order="C")


def forward(plan: ConvPlan, x5, w5, bias, dtype) -> np.ndarray:
    xp = pad_channels_last(x5, plan.pads, plan.padding_mode, dtype)
    wt = _grouped_weight(w5, plan.groups, dtype, swap=False)
    y = np.empty((plan.batch, *plan.out, plan.out_channels), dtype=dtype)
    y[...] = 0 if bias is None else bias  # the kernel accumulates onto the bias
    conv_forward(xp, wt, y, *plan.stride, *plan.dilation)
    return y.transpose(0, 4, 1, 2, 3)


def input_grad(plan: ConvPlan, w5, gy5, dtype) -> np.ndarray:
    gy = pad_channels_last(gy5, ((0, 0),) * 3, "zeros", dtype)
    wtt = _grouped_weight(w5, plan.groups, dtype, swap=True)
    gxp = np.zeros((plan.batch, *plan.padded, plan.in_channels), dtype=dtype)
    conv_input_grad(gy, wtt, gxp, *plan.stride, *plan.dilation)
    return pad_adjoint_channels_last(gxp, plan.spatial, plan.pads, plan.padding_mode)


def weight_grad_operands(plan: ConvPlan, x5, gy5, dtype):
    """The padded channels-last input and output gradient a weight-gradient kernel reads."""
    xp = pad_channels_last(x5, plan.pads, plan.padding_mode, dtype)
    return xp, pad_channels_last(gy5, ((0, 0),) * 3, "zeros", dtype)


def partial_sum_count(plan: ConvPlan) -> int:
    """One partial weight gradient per thread, at most one per output row.

    The count (and so the summation order) depends only on the shape and the
    thread count: results are deterministic at a fixed thread count.
    """
    return max(1, min(numba.get_num_threads(), plan.batch * plan.out[0] * plan.out[1]))


def weight_grad(plan: ConvPlan, x5, gy5, dtype) -> np.ndarray:
    xp, gy = weight_grad_operands(plan, x5, gy5, dtype)
    chunks = partial_sum_count(plan)
    cgi, cgo = plan.in_channels // plan.groups, plan.out_channels // plan.groups
    partial = np.zeros((chunks, plan.groups, *plan.kernel, cgi, cgo), dtype=dtype)
    conv_weight_grad(xp, gy, partial, *plan.stride, *plan.dilation)
    gw = partial.sum(axis=0)  # (G, KD, KH, KW, Cgi, Cgo)
    return gw.transpose(0, 5, 4, 1, 2, 3).reshape(plan.out_channels, cgi, *plan.kernel)
