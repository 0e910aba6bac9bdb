"""Dilated stride-1 convolutions as undilated ones on the phases of the padded input.

With stride 1 and dilation ``d`` along an axis, output ``i`` reads the padded
input at ``i + d·a`` for taps ``a``. Write ``i = d·i' + r``: then it reads
``d·(i' + a) + r``, only positions of the same residue ``r``. So the
convolution splits into ``d_D·d_H·d_W`` independent undilated convolutions
with the same filters, each from one phase of the padded input,
``xp[..., r::d]``, to the same phase of the output, ``y[..., r::d]``:

- forward:     ``y[phase] = conv(xp[phase])``;
- input grad:  ``gxp[phase] = conv_input_grad(gy[phase])`` (the phases cover
  the padded input exactly once), then the padding's adjoint;
- weight grad: the sum over phases of ``conv_weight_grad(xp[phase], gy[phase])``,
  added in phase order (deterministic).

The undilated problems go back through the dispatch, so a dilated 3×3 layer
runs as Winograd products (2.25× fewer multiplications than the direct
algorithm). The cost is one padded copy of the input (or of its gradient) and
one strided copy of each phase's output; each phase's strided input view is
copied by the inner algorithm as it copies any input. Stacking the phases
along the batch axis instead, for one inner call with as many tiles as the
undilated layer, measured slower on dilated3x3's forward (13.0 against
11.4 ms): NumPy's strided copies into and out of the phase order took 3.9 ms.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from .._padding import pad_adjoint_channels_last, pad_channels_first
from .._params import ConvPlan
from .common import select_inner

NAME = "polyphase"


def applies(plan: ConvPlan) -> bool:
    """Stride 1 with some dilation above 1."""
    return plan.stride == (1, 1, 1) and plan.dilation != (1, 1, 1)


def undilated(plan: ConvPlan, spatial=None) -> ConvPlan:
    """The plan of one phase: its padded sub-grid ``spatial``, no padding, no dilation.

    Without ``spatial``, the first phase's (the others differ by at most one
    position per axis, which no dispatch rule depends on).
    """
    if spatial is None:
        spatial = tuple(-(-n // d) for n, d in zip(plan.padded, plan.dilation, strict=True))
    return dataclasses.replace(
        plan,
        spatial=spatial,
        pads=((0, 0),) * 3,
        dilation=(1, 1, 1),
        out=tuple(n - k + 1 for n, k in zip(spatial, plan.kernel, strict=True)),
        padding_mode="zeros",
    )


def _phases(plan: ConvPlan):
    """``(slices, phase plan)`` for every phase with at least one output.

    ``slices`` index both the padded input and the output: the same residues.
    A phase with no output (a padded sub-grid shorter than the kernel) reads
    nothing, so it is left out; its input gradient is zero.
    """
    for residues in itertools.product(*(range(d) for d in plan.dilation)):
        spatial = tuple(
            -(-(n - r) // d) for n, r, d in zip(plan.padded, residues, plan.dilation, strict=True)
        )
        phase = undilated(plan, spatial)
        if min(phase.out) >= 1:
            steps = (slice(r, None, d) for r, d in zip(residues, plan.dilation, strict=True))
            yield (slice(None), slice(None), *steps), phase


def forward(plan: ConvPlan, x5, w5, bias, dtype) -> np.ndarray:
    xp = pad_channels_first(x5, plan.pads, plan.padding_mode, dtype)
    y = np.empty((plan.batch, plan.out_channels, *plan.out), dtype=dtype)
    for slices, phase in _phases(plan):
        y[slices] = select_inner("forward", phase, dtype).forward(
            phase, xp[slices], w5, bias, dtype
        )
    return y


def input_grad(plan: ConvPlan, w5, gy5, dtype) -> np.ndarray:
    gxp = np.zeros((plan.batch, plan.in_channels, *plan.padded), dtype=dtype)
    for slices, phase in _phases(plan):
        algorithm = select_inner("input_grad", phase, dtype)
        gxp[slices] = algorithm.input_grad(phase, w5, gy5[slices], dtype)
    return pad_adjoint_channels_last(
        gxp.transpose(0, 2, 3, 4, 1), plan.spatial, plan.pads, plan.padding_mode
    )


def weight_grad(plan: ConvPlan, x5, gy5, dtype) -> np.ndarray:
    xp = pad_channels_first(x5, plan.pads, plan.padding_mode, dtype)
    total = np.zeros(plan.weight5, dtype=dtype)
    for slices, phase in _phases(plan):  # in phase order: deterministic
        algorithm = select_inner("weight_grad", phase, dtype)
        total += algorithm.weight_grad(phase, xp[slices], gy5[slices], dtype)
    return total
