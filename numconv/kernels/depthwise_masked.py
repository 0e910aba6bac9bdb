"""Depthwise kernels for stride-1, zero-padded layers whose rows keep their width.

When an output row is as wide as an input row (``OW == W``, "same" padding
along W), output ``q = oh·W + ow`` of a plane reads input position
``q + (b·dh − ph)·W + (e·dw − pw)`` for tap ``(b, e)``: one flat offset per
tap, the same for every output. A plane is then one contiguous loop, with no
copy padded along W and no junk columns.

A read that runs off the end of a row lands on the neighbouring row, where
the padding should have given zero. ``keep[e, q]`` says whether column
``ow + e·dw − pw`` is inside the row, and the kernels *select* zero where it
is not. A select rather than a multiply by a 0/1 mask: an inf or NaN in the
neighbouring row must not leak into the result through ``0 · inf``.

Every plane of one channel (all images, all depth slices) has the same
filter, so the kernels stack several of them in a per-thread buffer, each in
a *slot* of ``rows = ph + H + pa`` rows: ``ph`` zero rows, the plane, ``pa``
zero rows. One flat loop then runs over the whole stack; the
``(KH − 1)·dh`` rows at the end of each slot are junk (they straddle two
slots) and are not copied out. Stacking matters for small planes: 7×7 planes
one at a time spent most of their time entering and leaving loops. The buffer
starts with ``pw`` zeros and ends with ``(KW − 1)·dw − pw`` more, so every
read is in bounds.

Only windows one deep (``KD == 1``) with no depth padding: each depth slice
of a 3-d input is a plane of its own.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .._config import KERNEL_OPTIONS, REDUCTION_OPTIONS


@njit(inline="always", **KERNEL_OPTIONS)
def _zero(a, start, stop):  # pragma: no cover
    for i in range(start, stop):
        a[np.uint64(i)] = 0


@njit(inline="always", **KERNEL_OPTIONS)
def _stack_planes(src, c, first, last, buf, pad_left, pad_top, rows):  # pragma: no cover
    """Planes ``first:last`` of channel ``c`` (over images, then depth) into slots of ``buf``.

    Writes every slot's zero rows, the leading zeros and the trailing ones.
    """
    _, _, d_n, h_n, w_n = src.shape
    size = h_n * w_n
    block = rows * w_n
    _zero(buf, 0, pad_left)
    for j in range(last - first):
        n = (first + j) // d_n
        d = (first + j) % d_n
        start = pad_left + j * block
        _zero(buf, start, start + pad_top * w_n)
        plane = src[n, c, d].reshape(size)
        interior = np.uint64(start + pad_top * w_n)  # unsigned: no wraparound code
        for i in range(size):
            buf[interior + np.uint64(i)] = plane[np.uint64(i)]
        _zero(buf, start + pad_top * w_n + size, start + block)
    end = pad_left + (last - first) * block
    _zero(buf, end, buf.shape[0])


@njit(inline="always", **KERNEL_OPTIONS)
def _unstack_planes(result, dst, c, first, last, rows):  # pragma: no cover
    """dst[n, c, d] = the first ``OH`` rows of each slot of ``result``: the valid outputs."""
    _, _, d_n, oh_n, w_n = dst.shape
    size = oh_n * w_n
    for j in range(last - first):
        n = (first + j) // d_n
        d = (first + j) % d_n
        plane = dst[n, c, d].reshape(size)
        start = np.uint64(j * rows * w_n)
        for i in range(size):
            plane[np.uint64(i)] = result[start + np.uint64(i)]


# Rows at least this wide take the per-tap path row by row over each tap's
# valid columns (no flags to load); narrower rows loop flat with the selects.
WIDE_ROW = 128


@njit(inline="always", **KERNEL_OPTIONS)
def _masked_correlate(src, dst, offsets, keep, taps, bias, count, kw, width,
                      pad_left):  # fmt: skip  # pragma: no cover
    """dst[q] = bias + Σ_(b, e) (taps[b, e] · src[q + offsets[b, e]] if keep[e, q] else 0).

    ``offsets`` and ``taps`` are flat in ``(b, e)`` order, ``kw`` columns a
    row. 3×3 and 5×5 windows run as one pass with every tap in a register,
    summing each column's taps before its select; narrow rows of 3 or 5 taps
    a pass per window row; other windows a pass per tap.
    """
    if offsets.shape[0] == 9 and kw == 3:
        _three_by_three(src, dst, offsets, keep, taps, bias, count)
        return
    if offsets.shape[0] == 25 and kw == 5:
        _five_by_five(src, dst, offsets, keep, taps, bias, count)
        return
    for i in range(count):
        dst[np.uint64(i)] = bias
    if width >= WIDE_ROW:
        _tap_by_tap_over_rows(src, dst, offsets, taps, count, kw, width, pad_left)
        return
    for row in range(offsets.shape[0] // kw):
        t = row * kw
        if kw == 3:
            _row_of_three(src, dst, offsets, taps, keep, t, count)
        elif kw == 5:
            _row_of_five(src, dst, offsets, taps, keep, t, count)
        else:
            for e in range(kw):
                _masked_tap(src, dst, offsets[t + e], taps[t + e], keep[e], count)


@njit(inline="always", **KERNEL_OPTIONS)
def _masked_tap(src, dst, offset, tap, column, count):  # pragma: no cover
    zero = dst.dtype.type(0)
    offset = np.uint64(offset)
    for i in range(count):
        q = np.uint64(i)
        dst[q] += tap * src[q + offset] if column[q] else zero


@njit(inline="always", **KERNEL_OPTIONS)
def _tap_by_tap_over_rows(src, dst, offsets, taps, count, kw, width, pad_left):  # pragma: no cover
    """dst[q] += taps[t] · src[q + offsets[t]] where tap ``t`` reads inside the row.

    Tap column ``e`` reads column ``ow + (offsets[e] − offsets[0]) − pad_left``
    (the first window row's offsets are ``e·dw``), inside the row for ``ow``
    in ``[pad_left − e·dw, W + pad_left − e·dw)``.
    """
    for t in range(offsets.shape[0]):
        shift = offsets[t % kw] - offsets[0]
        lo = max(0, pad_left - shift)
        hi = min(width, width + pad_left - shift)
        offset = np.uint64(offsets[t])
        tap = taps[t]
        for row_start in range(0, count, width):
            base = np.uint64(row_start)
            for ow in range(lo, hi):
                q = base + np.uint64(ow)
                dst[q] += tap * src[q + offset]


@njit(inline="always", **KERNEL_OPTIONS)
def _three_by_three(src, dst, offsets, keep, taps, bias, count):  # pragma: no cover
    """The 3×3 window in one pass: each column's three taps summed before its select."""
    zero = dst.dtype.type(0)
    o0, o1, o2 = np.uint64(offsets[0]), np.uint64(offsets[1]), np.uint64(offsets[2])
    o3, o4, o5 = np.uint64(offsets[3]), np.uint64(offsets[4]), np.uint64(offsets[5])
    o6, o7, o8 = np.uint64(offsets[6]), np.uint64(offsets[7]), np.uint64(offsets[8])
    w0, w1, w2, w3, w4 = taps[0], taps[1], taps[2], taps[3], taps[4]
    w5, w6, w7, w8 = taps[5], taps[6], taps[7], taps[8]
    keep0, keep1, keep2 = keep[0], keep[1], keep[2]
    for i in range(count):
        q = np.uint64(i)
        left = w0 * src[q + o0] + w3 * src[q + o3] + w6 * src[q + o6]
        middle = w1 * src[q + o1] + w4 * src[q + o4] + w7 * src[q + o7]
        right = w2 * src[q + o2] + w5 * src[q + o5] + w8 * src[q + o8]
        dst[q] = (
            bias
            + (left if keep0[q] else zero)
            + (middle if keep1[q] else zero)
            + (right if keep2[q] else zero)
        )


@njit(inline="always", **KERNEL_OPTIONS)
def _five_taps(src, q, o0, o1, o2, o3, o4, w0, w1, w2, w3, w4):  # pragma: no cover
    return (w0 * src[q + o0] + w1 * src[q + o1] + w2 * src[q + o2] + w3 * src[q + o3]
            + w4 * src[q + o4])  # fmt: skip


@njit(inline="always", **KERNEL_OPTIONS)
def _five_by_five(src, dst, offsets, keep, taps, bias, count):  # pragma: no cover
    """The 5×5 window in one pass: each column's five taps summed before its select.

    Every offset and tap is a scalar local, so LLVM keeps them in registers
    (a loop over the window rows inside the loop over ``q`` stayed scalar).
    """
    zero = dst.dtype.type(0)
    o = [np.uint64(offsets[t]) for t in range(25)]
    w = [taps[t] for t in range(25)]
    a0, a1, a2, a3, a4, a5, a6, a7, a8, a9 = (
        o[0],
        o[1],
        o[2],
        o[3],
        o[4],
        o[5],
        o[6],
        o[7],
        o[8],
        o[9],
    )
    a10, a11, a12, a13, a14 = o[10], o[11], o[12], o[13], o[14]
    a15, a16, a17, a18, a19 = o[15], o[16], o[17], o[18], o[19]
    a20, a21, a22, a23, a24 = o[20], o[21], o[22], o[23], o[24]
    v0, v1, v2, v3, v4, v5, v6, v7, v8, v9 = (
        w[0],
        w[1],
        w[2],
        w[3],
        w[4],
        w[5],
        w[6],
        w[7],
        w[8],
        w[9],
    )
    v10, v11, v12, v13, v14 = w[10], w[11], w[12], w[13], w[14]
    v15, v16, v17, v18, v19 = w[15], w[16], w[17], w[18], w[19]
    v20, v21, v22, v23, v24 = w[20], w[21], w[22], w[23], w[24]
    keep0, keep1, keep2, keep3, keep4 = keep[0], keep[1], keep[2], keep[3], keep[4]
    for i in range(count):
        q = np.uint64(i)
        c0 = _five_taps(src, q, a0, a5, a10, a15, a20, v0, v5, v10, v15, v20)
        c1 = _five_taps(src, q, a1, a6, a11, a16, a21, v1, v6, v11, v16, v21)
        c2 = _five_taps(src, q, a2, a7, a12, a17, a22, v2, v7, v12, v17, v22)
        c3 = _five_taps(src, q, a3, a8, a13, a18, a23, v3, v8, v13, v18, v23)
        c4 = _five_taps(src, q, a4, a9, a14, a19, a24, v4, v9, v14, v19, v24)
        dst[q] = (
            bias
            + (c0 if keep0[q] else zero)
            + (c1 if keep1[q] else zero)
            + (c2 if keep2[q] else zero)
            + (c3 if keep3[q] else zero)
            + (c4 if keep4[q] else zero)
        )


@njit(inline="always", **KERNEL_OPTIONS)
def _row_of_three(src, dst, offsets, taps, keep, t, count):  # pragma: no cover
    """dst[q] += the window row's three taps starting at flat tap ``t``, in one pass."""
    zero = dst.dtype.type(0)
    o0, o1, o2 = np.uint64(offsets[t]), np.uint64(offsets[t + 1]), np.uint64(offsets[t + 2])
    w0, w1, w2 = taps[t], taps[t + 1], taps[t + 2]
    keep0, keep1, keep2 = keep[0], keep[1], keep[2]
    for i in range(count):
        q = np.uint64(i)
        dst[q] += (
            (w0 * src[q + o0] if keep0[q] else zero)
            + (w1 * src[q + o1] if keep1[q] else zero)
            + (w2 * src[q + o2] if keep2[q] else zero)
        )


@njit(inline="always", **KERNEL_OPTIONS)
def _row_of_five(src, dst, offsets, taps, keep, t, count):  # pragma: no cover
    """dst[q] += the window row's five taps starting at flat tap ``t``, in one pass."""
    zero = dst.dtype.type(0)
    o0, o1, o2 = np.uint64(offsets[t]), np.uint64(offsets[t + 1]), np.uint64(offsets[t + 2])
    o3, o4 = np.uint64(offsets[t + 3]), np.uint64(offsets[t + 4])
    w0, w1, w2, w3, w4 = taps[t], taps[t + 1], taps[t + 2], taps[t + 3], taps[t + 4]
    keep0, keep1, keep2, keep3, keep4 = keep[0], keep[1], keep[2], keep[3], keep[4]
    for i in range(count):
        q = np.uint64(i)
        dst[q] += (
            (w0 * src[q + o0] if keep0[q] else zero)
            + (w1 * src[q + o1] if keep1[q] else zero)
            + (w2 * src[q + o2] if keep2[q] else zero)
            + (w3 * src[q + o3] if keep3[q] else zero)
            + (w4 * src[q + o4] if keep4[q] else zero)
        )


@njit(inline="always", **KERNEL_OPTIONS)
def _stack_range(item, stacks, planes, per_stack):  # pragma: no cover
    """Channel and plane range ``first:last`` of parallel item ``item``."""
    c = item // stacks
    first = (item % stacks) * per_stack
    return c, first, min(planes, first + per_stack)


@njit(parallel=True, **KERNEL_OPTIONS)
def masked_forward(src, pad_left, pad_top, rows, offsets, keep, taps, bias, dst, per_stack,
                   buffers, results):  # fmt: skip  # pragma: no cover
    """dst[n, c, d] = bias[c] + the masked correlation of src[n, c, d] with taps[c].

    ``src`` is ``(N, C, D, H, W)`` and ``dst`` ``(N, C, D, OH, W)``, both
    C-contiguous; ``taps`` is ``(C, KH·KW)`` in ``offsets``' order. Each
    parallel item is a stack of up to ``per_stack`` planes of one channel.
    """
    n_batch, c_n, d_n, _, w_n = src.shape
    oh_n = dst.shape[3]
    kw = keep.shape[0]
    planes = n_batch * d_n
    stacks = -(-planes // per_stack)
    for item in prange(c_n * stacks):
        c, first, last = _stack_range(item, stacks, planes, per_stack)
        thread = numba.get_thread_id()
        buf, result = buffers[thread], results[thread]
        _stack_planes(src, c, first, last, buf, pad_left, pad_top, rows)
        count = ((last - first - 1) * rows + oh_n) * w_n  # up to the last slot's valid rows
        if last - first == 1:  # a large plane alone: no junk rows, so straight into dst
            n, d = first // d_n, first % d_n
            out = dst[n, c, d].reshape(count)
            _masked_correlate(buf, out, offsets, keep, taps[c], bias[c], count, kw, w_n, pad_left)
            continue
        _masked_correlate(buf, result, offsets, keep, taps[c], bias[c], count, kw, w_n, pad_left)
        _unstack_planes(result, dst, c, first, last, rows)


@njit(parallel=True, **REDUCTION_OPTIONS)
def masked_weight_grad(x, pad_left, pad_top, rows, offsets, keep, gy, partial, per_stack,
                       buffers, results):  # fmt: skip  # pragma: no cover
    """partial[c, s, t] = Σ over stack ``s`` of channel ``c``: Σ_q (xbuf[q + offsets[t]]
    if keep[t % KW, q] else 0) · gybuf[q]; the caller sums over ``s`` in order.

    ``gybuf`` holds each slot's output gradient followed by zeros in the junk
    rows, so junk positions add nothing (a plane alone is read in place).
    The sums run in vector partial sums (``reassoc``, a fixed order for a
    given machine).
    """
    n_batch, c_n, d_n, _, w_n = x.shape
    oh_n = gy.shape[3]
    planes = n_batch * d_n
    stacks = -(-planes // per_stack)
    for item in prange(c_n * stacks):
        c, first, last = _stack_range(item, stacks, planes, per_stack)
        thread = numba.get_thread_id()
        buf = buffers[thread]
        _stack_planes(x, c, first, last, buf, pad_left, pad_top, rows)
        count = ((last - first - 1) * rows + oh_n) * w_n
        if last - first == 1:  # a plane alone has no junk rows: read gy where it is
            g = gy[first // d_n, c, first % d_n].reshape(count)
        else:
            g = results[thread]
            _stack_planes(gy, c, first, last, g, 0, 0, rows)
        _masked_dots(buf, g, offsets, keep, partial[c, item % stacks], count)


@njit(inline="always", **REDUCTION_OPTIONS)
def _masked_dots(src, g, offsets, keep, out, count):  # pragma: no cover
    """out[t] = Σ_q (src[q + offsets[t]] if keep[t % KW, q] else 0) · g[q] for q < count."""
    kw = keep.shape[0]
    n_taps = offsets.shape[0]
    if n_taps == 9 and kw == 3:
        _nine_masked_dots(src, g, offsets, keep, out, count)
        return
    zero = src.dtype.type(0)
    for t in range(n_taps):
        offset = np.uint64(offsets[t])
        column = keep[t % kw]
        total = zero
        for i in range(count):
            q = np.uint64(i)
            total += (src[q + offset] if column[q] else zero) * g[q]
        out[t] = total


@njit(inline="always", **REDUCTION_OPTIONS)
def _nine_masked_dots(src, g, offsets, keep, out, count):  # pragma: no cover
    """out[t] = Σ_q (src[q + offsets[t]] if keep[t % 3, q] else 0) · g[q], 3×3 taps in one pass."""
    zero = src.dtype.type(0)
    o0, o1, o2 = np.uint64(offsets[0]), np.uint64(offsets[1]), np.uint64(offsets[2])
    o3, o4, o5 = np.uint64(offsets[3]), np.uint64(offsets[4]), np.uint64(offsets[5])
    o6, o7, o8 = np.uint64(offsets[6]), np.uint64(offsets[7]), np.uint64(offsets[8])
    keep0, keep1, keep2 = keep[0], keep[1], keep[2]
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = zero
    for i in range(count):
        q = np.uint64(i)
        gq = g[q]
        k0, k1, k2 = keep0[q], keep1[q], keep2[q]
        s0 += (src[q + o0] if k0 else zero) * gq
        s1 += (src[q + o1] if k1 else zero) * gq
        s2 += (src[q + o2] if k2 else zero) * gq
        s3 += (src[q + o3] if k0 else zero) * gq
        s4 += (src[q + o4] if k1 else zero) * gq
        s5 += (src[q + o5] if k2 else zero) * gq
        s6 += (src[q + o6] if k0 else zero) * gq
        s7 += (src[q + o7] if k1 else zero) * gq
        s8 += (src[q + o8] if k2 else zero) * gq
    out[0], out[1], out[2], out[3], out[4] = s0, s1, s2, s3, s4
    out[5], out[6], out[7], out[8] = s5, s6, s7, s8
