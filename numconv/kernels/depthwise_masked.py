"""Depthwise kernels for stride-1, zero-padded layers whose rows keep their width.

When an output row is as wide as an input row (``OW == W``, "same" padding
along W), output ``q = oh·W + ow`` of a plane reads input position
``q + (b·dh − ph)·W + (e·dw − pw)`` for tap ``(b, e)``: one flat offset per
tap, the same for every output. A whole plane is then one contiguous loop
written straight into ``y``: no copy padded along W, no junk columns to drop.

A read that runs off the end of a row lands on the neighbouring row, where
the padding should have given zero. ``keep[e, q]`` says whether column
``ow + e·dw − pw`` is inside the row, and the kernels *select* zero where it
is not. A select rather than a multiply by a 0/1 mask: an inf or NaN in the
neighbouring row must not leak into the result through ``0 · inf``.

Rows above and below the plane come from a per-thread buffer: ``interior``
zeros (at least ``pw``), then the plane, then zeros, so every read is in
bounds. The buffer is filled by one contiguous copy per plane; the zeros
around it are written once per ``(n, c)``.

Only 2-d (and 1-d) windows: the kernel is one deep (``KD == 1``) with no depth
padding, so each depth slice of a 3-d input is a plane of its own.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .._config import KERNEL_OPTIONS, REDUCTION_OPTIONS


@njit(inline="always", **KERNEL_OPTIONS)
def _fill_buffer(src, n, c, d, buf, interior):  # pragma: no cover
    """buf[interior : interior + H·W] = src[n, c, d], flattened (unsigned: no wraparound code)."""
    size = src.shape[3] * src.shape[4]
    plane = src[n, c, d].reshape(size)
    start = np.uint64(interior)
    for i in range(size):
        buf[start + np.uint64(i)] = plane[np.uint64(i)]


@njit(inline="always", **KERNEL_OPTIONS)
def _zero_around(buf, interior, size):  # pragma: no cover
    """Zero the buffer outside ``[interior, interior + size)``: the padding rows."""
    buf[:interior] = 0
    buf[interior + size :] = 0


@njit(inline="always", **KERNEL_OPTIONS)
def _masked_correlate(src, dst, offsets, columns, keep, taps, bias, count):  # pragma: no cover
    """dst[q] = bias + Σ_t (taps[t] · src[q + offsets[t]] if keep[columns[t], q] else 0).

    A 3×3 window (nine taps, three columns) runs as one pass with every tap
    in a register, summing each column's three taps before its select;
    other windows take a pass per tap.
    """
    zero = dst.dtype.type(0)
    if offsets.shape[0] == 9 and keep.shape[0] == 3:
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
        return
    for i in range(count):
        dst[np.uint64(i)] = bias
    for t in range(offsets.shape[0]):
        offset = np.uint64(offsets[t])
        tap = taps[t]
        column = keep[columns[t]]
        for i in range(count):
            q = np.uint64(i)
            dst[q] += tap * src[q + offset] if column[q] else zero


@njit(parallel=True, **KERNEL_OPTIONS)
def masked_forward(src, interior, offsets, columns, keep, taps, bias, dst,
                   buffers):  # fmt: skip  # pragma: no cover
    """dst[n, c, d] = bias[c] + the masked correlation of src[n, c, d] with taps[c].

    ``src`` is ``(N, C, D, H, W)`` and ``dst`` ``(N, C, D, OH, W)``, both
    C-contiguous; ``taps`` is ``(C, KH·KW)`` in ``offsets``' order.
    """
    n_batch, c_n, d_n, h_n, w_n = src.shape
    count = dst.shape[3] * dst.shape[4]
    for plane in prange(n_batch * c_n):
        n = plane // c_n
        c = plane % c_n
        buf = buffers[numba.get_thread_id()]
        _zero_around(buf, interior, h_n * w_n)
        for d in range(d_n):
            _fill_buffer(src, n, c, d, buf, interior)
            out = dst[n, c, d].reshape(count)
            _masked_correlate(buf, out, offsets, columns, keep, taps[c], bias[c], count)


@njit(parallel=True, **REDUCTION_OPTIONS)
def masked_weight_grad(x, interior, offsets, columns, keep, gy, partial,
                       buffers):  # fmt: skip  # pragma: no cover
    """partial[n, c, t] = Σ_d Σ_q (xbuf[q + offsets[t]] if keep[columns[t], q] else 0) · gy[q].

    One partial per ``(n, c)``, so no two threads add into one weight; the
    caller sums over ``n`` in a fixed order. The sums over a plane run in
    vector partial sums (``reassoc``, fixed order for a given machine).
    """
    n_batch, c_n, d_n, h_n, w_n = x.shape
    count = gy.shape[3] * gy.shape[4]
    n_taps = offsets.shape[0]
    for plane in prange(n_batch * c_n):
        n = plane // c_n
        c = plane % c_n
        buf = buffers[numba.get_thread_id()]
        _zero_around(buf, interior, h_n * w_n)
        out = partial[n, c]
        out[:] = 0
        for d in range(d_n):
            _fill_buffer(x, n, c, d, buf, interior)
            g = gy[n, c, d].reshape(count)
            if n_taps == 9 and keep.shape[0] == 3:
                _nine_masked_dots(buf, g, offsets, keep, out, count)
                continue
            for t in range(n_taps):
                offset = np.uint64(offsets[t])
                column = keep[columns[t]]
                total = x.dtype.type(0)
                for i in range(count):
                    q = np.uint64(i)
                    total += (buf[q + offset] if column[q] else x.dtype.type(0)) * g[q]
                out[t] += total


@njit(inline="always", **REDUCTION_OPTIONS)
def _nine_masked_dots(src, g, offsets, keep, out, count):  # pragma: no cover
    """out[t] += Σ_q (src[q + offsets[t]] if keep[t % 3, q] else 0) · g[q], 3×3 taps in one pass."""
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
    out[0] += s0
    out[1] += s1
    out[2] += s2
    out[3] += s3
    out[4] += s4
    out[5] += s5
    out[6] += s6
    out[7] += s7
    out[8] += s8
