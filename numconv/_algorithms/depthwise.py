"""Depthwise convolution: one filter per channel (``groups == C_in == C_out``).

The generic kernels loop over groups with one channel each, so their innermost
loop has length 1 and nothing vectorises (~1 GFLOP/s). The depthwise kernels
(:mod:`numconv.kernels.depthwise`) work plane by plane in the caller's
channel-first layout instead, vectorised along W, padding each plane in a
per-thread buffer: no layout conversion and no padded copy of the whole input.
They treat the padded plane as one flat row (see the kernels' module): a 3×3
layer on 28×28 planes ran 3× faster than row by row. Strided layers first
split the padded plane into its stride phases (padded position ``i`` to
phase ``i % s`` at ``i // s``), so that every tap again reads a contiguous
run: stride-2 layers ran 1.3-3× faster than with strided rows
(docs/performance.md §21). Stride-1
zero-padded layers whose rows keep their width (the usual "same" depthwise
layer) skip the padded copy as well: :mod:`numconv.kernels.depthwise_masked`
reads the plane in place of its padding and selects zero where a read crosses
a row end.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np

from .._padding import source_indices
from .._params import ConvPlan
from ..kernels.depthwise import (
    depthwise_forward_flat,
    depthwise_input_grad_flat,
    depthwise_weight_grad_flat,
)
from ..kernels.depthwise_masked import masked_forward, masked_weight_grad

NAME = "depthwise"


def applies(plan: ConvPlan) -> bool:
    """Only one input and one output channel per group (no channel multiplier)."""
    return plan.groups == plan.in_channels == plan.out_channels


@functools.lru_cache(maxsize=64)
def _phased_layout(plan: ConvPlan) -> tuple:
    """The flat kernels' padding maps, phase grid, tap offsets and buffer lengths.

    Returns ``(src_d, src_h, src_w, slot_d, slot_h, w_phases, grid)``, the
    taps' ``offsets`` (in C order), the taps grouped by phase for the input
    gradient (``order``, offsets within the phase grid, ``phase_bounds``),
    and ``(slots, placed)``: the phased plane's length (every phase a
    ``grid``) and the result/gradient row's, which holds a placed ``gy``
    shifted by the largest offset (see :mod:`numconv.kernels.depthwise`,
    "flat planes").
    Cached: the arrays depend on the plan only, and the kernels never write them.
    """
    maps = tuple(
        np.ascontiguousarray(source_indices(n, before, after, plan.padding_mode), dtype=np.int64)
        for n, (before, after) in zip(plan.spatial, plan.pads, strict=True)
    )
    sd, sh, sw = plan.stride
    grid = tuple(-(-len(m) // s) for m, s in zip(maps, plan.stride, strict=True))
    phase_size = math.prod(grid)
    _, hq, wq = grid
    # Padded row (i, j) starts at slot_d[i] + slot_h[j]; W phase r at r·phase_size past it.
    i, j = np.arange(len(maps[0])), np.arange(len(maps[1]))
    slot_d = np.ascontiguousarray((i % sd) * sh * sw * phase_size + (i // sd) * hq * wq)
    slot_h = np.ascontiguousarray((j % sh) * sw * phase_size + (j // sh) * wq)
    w_phases = np.array([_w_phase(r, plan, phase_size) for r in range(sw)], dtype=np.int64)
    stride = np.array(plan.stride)[:, None]
    taps = np.indices(plan.kernel).reshape(3, -1) * np.array(plan.dilation)[:, None]
    phase, at = taps % stride, taps // stride
    phase_index = (phase[0] * sh + phase[1]) * sw + phase[2]
    within = (at[0] * hq + at[1]) * wq + at[2]  # a tap's offset inside its phase grid
    offsets = np.ascontiguousarray(phase_index * phase_size + within, dtype=np.int64)
    # The input gradient takes the taps grouped by phase (see its kernel).
    order = np.argsort(phase_index, kind="stable")
    phase_bounds = np.searchsorted(phase_index[order], np.arange(sd * sh * sw + 1))
    by_phase = (
        order,
        np.ascontiguousarray(within[order], dtype=np.int64),
        np.ascontiguousarray(phase_bounds, dtype=np.int64),
    )
    slots = sd * sh * sw * phase_size
    args = (*maps, slot_d.astype(np.int64), slot_h.astype(np.int64), w_phases, grid)
    return args, offsets, by_phase, (slots, slots + int(offsets.max()))


def _w_phase(r: int, plan: ConvPlan, phase_size: int) -> tuple[int, int, int, int, int]:
    """W phase ``r``: first slot, slot count, interior slots ``[lo, hi)`` and their first column."""
    sw, width, before = plan.stride[2], plan.spatial[2], plan.pads[2][0]
    padded = width + sum(plan.pads[2])
    count = max(0, -(-(padded - r) // sw))
    lo = min(count, max(0, -(-(before - r) // sw)))
    hi = max(lo, min(count, -(-(before + width - r) // sw)))
    return r * phase_size, count, lo, hi, lo * sw + r - before


def _flat_args(plan: ConvPlan, dtype) -> tuple:
    """The flat kernels' layout arguments, tap offsets and per-thread buffers.

    The phased-plane buffers are zeroed: slots past a phase's last position
    are read (by junk outputs) but never written.
    """
    args, offsets, by_phase, (slots, placed) = _phased_layout(plan)
    threads = numba.config.NUMBA_NUM_THREADS  # get_thread_id() is below this count
    scratch = np.zeros((threads, slots), dtype=dtype)
    return args, offsets, by_phase, scratch, _buffers(placed, dtype)


def _masked(plan: ConvPlan) -> bool:
    """Stride 1, zero padding, a window one deep with no depth padding, ``OW == W``.

    Pads above and below may not exceed the window's extent: the input
    gradient turns them into ``extent − 1 − pad`` rows of padding.
    """
    _, kh, _ = plan.kernel
    _, dh, _ = plan.dilation
    return (
        plan.stride == (1, 1, 1)
        and plan.padding_mode == "zeros"
        and plan.kernel[0] == 1
        and plan.pads[0] == (0, 0)
        and plan.out[2] == plan.spatial[2]
        and max(plan.pads[1]) <= (kh - 1) * dh
    )


# Planes stacked per parallel item (see numconv.kernels.depthwise_masked): up to
# this many values of stacked slots. Planes of this size or more go alone and
# write straight into the output; stacking them (dw3x3's 30×28 slots, two to a
# stack) cost an extra copy out: 0.42 -> 0.52 ms.
STACK_ELEMENTS = 1024


@functools.lru_cache(maxsize=64)
def _masked_layout(width, out_rows, planes, pad_top, pad_left, kh, kw, dh, dw, stack_elements):
    """The masked kernels' shape arguments and buffer lengths for one problem.

    Returns ``(pad_left, pad_top, rows, offsets, keep), per_stack`` and the
    lengths of the two per-thread buffers (input stack, result stack). The
    input stack holds ``pad_left`` zeros, then slots of ``rows`` rows, then
    ``(KW − 1)·dw − pad_left`` zeros, so tap ``(b, e)`` of stacked output ``q``
    reads ``q + b·dh·W + e·dw``.
    Cached: the arrays depend on the shape only, and the kernels never write them.
    """
    rows = out_rows + (kh - 1) * dh
    per_stack = max(1, min(planes, stack_elements // (rows * width)))
    b, e = np.indices((kh, kw)).reshape(2, -1)
    offsets = np.ascontiguousarray(b * dh * width + e * dw, dtype=np.int64)
    read_column = np.arange(width)[None, :] + (np.arange(kw) * dw - pad_left)[:, None]
    inside = (read_column >= 0) & (read_column < width)
    keep = np.ascontiguousarray(np.tile(inside, (1, per_stack * rows)))
    stacked = per_stack * rows * width
    lengths = (stacked + (kw - 1) * dw, stacked)  # the zeros before and after: (KW − 1)·dw
    return (pad_left, pad_top, rows, offsets, keep), per_stack, lengths


def _masked_args(plan: ConvPlan, dtype, transposed: bool = False) -> tuple:
    """The masked kernels' shape arguments, ``per_stack`` and per-thread buffers.

    ``transposed``: for the input gradient, the forward of ``gy`` with the
    window turned (pads become ``extent − 1 − pad``) from ``OH`` rows to ``H``.
    """
    _, kh, kw = plan.kernel
    _, dh, dw = plan.dilation
    pad_top, pad_left = plan.pads[1][0], plan.pads[2][0]
    out_rows = plan.out[1]
    if transposed:
        pad_top = (kh - 1) * dh - pad_top
        pad_left = (kw - 1) * dw - pad_left
        out_rows = plan.spatial[1]
    planes = plan.batch * plan.spatial[0]
    layout, per_stack, lengths = _masked_layout(
        plan.spatial[2], out_rows, planes, pad_top, pad_left, kh, kw, dh, dw, STACK_ELEMENTS
    )
    return layout, per_stack, tuple(_buffers(length, dtype) for length in lengths)


def _buffers(length: int, dtype) -> np.ndarray:
    """One flat buffer per thread Numba may run (get_thread_id() is below this count)."""
    return np.empty((numba.config.NUMBA_NUM_THREADS, length), dtype=dtype)


def _tap_rows(w5: np.ndarray, dtype) -> np.ndarray:
    """``(C, 1, KD, KH, KW)`` -> C-contiguous ``(C, taps)``, taps in C order."""
    return np.ascontiguousarray(w5[:, 0].reshape(w5.shape[0], -1), dtype=dtype)


def _planes(a5: np.ndarray, dtype) -> np.ndarray:
    return np.ascontiguousarray(a5, dtype=dtype)


def forward(plan: ConvPlan, x5, w5, bias, dtype) -> np.ndarray:
    y = np.empty((plan.batch, plan.out_channels, *plan.out), dtype=dtype)
    bias = np.zeros(plan.out_channels, dtype) if bias is None else np.asarray(bias, dtype)
    if _masked(plan):
        layout, per_stack, buffers = _masked_args(plan, dtype)
        masked_forward(_planes(x5, dtype), *layout, _tap_rows(w5, dtype), bias, y, per_stack,
                       *buffers)  # fmt: skip
        return y
    layout, offsets, _, scratch, rows = _flat_args(plan, dtype)
    depthwise_forward_flat(_planes(x5, dtype), *layout, offsets, _tap_rows(w5, dtype), bias, y,
                           scratch, rows)  # fmt: skip
    return y


def input_grad(plan: ConvPlan, w5, gy5, dtype) -> np.ndarray:
    gx = np.empty((plan.batch, plan.in_channels, *plan.spatial), dtype=dtype)
    if _masked(plan):
        # The forward of gy with the window turned: gx[p] = Σ_t w[t] · gy[p − offset_t].
        layout, per_stack, buffers = _masked_args(plan, dtype, transposed=True)
        turned = _tap_rows(w5[..., ::-1, ::-1], dtype)
        masked_forward(_planes(gy5, dtype), *layout, turned, np.zeros(plan.in_channels, dtype),
                       gx, per_stack, *buffers)  # fmt: skip
        return gx
    layout, _, (order, phase_offsets, phase_bounds), scratch, rows = _flat_args(plan, dtype)
    taps = np.ascontiguousarray(_tap_rows(w5, dtype)[:, order])
    depthwise_input_grad_flat(_planes(gy5, dtype), *layout, phase_offsets, phase_bounds, taps, gx,
                              scratch, rows)  # fmt: skip
    return gx


def weight_grad(plan: ConvPlan, x5, gy5, dtype) -> np.ndarray:
    if _masked(plan):
        layout, per_stack, buffers = _masked_args(plan, dtype)
        stacks = -(-plan.batch * plan.spatial[0] // per_stack)
        sums = np.empty((plan.in_channels, stacks, math.prod(plan.kernel)), dtype=dtype)
        masked_weight_grad(_planes(x5, dtype), *layout, _planes(gy5, dtype), sums, per_stack,
                           *buffers)  # fmt: skip
        # Summed over the stacks in a fixed order: deterministic at any thread count.
        return sums.sum(axis=1).reshape(plan.in_channels, 1, *plan.kernel)
    partial = np.empty((plan.batch, plan.in_channels, *plan.kernel), dtype=dtype)
    layout, offsets, _, scratch, rows = _flat_args(plan, dtype)
    depthwise_weight_grad_flat(_planes(x5, dtype), *layout, offsets, _planes(gy5, dtype),
                               partial.reshape(plan.batch, plan.in_channels, -1), scratch,
                               rows)  # fmt: skip
    # Summed over the batch in a fixed order: deterministic at any thread count.
    return partial.sum(axis=0)[:, None]
