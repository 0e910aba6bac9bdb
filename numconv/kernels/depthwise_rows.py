"""Depthwise layers as register blocks of output rows over a plane's W phases.

A plane is copied once into ``sw`` *phase planes*: phase ``P`` holds the
padded plane's columns ``sw·j + P`` (:mod:`numconv.kernels.plane_rows`, in
masked vectors; zero padding comes from the masks), each row ``width`` long,
every padded row the window reaches. Tap ``(kh, kw)`` of output ``(oh, ow)``
reads padded column ``sw·ow + kw·dw``: phase ``(kw·dw) mod sw`` at column
``ow + (kw·dw) // sw``, and padded row ``sh·oh + kh·dh``. So for a whole
vector of outputs along a row, every tap is one unaligned vector load at a
fixed offset (``tap_off``) from the vector's base (``seg_base``): a row of
outputs is one to four *segments* of up to a vector each, and
:func:`rows_forward` sums 8 segments at a time over every tap in 8 vector
registers (8 loads and 8 FMAs a tap), then stores each segment's valid
lanes. Lanes past a row's end read the next row or phase (or the zeroed
slack at the buffer's end); their sums are never stored.

:func:`rows_input_grad` gathers rather than scatters: input row ``h``'s
columns of W phase ``P`` receive the taps of phase ``P`` whose rows
``kh·dh`` share ``h + pt``'s residue mod ``sh``, each a fixed offset into a
copy of the ``gy`` plane framed by zeros, summed in the same blocks of 8
segments and stored to every ``sw``-th column.

Unlike :mod:`numconv.kernels.depthwise_split`, the rows of a stride-2 layer
are not computed and dropped (no junk half), and no tap needs a mask: the
phase planes hold their zeros (docs/performance.md §37).
"""

from __future__ import annotations

import numba
from numba import njit, prange

from .._config import KERNEL_OPTIONS
from . import simd
from .plane_rows import copy_row_vectors

BLOCK = 8  # segments a register block sums at once


@njit(inline="always", **KERNEL_OPTIONS)
def _phase_planes(
    x, plane, r0, rows, row_source, col_first, stride, band, width, buf
):  # fmt: skip  # pragma: no cover
    """``buf[(P·band + i)·width + j]`` = input plane ``plane``'s row ``row_source[r0 + i]``,
    column ``col_first[P] + stride·j``, for ``i < rows``; zeros outside the input."""
    height, in_w = x.shape[-2], x.shape[-1]
    for phase in range(col_first.shape[0]):
        copy_row_vectors(x, plane * height, r0, rows, row_source, col_first[phase], stride, in_w,
                         width, buf, phase * band * width)  # fmt: skip


