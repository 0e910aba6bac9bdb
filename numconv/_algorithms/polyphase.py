"""Dilated stride-1 convolutions as undilated ones on the phases of the padded input.

With stride 1 and dilation ``d`` along an axis, output ``i`` reads the padded
input at ``i + d·a`` for taps ``a``. Write ``i = d·i' + r``: then it reads
``d·(i' + a) + r``, only positions of the same residue ``r``. So the
convolution splits into ``P = d_D·d_H·d_W`` independent undilated convolutions
with the same filters, each from one phase of the padded input,
``xp[..., r::d]``, to the same phase of the output, ``y[..., r::d]``.

The phases are stacked along the batch axis (:mod:`numconv.kernels.phases`),
all of the largest phase's shape, so the undilated problem is one call with
``P·N`` images and as many tiles as the dilated layer:

- forward:     ``y = merge(conv(split(x)))``, the split padding as it copies;
- input grad:  ``gx = merge(conv_input_grad(split(gy)))``, cropped to the
  input by the merge (zero padding) or followed by the padding's adjoint;
- weight grad: ``conv_weight_grad(split(x), split(gy))``: the inner call's sum
  over images is the sum over phases.

Positions a shorter phase lacks are zeros in the split of ``x`` and of
``gy``: in the forward they only reach outputs the merge drops, and a zero
output gradient contributes nothing to either gradient. The undilated problem
goes back through the dispatch, so a dilated 3×3 layer runs as Winograd
products (4× fewer multiplications than the direct algorithm with F(4×4)).
One call instead of one per phase saves the per-call costs (filter
transform, thread hand-offs), and the split and merge kernels replace
NumPy's strided phase copies (3.9 ms on dilated3x3, docs/performance.md §12).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import _aligned, _workspace
from .._padding import extended_map, pad_adjoint_channels_last, source_indices
from .._params import ConvPlan, kernel_array
from .._workers import run_parts, thread_parts
from ..kernels.phases import merge_phases, split_phases, split_tasks
from .common import inner_call, select_inner

NAME = "polyphase"


def applies(plan: ConvPlan) -> bool:
    """Stride 1 with some dilation above 1."""
    return plan.stride == (1, 1, 1) and plan.dilation != (1, 1, 1)


def _phase_count(plan: ConvPlan) -> int:
    return math.prod(plan.dilation)


def undilated(plan: ConvPlan) -> ConvPlan:
    """The stacked phases as one undilated problem: ``P·N`` images of the largest phase's shape."""
    spatial = tuple(-(-n // d) for n, d in zip(plan.padded, plan.dilation, strict=True))
    return dataclasses.replace(
        plan,
        batch=_phase_count(plan) * plan.batch,
        spatial=spatial,
        pads=((0, 0),) * 3,
        dilation=(1, 1, 1),
        out=tuple(n - k + 1 for n, k in zip(spatial, plan.kernel, strict=True)),
        padding_mode="zeros",
    )


def _split(a5, maps, before_w: int, inner_spatial, plan: ConvPlan, dtype, slot: str) -> np.ndarray:
    """``a5`` read through the padding ``maps`` (``before_w`` the padding before W) into
    stacked phases ``(P·N, C, *inner_spatial)``, in scratch ``slot``.

    Scratch, not a fresh array: the stacked phases of dilated3x3 are 7.4 MB,
    and in a process whose allocator hands such blocks back to the system
    their fresh pages faulted on every call (weight gradient 8.0-12.5 ms
    against 4.8-4.9 from scratch, alternating in one process).
    """
    n, c = a5.shape[:2]
    stacked = _workspace.scratch(slot, (_phase_count(plan), n, c, *inner_spatial), dtype)
    a5 = kernel_array(a5, a5.shape, dtype)
    dilation = np.array(plan.dilation, dtype=np.int64)
    src_d, src_h, src_w = maps
    dw, width = plan.dilation[2], inner_spatial[2]
    col_source = np.ascontiguousarray(src_w.reshape(width, dw).T)  # [rw, l]: src_w[rw + dw·l]
    col_first = np.arange(dw, dtype=np.int64) - before_w
    run_parts(
        lambda b: split_phases(a5, stacked, src_d, src_h, col_source, col_first, dilation, *b),
        thread_parts(split_tasks(math.prod(stacked.shape[:3]), plan.dilation)),
        blas=False,
    )
    return stacked.reshape(-1, c, *inner_spatial)


def _maps(sizes, pads, mode: str, plan: ConvPlan, inner_spatial):
    """Per-axis padding maps of ``sizes`` in ``mode``, extended by zeros to ``d·P`` entries."""
    maps = []
    for size, (before, after), d, p in zip(sizes, pads, plan.dilation, inner_spatial, strict=True):
        maps.append(extended_map(source_indices(size, before, after, mode), d * p))
    return maps


def _input_phases(plan: ConvPlan, inner: ConvPlan, x5, dtype) -> np.ndarray:
    maps = _maps(plan.spatial, plan.pads, plan.padding_mode, plan, inner.spatial)
    return _split(x5, maps, plan.pads[2][0], inner.spatial, plan, dtype, "polyphase.input")


def _gradient_phases(plan: ConvPlan, inner: ConvPlan, gy5, dtype) -> np.ndarray:
    maps = _maps(plan.out, ((0, 0),) * 3, "zeros", plan, inner.out)
    return _split(gy5, maps, 0, inner.out, plan, dtype, "polyphase.gradient")


def _merge(phases5, plan: ConvPlan, shape, offset, dtype) -> np.ndarray:
    """Stacked phases ``(P·N, C, ...)`` back onto one grid of ``shape`` (``(N, C, D, H, W)``).

    The phases may overhang (see :func:`numconv._algorithms.common.inner_call`):
    the merge only reads the positions it places.
    """
    out = _aligned.empty(shape, dtype=dtype)
    # C-contiguous for the kernel's flat vector copies (a no-op for the inner
    # algorithms' results, which are)
    phases5 = np.ascontiguousarray(phases5)
    stacked = phases5.reshape(_phase_count(plan), plan.batch, *phases5.shape[1:])
    dilation = np.array(plan.dilation, dtype=np.int64)
    offset = np.array(offset, dtype=np.int64)
    run_parts(
        lambda b: merge_phases(stacked, out, dilation, offset, *b),
        thread_parts(shape[0] * shape[1]),
        blas=False,
    )
    return out


def forward(plan: ConvPlan, x5, w5, bias, dtype) -> np.ndarray:
    inner = undilated(plan)
    xs = _input_phases(plan, inner, x5, dtype)
    ys = inner_call("forward", inner, dtype, xs, w5, bias, result_slot="polyphase.result")
    return _merge(ys, plan, plan.output5, (0, 0, 0), dtype)


def input_grad(plan: ConvPlan, w5, gy5, dtype) -> np.ndarray:
    inner = undilated(plan)
    gys = _gradient_phases(plan, inner, gy5, dtype)
    gxs = inner_call("input_grad", inner, dtype, w5, gys, result_slot="polyphase.result")
    if plan.padding_mode == "zeros":  # the padding's adjoint is a crop: merge just the input
        before = tuple(b for b, _ in plan.pads)
        return _merge(gxs, plan, plan.input5, before, dtype)
    gxp = _merge(gxs, plan, (plan.batch, plan.in_channels, *plan.padded), (0, 0, 0), dtype)
    return pad_adjoint_channels_last(
        gxp.transpose(0, 2, 3, 4, 1), plan.spatial, plan.pads, plan.padding_mode
    )


def weight_grad(plan: ConvPlan, x5, gy5, dtype) -> np.ndarray:
    inner = undilated(plan)
    xs = _input_phases(plan, inner, x5, dtype)
    gys = _gradient_phases(plan, inner, gy5, dtype)
    return select_inner("weight_grad", inner, dtype).weight_grad(inner, xs, gys, dtype)
