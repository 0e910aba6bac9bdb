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
a row end. Zero-padded layers of stride 2 along W on an even width do the
same on planes split into their even and odd columns
(:mod:`numconv.kernels.depthwise_split`), one vectorised loop a plane where
the phased copy went row by row: 2-3× faster on 14² and 28² planes
(docs/performance.md §24). The other zero-padded layers of W stride 1 or 2
(:mod:`numconv.kernels.depthwise_rows`) copy each plane once into its W
phases and sum blocks of output-row vectors over every tap in registers,
forward and input gradient: 1.2-2.7× faster than the split or flat planes
on planes up to 64², and the input gradient on larger ones too
(docs/performance.md §37); the split planes keep the weight gradient and the
forward of larger planes.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np

from .. import _aligned
from .._padding import extended_map, source_indices
from .._params import ConvPlan
from ..kernels import simd
from ..kernels.depthwise import (
    depthwise_forward_flat,
    depthwise_input_grad_flat,
    depthwise_weight_grad_flat,
)
from ..kernels.depthwise_masked import masked_forward, masked_weight_grad
from ..kernels.depthwise_rows import BLOCK as BLOCK_SEGMENTS
from ..kernels.depthwise_rows import rows_forward, rows_input_grad
from ..kernels.depthwise_split import split_forward, split_weight_grad

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
    scratch = _aligned.zeros((threads, slots), dtype=dtype)
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


# Input planes (H·W values) up to which the row blocks take a forward: on
# 8×96×112² (3×3, stride 2; 38 MB of input) they took 1.8 ms against the
# split planes' 1.5, and 0.77 against 0.6 (stride 1, no padding); on 56²
# planes they tied or won (docs/performance.md §37).
ROWS_MAX_PLANE = 64 * 64


def _rows(plan: ConvPlan, op: str) -> bool:
    """Zero padding, W stride 1 or 2, a window one deep with no depth stride or padding,
    planes of two rows or more, where the row blocks measured faster than the flat or
    split planes.

    Forwards up to :data:`ROWS_MAX_PLANE`; input gradients of any size at W
    stride 2 (8×96×112²: 3.7 against 4.1 ms), else up to the same planes.
    (Stride-1 layers that keep their width go to the masked kernels first.)
    1-d layers stay on the flat planes: 16×128×4000, 9 taps, took 4.6 ms
    forward as row blocks against 2.2, and 8×64×1000 (5 taps) 0.10 against
    0.07-0.09.
    """
    small = plan.spatial[1] * plan.spatial[2] <= ROWS_MAX_PLANE
    return (
        (small or (op == "input_grad" and plan.stride[2] == 2))
        and plan.spatial[1] > 1
        and plan.stride[2] in (1, 2)
        and plan.stride[0] == 1
        and plan.padding_mode == "zeros"
        and plan.kernel[0] == 1
        and plan.pads[0] == (0, 0)
    )


# Bytes of phase planes a band of output rows copies at once: in L1 with
# room to spare for the input rows and the output.
ROWS_BAND_BYTES = 16 << 10