@njit(parallel=True, **KERNEL_OPTIONS)
def rows_forward(x, row_source, col_first, stride_h, stride_w, reach, band_rows, width,
                 seg_base, seg_out, seg_count, tap_off, taps, bias, y,
                 buffers):  # fmt: skip  # pragma: no cover
    """``y[n, c, d] = bias[c] + Σ_t taps[c, t] · x̃[n, c, d]`` at each tap's offset.

    ``x`` is ``(N, C, D, H, W)`` and ``y`` ``(N, C, D, OH, OW)``, both
    C-contiguous, each depth slice a plane of its own. A plane goes in bands
    of ``band_rows`` output rows, whose phase planes (``sh·(band_rows - 1) +
    reach + 1`` padded rows each) stay in L1. Segment ``s`` of a band sums
    phase-plane slots ``seg_base[s] + tap_off[t] + lane`` and stores its
    first ``seg_count[s]`` lanes at ``seg_out[s]`` past the band's first
    output; segments run row-major, so a short last band takes the first
    ones. ``buffers`` has a zeroed row of at least ``sw·band·width + lanes``
    values per thread.
    """
    batch, channels, depth = x.shape[:3]
    out_h, out_w = y.shape[3], y.shape[4]
    per_row = seg_base.shape[0] // band_rows
    band = stride_h * (band_rows - 1) + reach + 1
    count = tap_off.shape[0]
    for p in prange(batch * channels * depth):
        c = (p // depth) % channels
        buf = buffers[numba.get_thread_id()]
        start = simd.splat(bias[c])
        for oh0 in range(0, out_h, band_rows):
            rows_out = min(band_rows, out_h - oh0)
            rows_in = stride_h * (rows_out - 1) + reach + 1
            _phase_planes(x, p, stride_h * oh0, rows_in, row_source, col_first, stride_w, band,
                          width, buf)  # fmt: skip
            out = (p * out_h + oh0) * out_w
            segments = rows_out * per_row
            last = segments - 1
            for s in range(0, segments, BLOCK):
                # A short last block repeats the last segment: the same sums, stored twice.
                b0, b1 = seg_base[min(s, last)], seg_base[min(s + 1, last)]
                b2, b3 = seg_base[min(s + 2, last)], seg_base[min(s + 3, last)]
                b4, b5 = seg_base[min(s + 4, last)], seg_base[min(s + 5, last)]
                b6, b7 = seg_base[min(s + 6, last)], seg_base[min(s + 7, last)]
                a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = start
                for t in range(count):
                    k = taps[c, t]
                    o = tap_off[t]
                    a0 = simd.fma(a0, simd.load(buf, b0 + o), k)
                    a1 = simd.fma(a1, simd.load(buf, b1 + o), k)
                    a2 = simd.fma(a2, simd.load(buf, b2 + o), k)
                    a3 = simd.fma(a3, simd.load(buf, b3 + o), k)
                    a4 = simd.fma(a4, simd.load(buf, b4 + o), k)
                    a5 = simd.fma(a5, simd.load(buf, b5 + o), k)
                    a6 = simd.fma(a6, simd.load(buf, b6 + o), k)
                    a7 = simd.fma(a7, simd.load(buf, b7 + o), k)
                i = min(s, last)
                simd.masked_store(y, out + seg_out[i], a0, seg_count[i], 1)
                i = min(s + 1, last)
                simd.masked_store(y, out + seg_out[i], a1, seg_count[i], 1)
                i = min(s + 2, last)
                simd.masked_store(y, out + seg_out[i], a2, seg_count[i], 1)
                i = min(s + 3, last)
                simd.masked_store(y, out + seg_out[i], a3, seg_count[i], 1)
                i = min(s + 4, last)
                simd.masked_store(y, out + seg_out[i], a4, seg_count[i], 1)
                i = min(s + 5, last)
                simd.masked_store(y, out + seg_out[i], a5, seg_count[i], 1)
                i = min(s + 6, last)
                simd.masked_store(y, out + seg_out[i], a6, seg_count[i], 1)
                i = min(s + 7, last)
                simd.masked_store(y, out + seg_out[i], a7, seg_count[i], 1)


@njit(inline="always", **KERNEL_OPTIONS)
def _store_segment(gx, at, value, count, stride_w):  # pragma: no cover
    """Lane ``j < count`` of ``value`` to ``gx.flat[at + stride_w·j]`` (a W phase's columns)."""
    if stride_w == 1:
        simd.masked_store(gx, at, value, count, 1)
        return
    half = simd.lanes(gx) // 2
    simd.masked_store(gx, at, simd.spread_low(value), 2 * min(count, half) - 1, 2)
    if count > half:
        simd.masked_store(gx, at + 2 * half, simd.spread_high(value), 2 * (count - half) - 1, 2)


@njit(parallel=True, **KERNEL_OPTIONS)
def rows_input_grad(gy, grad_rows, margin_left, width, stride_w, seg_base, seg_out, seg_count,
                    seg_class, class_taps, tap_index, tap_off, taps, gx,
                    buffers):  # fmt: skip  # pragma: no cover
    """``gx`` of a zero-padded layer: each input position gathers its windows' ``gy``.

    ``gy`` is ``(N, C, D, OH, OW)`` and ``gx`` ``(N, C, D, H, W)``, both
    C-contiguous. Each ``gy`` plane is copied into a zero-framed plane of
    ``len(grad_rows)`` rows of ``width`` (row ``i`` is ``gy`` row
    ``grad_rows[i]``, ``-1`` a zero row; column ``m`` is ``gy`` column ``m -
    margin_left``). Input row ``h`` and W phase ``P`` (columns ``sw·j + P -
    pl``) gather from the taps of their *class*: the taps of phase ``P``
    whose rows ``kh·dh`` share ``h + pt``'s residue mod ``sh``. Segment
    ``s`` (a vector of ``j``) of class ``seg_class[s]`` sums ``taps[c,
    tap_index[t]]`` times slot ``seg_base[s] + tap_off[t] + lane`` over
    the class's taps ``class_taps[k] ≤ t < class_taps[k + 1]`` and stores
    its first ``seg_count[s]`` lanes from ``seg_out[s]`` on, every
    ``sw``-th value. Each class's segments come in whole blocks of 8 (the
    last ones repeated).
    """
    batch, channels, depth, out_h, out_w = gy.shape
    plane_size = gx.shape[3] * gx.shape[4]
    rows = grad_rows.shape[0]
    zero = simd.zero(gx)
    for p in prange(batch * channels * depth):
        c = (p // depth) % channels
        buf = buffers[numba.get_thread_id()]
        copy_row_vectors(gy, p * out_h, 0, rows, grad_rows, -margin_left, 1, out_w, width, buf, 0)
        out = p * plane_size
        for s in range(0, seg_base.shape[0], BLOCK):
            k = seg_class[s]
            b0, b1, b2, b3 = seg_base[s], seg_base[s + 1], seg_base[s + 2], seg_base[s + 3]
            b4, b5, b6, b7 = seg_base[s + 4], seg_base[s + 5], seg_base[s + 6], seg_base[s + 7]
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = zero
            for t in range(class_taps[k], class_taps[k + 1]):
                w = taps[c, tap_index[t]]
                o = tap_off[t]
                a0 = simd.fma(a0, simd.load(buf, b0 + o), w)
                a1 = simd.fma(a1, simd.load(buf, b1 + o), w)
                a2 = simd.fma(a2, simd.load(buf, b2 + o), w)
                a3 = simd.fma(a3, simd.load(buf, b3 + o), w)
                a4 = simd.fma(a4, simd.load(buf, b4 + o), w)
                a5 = simd.fma(a5, simd.load(buf, b5 + o), w)
                a6 = simd.fma(a6, simd.load(buf, b6 + o), w)
                a7 = simd.fma(a7, simd.load(buf, b7 + o), w)
            _store_segment(gx, out + seg_out[s], a0, seg_count[s], stride_w)
            _store_segment(gx, out + seg_out[s + 1], a1, seg_count[s + 1], stride_w)
            _store_segment(gx, out + seg_out[s + 2], a2, seg_count[s + 2], stride_w)
            _store_segment(gx, out + seg_out[s + 3], a3, seg_count[s + 3], stride_w)
            _store_segment(gx, out + seg_out[s + 4], a4, seg_count[s + 4], stride_w)
            _store_segment(gx, out + seg_out[s + 5], a5, seg_count[s + 5], stride_w)
            _store_segment(gx, out + seg_out[s + 6], a6, seg_count[s + 6], stride_w)
            _store_segment(gx, out + seg_out[s + 7], a7, seg_count[s + 7], stride_w)
