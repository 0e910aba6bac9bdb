"""Pooling kernels on ``(planes, D, H, W)`` arrays, one ``(n, c)`` plane per iteration.

Arrays and ints in, results written into preallocated outputs; no validation.
Windows are described per spatial dim by small int arrays indexed by output
position, so one kernel serves regular pooling (every window the same size,
possibly dilated or hanging into padding) and adaptive pooling (windows of
varying size). Parallelising over planes keeps every backward race-free:
overlapping windows only ever add into their own plane, which one thread owns.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._config import KERNEL_OPTIONS
from . import simd


@njit(**KERNEL_OPTIONS)
def _max_at(x, p, od, oh, ow, start_d, start_h, start_w, taps_d, taps_h, taps_w,
            step_d, step_h, step_w):  # fmt: skip  # pragma: no cover
    """(max, flat index) of one window, checking every tap against the bounds."""
    _, d_n, h_n, w_n = x.shape
    best = -np.inf
    best_i = -1
    for a in range(taps_d[od]):
        i_d = start_d[od] + a * step_d
        if i_d < 0 or i_d >= d_n:
            continue
        for b in range(taps_h[oh]):
            i_h = start_h[oh] + b * step_h
            if i_h < 0 or i_h >= h_n:
                continue
            for c in range(taps_w[ow]):
                i_w = start_w[ow] + c * step_w
                if i_w < 0 or i_w >= w_n:
                    continue
                v = x[p, i_d, i_h, i_w]
                # PyTorch's rule: strictly greater keeps the first of equal maxima;
                # a NaN always wins, so NaN propagates. best_i < 0 seeds the first
                # in-bounds element, so an all −∞ window still points into the input.
                if best_i < 0 or v > best or np.isnan(v):
                    best = v
                    best_i = (i_d * h_n + i_h) * w_n + i_w
    return best, best_i


def _fold_taps(x_row, y_row, i_row, lo, hi, stride, offset, base, taps, step,
               seeded):  # fmt: skip  # pragma: no cover
    """Fold one input row's taps into the running maxima of outputs ``[lo, hi)``.

    Output ``o`` reads ``x_row[o·stride + offset + c·step]`` for ``c < taps``;
    ``base`` turns a column into a flat in-plane index. Unless ``seeded``, the
    first tap starts the running maximum instead of being compared with it.
    """
    for ow in range(lo, hi):
        # Unsigned indices spare Numba's negative-index wraparound, which would
        # otherwise keep LLVM from vectorising the loop (lo, offset >= 0 here).
        o = np.uint64(ow)
        first = ow * stride + offset
        if seeded:
            best, best_i, c0 = y_row[o], i_row[o], 0
        else:
            best, best_i, c0 = x_row[np.uint64(first)], base + first, 1
        for c in range(c0, taps):
            i_w = first + c * step
            v = x_row[np.uint64(i_w)]
            # The rule of _max_at, written without branches.
            take = (v > best) | (v != v)
            best = v if take else best
            best_i = base + i_w if take else best_i
        y_row[o] = best
        i_row[o] = best_i


# Two compilations of one loop. Inlined into the parallel kernel it runs
# scalar (LLVM does not vectorise it there) but costs no call: best on short
# rows (14 → 7 adaptive pooling: 2.4 → 0.7 ms). As a function of its own LLVM
# vectorises it, which pays from a few dozen outputs on (112² 3×3/2 max
# pooling: 10 → 6 ms). _VECTOR_ROW is where the kernel switches.
_fold_taps_inline = njit(inline="always", **KERNEL_OPTIONS)(_fold_taps)
_fold_taps_vector = njit(**KERNEL_OPTIONS)(_fold_taps)
_VECTOR_ROW = 32


@njit(inline="always", **KERNEL_OPTIONS)
def _fold_row(x_row, y_row, i_row, lo, hi, stride, offset, base, taps, step,
              seeded):  # fmt: skip  # pragma: no cover
    """:func:`_fold_taps` with compile-time stride and taps for the common windows.

    Constants let LLVM unroll the taps and use interleaved vector loads.
    """
    if hi - lo < _VECTOR_ROW:
        if step == 1 and stride == 2 and taps == 3:
            _fold_taps_inline(x_row, y_row, i_row, lo, hi, 2, offset, base, 3, 1, seeded)
        elif step == 1 and stride == 2 and taps == 2:
            _fold_taps_inline(x_row, y_row, i_row, lo, hi, 2, offset, base, 2, 1, seeded)
        elif step == 1 and stride == 1 and taps == 3:
            _fold_taps_inline(x_row, y_row, i_row, lo, hi, 1, offset, base, 3, 1, seeded)
        else:
            _fold_taps_inline(x_row, y_row, i_row, lo, hi, stride, offset, base, taps, step,
                              seeded)  # fmt: skip
    elif step == 1 and stride == 2 and taps == 3:
        _fold_taps_vector(x_row, y_row, i_row, lo, hi, 2, offset, base, 3, 1, seeded)
    elif step == 1 and stride == 2 and taps == 2:
        _fold_taps_vector(x_row, y_row, i_row, lo, hi, 2, offset, base, 2, 1, seeded)
    elif step == 1 and stride == 1 and taps == 3:
        _fold_taps_vector(x_row, y_row, i_row, lo, hi, 1, offset, base, 3, 1, seeded)
    else:
        _fold_taps_vector(x_row, y_row, i_row, lo, hi, stride, offset, base, taps, step,
                          seeded)  # fmt: skip


@njit(parallel=True, **KERNEL_OPTIONS)
def window_max(x, y, indices, start_d, start_h, start_w, taps_d, taps_h, taps_w, step_d,
               step_h, step_w, inner_lo, inner_hi, stride_w):  # fmt: skip  # pragma: no cover
    """y = max over each window's in-bounds taps; indices = flat position in the plane.

    Taps of window ``o`` along a dim are ``start[o] + t * step`` for ``t < taps[o]``;
    taps outside ``[0, n)`` are padding and act as −∞. Output columns
    ``[inner_lo, inner_hi)`` must be windows of equal size lying inside the input
    along W, ``stride_w`` apart (pass an empty range where no such segment
    exists): those run one input row at a time over the whole row segment, a
    loop without bounds checks or branches (:func:`_fold_row`).
    """
    planes, d_n, h_n, w_n = x.shape
    _, od_n, oh_n, ow_n = y.shape
    for p in prange(planes):
        for od in range(od_n):
            for oh in range(oh_n):
                for ow in range(ow_n):
                    if inner_lo <= ow < inner_hi:
                        continue  # the inner segment, below
                    best, best_i = _max_at(x, p, od, oh, ow, start_d, start_h, start_w,
                                           taps_d, taps_h, taps_w, step_d, step_h,
                                           step_w)  # fmt: skip
                    y[p, od, oh, ow] = best
                    indices[p, od, oh, ow] = best_i
                if inner_hi <= inner_lo:
                    continue
                y_row = y[p, od, oh]
                i_row = indices[p, od, oh]
                offset = start_w[inner_lo] - inner_lo * stride_w
                seeded = False
                for a in range(taps_d[od]):
                    i_d = start_d[od] + a * step_d
                    if i_d < 0 or i_d >= d_n:
                        continue
                    for b in range(taps_h[oh]):
                        i_h = start_h[oh] + b * step_h
                        if i_h < 0 or i_h >= h_n:
                            continue
                        _fold_row(x[p, i_d, i_h], y_row, i_row, inner_lo, inner_hi, stride_w,
                                  offset, (i_d * h_n + i_h) * w_n, taps_w[inner_lo], step_w,
                                  seeded)  # fmt: skip
                        seeded = True
                if not seeded:  # every tap in padding: as _max_at leaves it
                    for ow in range(inner_lo, inner_hi):
                        y_row[ow] = -np.inf
                        i_row[ow] = -1


@njit(inline="always", **KERNEL_OPTIONS)
def _add_windows(x_row, y_row, lo, hi, stride, offset, taps):  # pragma: no cover
    for ow in range(lo, hi):
        o = np.uint64(ow)  # unsigned: no wraparound code, so the loop vectorises
        total = y_row[o]
        for c in range(taps):
            total += x_row[np.uint64(ow * stride + offset + c)]
        y_row[o] = total


@njit(inline="always", **KERNEL_OPTIONS)
def _add_row(x_row, y_row, lo, hi, stride, offset, taps):  # pragma: no cover
    """y_row[o] += x_row[o·stride + offset + c] for c < taps, o in [lo, hi).

    The taps of a window are added inside the loop over windows, so one pass
    over the row serves them all (a pass per tap costs loop overhead on rows as
    short as 14 outputs). Compile-time strides and tap counts for the common
    windows let LLVM turn the loads into interleaved vector loads.
    """
    if stride == 2 and taps == 2:
        _add_windows(x_row, y_row, lo, hi, 2, offset, 2)
    elif stride == 2 and taps == 3:
        _add_windows(x_row, y_row, lo, hi, 2, offset, 3)
    elif stride == 1 and taps == 3:
        _add_windows(x_row, y_row, lo, hi, 1, offset, 3)
    else:
        _add_windows(x_row, y_row, lo, hi, stride, offset, taps)


@njit(inline="always", **KERNEL_OPTIONS)
def _spread_windows(g_row, gx_row, divisor_row, lo, hi, stride, offset, taps):  # pragma: no cover
    for ow in range(lo, hi):
        o = np.uint64(ow)
        share = g_row[o] / divisor_row[o]
        for c in range(taps):
            gx_row[np.uint64(ow * stride + offset + c)] += share


@njit(inline="always", **KERNEL_OPTIONS)
def _spread_row(g_row, gx_row, divisor_row, lo, hi, stride, offset, taps):  # pragma: no cover
    """gx_row[o·stride + offset + c] += g_row[o] / divisor_row[o]; the adjoint of _add_row."""
    if stride == 2 and taps == 2:
        _spread_windows(g_row, gx_row, divisor_row, lo, hi, 2, offset, 2)
    elif stride == 2 and taps == 3:
        _spread_windows(g_row, gx_row, divisor_row, lo, hi, 2, offset, 3)
    elif stride == 1 and taps == 3:
        _spread_windows(g_row, gx_row, divisor_row, lo, hi, 1, offset, 3)
    else:
        _spread_windows(g_row, gx_row, divisor_row, lo, hi, stride, offset, taps)


@njit(parallel=True, **KERNEL_OPTIONS)
def window_mean(x, y, lo_d, hi_d, lo_h, hi_h, lo_w, hi_w, divisor, inner_lo, inner_hi,
                stride_w):  # fmt: skip  # pragma: no cover
    """y[o] = sum of x over the window ``[lo, hi)`` per dim, divided by ``divisor[o]``.

    Columns ``[inner_lo, inner_hi)`` are equal windows ``stride_w`` apart lying
    inside the input along W: each input row adds into all of them in one pass
    without bounds checks (:func:`_add_row`). Both paths add a window's taps in
    the same order (row by row, left to right), so they agree bit for bit.
    """
    planes = x.shape[0]
    _, od_n, oh_n, ow_n = y.shape
    inner_width = max(inner_hi - inner_lo, 0)
    for p in prange(planes):
        for od in range(od_n):
            for oh in range(oh_n):
                y_row = y[p, od, oh]
                for j in range(ow_n - inner_width):
                    ow = j if j < inner_lo else j + inner_width  # border columns only
                    total = x.dtype.type(0)
                    for i_d in range(lo_d[od], hi_d[od]):
                        for i_h in range(lo_h[oh], hi_h[oh]):
                            for i_w in range(lo_w[ow], hi_w[ow]):
                                total += x[p, i_d, i_h, i_w]
                    y_row[ow] = total
                if inner_hi > inner_lo:
                    y_row[inner_lo:inner_hi] = 0
                    for i_d in range(lo_d[od], hi_d[od]):
                        for i_h in range(lo_h[oh], hi_h[oh]):
                            _add_row(x[p, i_d, i_h], y_row, inner_lo, inner_hi, stride_w,
                                     lo_w[inner_lo] - inner_lo * stride_w,
                                     hi_w[inner_lo] - lo_w[inner_lo])  # fmt: skip
                divisor_row = divisor[od, oh]
                for ow in range(ow_n):
                    y_row[np.uint64(ow)] /= divisor_row[np.uint64(ow)]


@njit(parallel=True, **KERNEL_OPTIONS)
def window_mean_backward(grad_output, grad_input, lo_d, hi_d, lo_h, hi_h, lo_w, hi_w, divisor,
                         inner_lo, inner_hi, stride_w):  # fmt: skip  # pragma: no cover
    """Adjoint of :func:`window_mean`: each window's gradient / divisor added over it.

    Each plane of ``grad_input`` is zeroed here first (see :func:`scatter`).
    """
    planes = grad_input.shape[0]
    _, od_n, oh_n, ow_n = grad_output.shape
    inner_width = max(inner_hi - inner_lo, 0)
    for p in prange(planes):
        grad_input[p, :, :, :] = 0
        for od in range(od_n):
            for oh in range(oh_n):
                for j in range(ow_n - inner_width):
                    ow = j if j < inner_lo else j + inner_width  # border columns only
                    share = grad_output[p, od, oh, ow] / divisor[od, oh, ow]
                    for i_d in range(lo_d[od], hi_d[od]):
                        for i_h in range(lo_h[oh], hi_h[oh]):
                            for i_w in range(lo_w[ow], hi_w[ow]):
                                grad_input[p, i_d, i_h, i_w] += share
                if inner_hi <= inner_lo:
                    continue
                g_row = grad_output[p, od, oh]
                divisor_row = divisor[od, oh]
                for i_d in range(lo_d[od], hi_d[od]):
                    for i_h in range(lo_h[oh], hi_h[oh]):
                        _spread_row(g_row, grad_input[p, i_d, i_h], divisor_row, inner_lo,
                                    inner_hi, stride_w, lo_w[inner_lo] - inner_lo * stride_w,
                                    hi_w[inner_lo] - lo_w[inner_lo])  # fmt: skip


# The index kernels below take caller-supplied indices, so each one checks
# every index against the plane size itself (one unsigned compare catches both
# ends) and returns how many it skipped: the caller raises when that is not 0.
# Checking here rather than in NumPy beforehand saves two passes over an int64
# array as large as the output (0.3 ms of a 1.5 ms max-pool backward).


@njit(parallel=True, **KERNEL_OPTIONS)
def scatter(values, indices, out, accumulate):  # pragma: no cover
    """out[p] = 0, then out[p, indices[p, j]] += (or =) values[p, j]; returns the skipped count.

    ``accumulate`` adds repeated indices up (max-pool backward); otherwise the
    last of them wins (max unpooling). Indices outside ``[0, plane size)`` are
    skipped. Zeroing each plane here, just before its scatter, touches the
    output once while it is in cache (and in parallel) instead of in a
    separate pass.
    """
    planes, count = values.shape
    size = np.uint64(out.shape[1])
    skipped = 0
    for p in prange(planes):
        out_row = out[p]
        out_row[:] = 0
        value_row = values[p]
        index_row = indices[p]
        outside = 0
        for j in range(count):
            i = np.uint64(index_row[j])  # a negative index wraps to a huge one
            if i < size:
                if accumulate:  # loop-invariant: LLVM compiles the loop once per branch
                    out_row[i] += value_row[j]
                else:
                    out_row[i] = value_row[j]
            else:
                outside += 1
        skipped += outside
    return skipped


@njit(parallel=True, **KERNEL_OPTIONS)
def gather(values, indices, out):  # pragma: no cover
    """out[p, j] = values[p, indices[p, j]] (0 where the index is outside the plane).

    Returns the number of indices outside the plane.
    """
    planes, count = out.shape
    size = np.uint64(values.shape[1])
    skipped = 0
    for p in prange(planes):
        out_row = out[p]
        value_row = values[p]
        index_row = indices[p]
        outside = 0
        for j in range(count):
            i = np.uint64(index_row[j])
            if i < size:
                out_row[j] = value_row[i]
            else:
                out_row[j] = 0
                outside += 1
        skipped += outside
    return skipped


# Global pooling does little work per plane, so its parallel loops run over
# blocks of planes: one iteration per plane costs more in scheduling than in
# arithmetic (measured 35 µs against 18 µs on 4096 planes of 49).
_PLANE_BLOCKS = 64


@njit(parallel=True, **KERNEL_OPTIONS)
def plane_mean(x, y):  # pragma: no cover
    """y[p] = mean of row x[p] (global average pooling on ``(planes, elements)``).

    Each row is summed in one vector of partial sums, whole vectors then a
    masked one for the tail, and the lanes are added last
    (:func:`numconv.kernels.simd.total`). A scalar loop with ``reassoc`` left
    LLVM's vector loop 32 values wide on AVX2, so a 49-value row (7×7)
    summed 17 of them one at a time: 71 µs on one Zen 3 core for 4096 rows,
    against ~18 µs to read them (docs/performance.md §43).
    """
    planes, n = x.shape
    lanes = simd.lanes(x)
    whole = n - n % lanes
    one = x.dtype.type(1)
    per_block = -(-planes // _PLANE_BLOCKS)
    for block in prange(_PLANE_BLOCKS):
        for p in range(block * per_block, min(planes, (block + 1) * per_block)):
            start = p * n
            acc = simd.masked_load(x, start + whole, 0, n - whole)
            for i in range(0, whole, lanes):
                acc = simd.fma(acc, simd.load(x, start + i), one)
            y[p] = simd.total(acc) / n


@njit(parallel=True, **KERNEL_OPTIONS)
def plane_mean_backward(grad_output, grad_input):  # pragma: no cover
    """grad_input[p, :] = grad_output[p] / n: the adjoint of :func:`plane_mean`."""
    planes, n = grad_input.shape
    per_block = -(-planes // _PLANE_BLOCKS)
    for block in prange(_PLANE_BLOCKS):
        for p in range(block * per_block, min(planes, (block + 1) * per_block)):
            share = grad_output[p] / n
            for i in range(n):
                grad_input[p, i] = share
