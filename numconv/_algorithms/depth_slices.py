"""3-d convolutions as a sum over kernel depth of convolutions with one-deep kernels.

Output depth ``o`` of a stride-1 3-d convolution reads the depth-padded input
at ``o + a·dd`` for kernel slices ``a``. Each slice ``a`` alone is a
convolution with a ``1×KH×KW`` kernel of the input's depths
``a·dd … a·dd + OD − 1``, over every depth at once, so:

- forward:     ``y = Σ_a conv(xp[:, :, a·dd : a·dd + OD], w[:, :, a])``;
- input grad:  ``gxp[:, :, a·dd : a·dd + OD] += conv_input_grad(gy, w[:, :, a])``,
  then the depth padding's adjoint;
- weight grad: ``gw[:, :, a] = conv_weight_grad(xp[:, :, a·dd : a·dd + OD], gy)``.

The one-deep problems keep the H and W padding and go back through the
dispatch, so a 3×3×3 layer runs as three Winograd 1×3×3 layers (2.25× fewer
multiplications than the direct algorithm). One-group, zero-padded layers
undilated in depth go to :mod:`numconv._algorithms.winograd3d` instead,
which transforms each plane once rather than once per kernel depth; this
module keeps the grouped, depth-dilated and reflect/circular-padded ones.
The sums run in slice order: deterministic. The cost is one depth-padded
copy of the input, and each slice's input copied by the inner algorithm as
it copies any input.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import _aligned
from .._padding import pad_adjoint_channels_last, pad_channels_first
from .._params import ConvPlan
from .common import select_inner

NAME = "depth_slices"


def applies(plan: ConvPlan) -> bool:
    """3-d kernels more than one deep, stride 1 along depth."""
    return plan.kernel[0] > 1 and plan.stride[0] == 1


def one_deep(plan: ConvPlan) -> ConvPlan:
    """The plan of one kernel slice: depth ``OD``, no depth padding, a one-deep kernel."""
    return dataclasses.replace(
        plan,
        spatial=(plan.out[0], *plan.spatial[1:]),
        kernel=(1, *plan.kernel[1:]),
        dilation=(1, *plan.dilation[1:]),
        pads=((0, 0), *plan.pads[1:]),
    )


def _depth_padding(plan: ConvPlan) -> tuple:
    return (plan.pads[0], (0, 0), (0, 0))


def _depths(plan: ConvPlan, a: int) -> slice:
    start = a * plan.dilation[0]
    return slice(start, start + plan.out[0])


def forward(plan: ConvPlan, x5, w5, bias, dtype) -> np.ndarray:
    inner = one_deep(plan)
    algorithm = select_inner("forward", inner, dtype)
    xp = pad_channels_first(x5, _depth_padding(plan), plan.padding_mode, dtype)
    y = None
    for a in range(plan.kernel[0]):
        part = algorithm.forward(
            inner, xp[:, :, _depths(plan, a)], w5[:, :, a : a + 1], bias if a == 0 else None, dtype
        )
        y = np.array(part, dtype=dtype) if y is None else np.add(y, part, out=y)
    return y


def input_grad(plan: ConvPlan, w5, gy5, dtype) -> np.ndarray:
    inner = one_deep(plan)
    algorithm = select_inner("input_grad", inner, dtype)
    depth = plan.padded[0]
    gxp = _aligned.zeros((plan.batch, plan.in_channels, depth, *plan.spatial[1:]), dtype=dtype)
    for a in range(plan.kernel[0]):
        gxp[:, :, _depths(plan, a)] += algorithm.input_grad(inner, w5[:, :, a : a + 1], gy5, dtype)
    return pad_adjoint_channels_last(
        gxp.transpose(0, 2, 3, 4, 1), plan.spatial, _depth_padding(plan), plan.padding_mode
    )


def weight_grad(plan: ConvPlan, x5, gy5, dtype) -> np.ndarray:
    inner = one_deep(plan)
    algorithm = select_inner("weight_grad", inner, dtype)
    xp = pad_channels_first(x5, _depth_padding(plan), plan.padding_mode, dtype)
    gw = _aligned.empty(plan.weight5, dtype=dtype)
    for a in range(plan.kernel[0]):
        gw[:, :, a : a + 1] = algorithm.weight_grad(inner, xp[:, :, _depths(plan, a)], gy5, dtype)
    return gw