@functools.lru_cache(maxsize=64)
def _rows_layout(plan: ConvPlan, itemsize: int, band_bytes: int) -> tuple:
    """The row-block kernels' layout (see :mod:`numconv.kernels.depthwise_rows`) and the
    per-thread buffer length, for values of ``itemsize`` bytes.

    Cached: the arrays depend on the plan only, and the kernels never write them.
    """
    lanes = simd.VECTOR_BYTES // itemsize
    _, kh, kw = plan.kernel
    _, dh, dw = plan.dilation
    _, sh, sw = plan.stride
    _, oh, ow = plan.out
    (pad_top, pad_bottom), (pad_left, _) = plan.pads[1], plan.pads[2]
    reach = (kh - 1) * dh
    rows = sh * (oh - 1) + reach + 1  # the padded rows the window reaches
    row_source = extended_map(source_indices(plan.spatial[1], pad_top, pad_bottom, "zeros"), rows)
    col_first = np.arange(sw, dtype=np.int64) - pad_left
    b, e = np.indices((kh, kw)).reshape(2, -1)
    phase, shift = (e * dw) % sw, (e * dw) // sw
    width = ow + int(shift.max())
    band_rows = max(1, min(oh, (band_bytes // (sw * width * itemsize) - reach - 1) // sh + 1))
    band = sh * (band_rows - 1) + reach + 1
    tap_off = np.ascontiguousarray(phase * band * width + b * dh * width + shift, dtype=np.int64)
    o, v = np.indices((band_rows, -(-ow // lanes))).reshape(2, -1)
    segments = tuple(
        np.ascontiguousarray(a, dtype=np.int64)
        for a in (sh * o * width + v * lanes, o * ow + v * lanes, np.minimum(lanes, ow - v * lanes))
    )
    layout = (row_source, col_first, sh, sw, reach, band_rows, width, *segments, tap_off)
    return layout, sw * band * width + lanes


@functools.lru_cache(maxsize=64)
def _rows_grad_layout(plan: ConvPlan, itemsize: int) -> tuple:
    """The row-block input gradient's layout (see
    :func:`numconv.kernels.depthwise_rows.rows_input_grad`) and its buffer length.

    Cached: the arrays depend on the plan only, and the kernel never writes them.
    """
    lanes = simd.VECTOR_BYTES // itemsize
    _, kh_n, kw_n = plan.kernel
    _, dh, dw = plan.dilation
    _, sh, sw = plan.stride
    _, height, width = plan.spatial
    _, out_h, out_w = plan.out
    pad_top, pad_left = plan.pads[1][0], plan.pads[2][0]
    kh, kw = np.indices((kh_n, kw_n)).reshape(2, -1)
    row_class, phase, shift = (kh * dh) % sh, (kw * dw) % sw, (kw * dw) // sw
    # W phase P holds the input columns sw·j + P − pl for j_lo ≤ j < j_hi.
    j_lo = [-(-(pad_left - p) // sw) for p in range(sw)]
    j_hi = [-(-(width + pad_left - p) // sw) for p in range(sw)]
    # The gy rows and columns any input position's windows reach, framing the copy.
    h = np.arange(height)[:, None]
    reach = (h + pad_top - kh[None, :] * dh) // sh
    reached = reach[(h + pad_top) % sh == row_class[None, :]]
    top = max(0, -int(reached.min(initial=0)))
    rows = top + max(out_h, int(reached.max(initial=0)) + 1)
    cols = [(j_lo[p] - shift[phase == p], j_hi[p] - 1 - shift[phase == p]) for p in range(sw)]
    left = max([0] + [-int(lo.min()) for lo, _ in cols if lo.size])
    grad_width = left + max([out_w] + [int(hi.max()) + 1 for _, hi in cols if hi.size])
    grad_rows = extended_map(np.arange(out_h, dtype=np.int64), rows - top)
    grad_rows = np.concatenate([np.full(top, -1, dtype=np.int64), grad_rows])
    # Classes (row residue, W phase): their taps, then their segments in blocks of 8.
    classes = [(r, p) for r in range(sh) for p in range(sw)]
    order, bounds = [], [0]
    for r, p in classes:
        chosen = np.flatnonzero((row_class == r) & (phase == p))
        order.extend(chosen)
        bounds.append(len(order))
    order = np.array(order, dtype=np.int64)
    tap_off = -((kh[order] * dh - row_class[order]) // sh) * grad_width - shift[order]
    segments = []
    for k, (r, p) in enumerate(classes):
        mine = []
        for y in range(height):
            if (y + pad_top) % sh != r:
                continue
            base_row = (y + pad_top - r) // sh + top
            for j in range(j_lo[p], j_hi[p], lanes):
                column = sw * j + p - pad_left
                count = min(lanes, j_hi[p] - j)
                mine.append((base_row * grad_width + j + left, y * width + column, count, k))
        mine += mine[-1:] * (-len(mine) % BLOCK_SEGMENTS)
        segments += mine
    seg = np.array(segments, dtype=np.int64).reshape(-1, 4).T
    layout = (
        grad_rows, left, grad_width, sw, *(np.ascontiguousarray(a) for a in seg),
        np.array(bounds, dtype=np.int64), order, np.ascontiguousarray(tap_off, dtype=np.int64),
    )  # fmt: skip
    return layout, rows * grad_width + lanes


def _split(plan: ConvPlan) -> bool:
    """W stride 2 on an even width, H stride 1 or 2, zero padding, a window one deep.

    An output row must fit in its pitch (``OW ≤ sh·W/2``): wider ones (1-d
    layers padded by more than the window) would run into the next row.
    Windows up to 5 wide: the masked kernels run wider ones a pass per tap,
    and 7×7 on 8×64×56² took 2.2 ms forward against 0.97 on phased planes.
    """
    return (
        plan.kernel[2] <= 5
        and plan.stride[0] == 1
        and plan.stride[1] in (1, 2)
        and plan.stride[2] == 2
        and plan.spatial[2] % 2 == 0
        and plan.out[2] <= plan.stride[1] * plan.spatial[2] // 2
        and plan.padding_mode == "zeros"
        and plan.kernel[0] == 1
        and plan.pads[0] == (0, 0)
    )


# Planes stacked per parallel item on the split path: up to this many values
# of split slots (both regions).
SPLIT_STACK_ELEMENTS = 2048


@functools.lru_cache(maxsize=64)
def _split_layout(plan: ConvPlan, stack_elements: int) -> tuple:
    """The split kernels' layout (see :mod:`numconv.kernels.depthwise_split`).

    Returns ``(margin, pad_top, rows, region, pitch)``, the taps' ``offsets``
    (C order), ``keep``, ``per_stack`` and the largest valid count.
    Cached: the arrays depend on the plan only, and the kernels never write them.
    """
    _, kh, kw = plan.kernel
    _, dh, dw = plan.dilation
    sh = plan.stride[1]
    _, height, width = plan.spatial
    _, oh, ow = plan.out
    (pad_top, pad_bottom), (pad_left, _) = plan.pads[1], plan.pads[2]
    half = width // 2
    rows = -(-(pad_top + height + pad_bottom) // sh) * sh  # whole output rows per slot
    pitch = sh * half
    slot = rows * half
    per_stack = max(1, min(plan.batch * plan.spatial[0], stack_elements // (2 * slot)))
    b, e = np.indices((kh, kw)).reshape(2, -1)
    column = e * dw - pad_left  # the input column tap (b, e) reads for ow = 0, halved below
    phase, shift = column % 2, column // 2
    margin = max(0, -int(shift.min()))
    within = margin + b * dh * half + shift  # a tap's offset inside its region
    count = (per_stack - 1) * slot + (oh - 1) * pitch + ow
    region = max(margin + per_stack * slot, count + int(within.max()))
    offsets = np.ascontiguousarray(phase * region + within, dtype=np.int64)
    q_column = np.arange(count) % pitch
    keep = (q_column + shift[:kw, None] >= 0) & (q_column + shift[:kw, None] < half)
    layout = (margin, pad_top, rows, region, pitch)
    return layout, offsets, np.ascontiguousarray(keep), per_stack, count


def _split_args(plan: ConvPlan):
    return _split_layout(plan, SPLIT_STACK_ELEMENTS)


def _zeroed_buffers(length: int, dtype) -> np.ndarray:
    """Like :func:`_buffers`, zeroed: for buffers whose padding slots the kernels never write."""
    buffers = _buffers(length, dtype)
    buffers.fill(0)
    return buffers


def _buffers(length: int, dtype) -> np.ndarray:
    """One flat buffer per thread Numba may run (get_thread_id() is below this count).

    Each starts on a cache line (64 bytes): with the allocator's 16-byte
    alignment, a process whose buffers landed off a line ran every vector
    load of a stacked plane across two lines, and dw3x3's masked forward
    took 0.53 ms in such processes against 0.29 in the others.
    """
    itemsize = np.dtype(dtype).itemsize
    row = -(-length * itemsize // _aligned.LINE) * _aligned.LINE // itemsize  # whole lines
    return _aligned.empty((numba.config.NUMBA_NUM_THREADS, row), dtype)


def _tap_rows(w5: np.ndarray, dtype) -> np.ndarray:
    """``(C, 1, KD, KH, KW)`` -> C-contiguous ``(C, taps)``, taps in C order."""
    return np.ascontiguousarray(w5[:, 0].reshape(w5.shape[0], -1), dtype=dtype)


def _planes(a5: np.ndarray, dtype) -> np.ndarray:
    return np.ascontiguousarray(a5, dtype=dtype)


def forward(plan: ConvPlan, x5, w5, bias, dtype) -> np.ndarray:
    y = _aligned.empty((plan.batch, plan.out_channels, *plan.out), dtype=dtype)
    bias = np.zeros(plan.out_channels, dtype) if bias is None else np.asarray(bias, dtype)
    if _masked(plan):
        layout, per_stack, buffers = _masked_args(plan, dtype)
        masked_forward(_planes(x5, dtype), *layout, _tap_rows(w5, dtype), bias, y, per_stack,
                       *buffers)  # fmt: skip
        return y
    if _rows(plan, "forward"):
        layout, length = _rows_layout(plan, np.dtype(dtype).itemsize, ROWS_BAND_BYTES)
        rows_forward(_planes(x5, dtype), *layout, _tap_rows(w5, dtype), bias, y,
                     _zeroed_buffers(length, dtype))  # fmt: skip
        return y
    if _split(plan):
        layout, offsets, keep, per_stack, count = _split_args(plan)
        split_forward(_planes(x5, dtype), *layout, offsets, keep, _tap_rows(w5, dtype), bias, y,
                      per_stack, _zeroed_buffers(2 * layout[3], dtype),
                      _buffers(count, dtype))  # fmt: skip
        return y
    layout, offsets, _, scratch, rows = _flat_args(plan, dtype)
    depthwise_forward_flat(_planes(x5, dtype), *layout, offsets, _tap_rows(w5, dtype), bias, y,
                           scratch, rows)  # fmt: skip
    return y


def input_grad(plan: ConvPlan, w5, gy5, dtype) -> np.ndarray:
    gx = _aligned.empty((plan.batch, plan.in_channels, *plan.spatial), dtype=dtype)
    if _masked(plan):
        # The forward of gy with the window turned: gx[p] = Σ_t w[t] · gy[p − offset_t].
        layout, per_stack, buffers = _masked_args(plan, dtype, transposed=True)
        turned = _tap_rows(w5[..., ::-1, ::-1], dtype)
        no_bias = np.zeros(plan.in_channels, dtype)
        masked_forward(_planes(gy5, dtype), *layout, turned, no_bias, gx, per_stack,
                       *buffers)  # fmt: skip
        return gx
    if _rows(plan, "input_grad"):
        layout, length = _rows_grad_layout(plan, np.dtype(dtype).itemsize)
        rows_input_grad(_planes(gy5, dtype), *layout, _tap_rows(w5, dtype), gx,
                        _zeroed_buffers(length, dtype))  # fmt: skip
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
        sums = _aligned.empty((plan.in_channels, stacks, math.prod(plan.kernel)), dtype=dtype)
        masked_weight_grad(_planes(x5, dtype), *layout, _planes(gy5, dtype), sums, per_stack,
                           *buffers)  # fmt: skip
        # Summed over the stacks in a fixed order: deterministic at any thread count.
        return sums.sum(axis=1).reshape(plan.in_channels, 1, *plan.kernel)
    if _split(plan):
        layout, offsets, keep, per_stack, count = _split_args(plan)
        stacks = -(-plan.batch * plan.spatial[0] // per_stack)
        sums = _aligned.empty((plan.in_channels, stacks, math.prod(plan.kernel)), dtype=dtype)
        split_weight_grad(_planes(x5, dtype), *layout, offsets, keep, _planes(gy5, dtype), sums,
                          per_stack, _zeroed_buffers(2 * layout[3], dtype),
                          _zeroed_buffers(count, dtype))  # fmt: skip
        return sums.sum(axis=1).reshape(plan.in_channels, 1, *plan.kernel)
    partial = _aligned.empty((plan.batch, plan.in_channels, *plan.kernel), dtype=dtype)
    layout, offsets, _, scratch, rows = _flat_args(plan, dtype)
    depthwise_weight_grad_flat(_planes(x5, dtype), *layout, offsets, _planes(gy5, dtype),
                               partial.reshape(plan.batch, plan.in_channels, -1), scratch,
                               rows)  # fmt: skip
    # Summed over the batch in a fixed order: deterministic at any thread count.
    return partial.sum(axis=0)[:, None]
