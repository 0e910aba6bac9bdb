"""Depthwise convolution kernels (one input and one output channel per group), planar.

Arrays stay in the caller's channel-first layout: input ``x`` ``(N, C, D, H, W)``
(unpadded), output ``y`` ``(N, C, OD, OH, OW)``, weight ``w`` ``(C, KD, KH, KW)``.
Each parallel iteration owns one ``(n, c)`` plane. It first copies the plane,
padded, into a small per-thread buffer (``scratch[thread]``, ``(Dp, Hp, Wp)``):
that buffer stays in cache, and the loops over it need no bounds checks. The
padding is described per axis by ``src`` maps, as in :mod:`numconv._padding`:
padded position ``j`` reads input position ``src[j]``, or zero where it is
``-1``; ``before_w`` is the left padding along W, where the interior starts.
Then every output row is a few passes over contiguous rows, vectorised along
W, like the pooling kernels.

A channel only meets its own filter, so there is nothing for a GEMM to do;
the work is a few multiply-adds per byte: memory, not arithmetic, bounds it.
Keeping the caller's layout saves the two layout conversions the
channels-last version paid (as much time as the convolution itself).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .._config import KERNEL_OPTIONS, REDUCTION_OPTIONS


@njit(inline="always", **KERNEL_OPTIONS)
def _load_padded_plane(x, n, c, src_d, src_h, src_w, before_w, local):  # pragma: no cover
    """local[i, j, k] = x[n, c, src_d[i], src_h[j], src_w[k]] (0 where a source is -1)."""
    w_n = x.shape[4]
    wp_n = local.shape[2]
    for i in range(local.shape[0]):
        for j in range(local.shape[1]):
            row = local[i, j]
            if src_d[i] < 0 or src_h[j] < 0:
                row[:] = 0
                continue
            x_row = x[n, c, src_d[i], src_h[j]]
            interior = np.uint64(before_w)  # unsigned: no negative-index code in the copy
            for k in range(w_n):
                row[interior + np.uint64(k)] = x_row[np.uint64(k)]
            for k in range(before_w):
                row[k] = x_row[src_w[k]] if src_w[k] >= 0 else 0
            for k in range(before_w + w_n, wp_n):
                row[k] = x_row[src_w[k]] if src_w[k] >= 0 else 0


@njit(inline="always", **KERNEL_OPTIONS)
def _fold_padded_plane(local, gx, n, c, src_d, src_h, src_w, before_w):  # pragma: no cover
    """Adjoint of :func:`_load_padded_plane`: gx[n, c] = Σ of local over each source."""
    w_n = gx.shape[4]
    wp_n = local.shape[2]
    gx[n, c] = 0
    for i in range(local.shape[0]):
        for j in range(local.shape[1]):
            if src_d[i] < 0 or src_h[j] < 0:
                continue
            row = local[i, j]
            gx_row = gx[n, c, src_d[i], src_h[j]]  # reflect/circular pads revisit rows: add
            interior = np.uint64(before_w)
            for k in range(w_n):
                gx_row[np.uint64(k)] += row[interior + np.uint64(k)]
            for k in range(before_w):
                if src_w[k] >= 0:
                    gx_row[src_w[k]] += row[k]
            for k in range(before_w + w_n, wp_n):
                if src_w[k] >= 0:
                    gx_row[src_w[k]] += row[k]


@njit(inline="always", **KERNEL_OPTIONS)
def _three_taps(x_row, y_row, count, stride, dilation, w0, w1, w2):  # pragma: no cover
    for o in range(count):
        i = np.uint64(o * stride)  # unsigned: no wraparound code to block vectors
        step = np.uint64(dilation)
        y_row[np.uint64(o)] += w0 * x_row[i] + w1 * x_row[i + step] + w2 * x_row[i + 2 * step]


@njit(inline="always", **KERNEL_OPTIONS)
def _add_taps(x_row, y_row, w_row, count, stride, dilation):  # pragma: no cover
    """y_row[o] += Σ_e w_row[e] · x_row[o·stride + e·dilation] for o < count.

    Three taps, stride 1 or 2 and no dilation (nearly every depthwise layer)
    get compile-time constants and one pass; other windows a pass per tap.
    """
    if w_row.shape[0] == 3 and dilation == 1 and stride == 1:
        _three_taps(x_row, y_row, count, 1, 1, w_row[0], w_row[1], w_row[2])
    elif w_row.shape[0] == 3 and dilation == 1 and stride == 2:
        _three_taps(x_row, y_row, count, 2, 1, w_row[0], w_row[1], w_row[2])
    else:
        for e in range(w_row.shape[0]):
            wv = w_row[e]
            for o in range(count):
                y_row[np.uint64(o)] += wv * x_row[np.uint64(o * stride + e * dilation)]


@njit(parallel=True, **KERNEL_OPTIONS)
def depthwise_forward(x, src_d, src_h, src_w, before_w, w, bias, y, stride, dilation,
                      scratch):  # fmt: skip  # pragma: no cover
    """y[n, c, o] = bias[c] + Σ_k xp[n, c, o·s + k·d] · w[c, k] (xp: the padded plane)."""
    n_batch, c_n, od_n, oh_n, ow_n = y.shape
    _, kd_n, kh_n, _ = w.shape
    sd, sh, sw = stride
    dd, dh, dw = dilation
    for plane in prange(n_batch * c_n):
        n = plane // c_n
        c = plane % c_n
        local = scratch[numba.get_thread_id()]
        _load_padded_plane(x, n, c, src_d, src_h, src_w, before_w, local)
        for od in range(od_n):
            for oh in range(oh_n):
                y_row = y[n, c, od, oh]
                y_row[:] = bias[c]
                for a in range(kd_n):
                    for b in range(kh_n):
                        _add_taps(local[od * sd + a * dd, oh * sh + b * dh], y_row, w[c, a, b],
                                  ow_n, sw, dw)  # fmt: skip


@njit(parallel=True, **KERNEL_OPTIONS)
def depthwise_input_grad(gy, src_d, src_h, src_w, before_w, w, gx, stride, dilation,
                         scratch):  # fmt: skip  # pragma: no cover
    """gx = adjoint of padding applied to gxp[n, c, o·s + k·d] += gy[n, c, o] · w[c, k].

    Each plane's padded gradient is built in the thread's buffer, one pass per
    tap (each pass writes distinct positions, so it vectorises), then folded
    back onto the input positions the padding read.
    """
    n_batch, c_n, od_n, oh_n, ow_n = gy.shape
    _, kd_n, kh_n, kw_n = w.shape
    sd, sh, sw = stride
    dd, dh, dw = dilation
    for plane in prange(n_batch * c_n):
        n = plane // c_n
        c = plane % c_n
        local = scratch[numba.get_thread_id()]
        local[:] = 0
        for od in range(od_n):
            for oh in range(oh_n):
                g_row = gy[n, c, od, oh]
                for a in range(kd_n):
                    for b in range(kh_n):
                        gxp_row = local[od * sd + a * dd, oh * sh + b * dh]
                        for e in range(kw_n):
                            wv = w[c, a, b, e]
                            for o in range(ow_n):
                                gxp_row[np.uint64(o * sw + e * dw)] += wv * g_row[np.uint64(o)]
        _fold_padded_plane(local, gx, n, c, src_d, src_h, src_w, before_w)


@njit(parallel=True, **REDUCTION_OPTIONS)
def depthwise_weight_grad(x, src_d, src_h, src_w, before_w, gy, partial, stride, dilation,
                          scratch):  # fmt: skip  # pragma: no cover
    """partial[n, c, k] = Σ_o xp[n, c, o·s + k·d] · gy[n, c, o]; the caller sums over n.

    One partial per plane, so no two threads add into one weight; the sums
    over a row run in vector partial sums (``reassoc``, fixed order).
    """
    n_batch, c_n, od_n, oh_n, ow_n = gy.shape
    _, _, kd_n, kh_n, kw_n = partial.shape
    sd, sh, sw = stride
    dd, dh, dw = dilation
    for plane in prange(n_batch * c_n):
        n = plane // c_n
        c = plane % c_n
        local = scratch[numba.get_thread_id()]
        _load_padded_plane(x, n, c, src_d, src_h, src_w, before_w, local)
        pw = partial[n, c]
        pw[:] = 0
        for od in range(od_n):
            for oh in range(oh_n):
                g_row = gy[n, c, od, oh]
                for a in range(kd_n):
                    for b in range(kh_n):
                        x_row = local[od * sd + a * dd, oh * sh + b * dh]
                        for e in range(kw_n):
                            total = x.dtype.type(0)
                            for o in range(ow_n):
                                total += x_row[np.uint64(o * sw + e * dw)] * g_row[np.uint64(o)]
                            pw[a, b, e] += total


# --------------------------------------------------------------------------- stride 1
# With stride 1, output (od, oh, ow) reads padded positions (od + a·dd, oh + b·dh,
# ow + e·dw). In the padded plane's flat index that is q + offset[t], with
# q = (od·Hp + oh)·Wp + ow and offset[t] = (a·dd·Hp + b·dh)·Wp + e·dw. So a whole
# plane is one contiguous loop over q instead of OH rows of OW (28-element rows
# spent more time entering and leaving loops than computing). The loop also
# computes Wp − OW junk values at the end of each row; they are never copied out.


@njit(inline="always", **KERNEL_OPTIONS)
def _flat_correlate(src, dst, offsets, taps, count):  # pragma: no cover
    """dst[q] = Σ_t taps[t] · src[q + offsets[t]] for q < count.

    Nine taps (3×3, the usual depthwise filter) run as one pass with every
    tap in a register; other counts as a pass per tap.
    """
    if offsets.shape[0] == 9:
        o0, o1, o2 = np.uint64(offsets[0]), np.uint64(offsets[1]), np.uint64(offsets[2])
        o3, o4, o5 = np.uint64(offsets[3]), np.uint64(offsets[4]), np.uint64(offsets[5])
        o6, o7, o8 = np.uint64(offsets[6]), np.uint64(offsets[7]), np.uint64(offsets[8])
        w0, w1, w2, w3, w4 = taps[0], taps[1], taps[2], taps[3], taps[4]
        w5, w6, w7, w8 = taps[5], taps[6], taps[7], taps[8]
        for i in range(count):
            q = np.uint64(i)
            dst[q] = (
                w0 * src[q + o0] + w1 * src[q + o1] + w2 * src[q + o2]
                + w3 * src[q + o3] + w4 * src[q + o4] + w5 * src[q + o5]
                + w6 * src[q + o6] + w7 * src[q + o7] + w8 * src[q + o8]
            )  # fmt: skip
        return
    dst[:count] = 0
    for t in range(offsets.shape[0]):
        offset = np.uint64(offsets[t])
        tap = taps[t]
        for i in range(count):
            q = np.uint64(i)
            dst[q] += tap * src[q + offset]


@njit(inline="always", **KERNEL_OPTIONS)
def _flat_start(od, oh, hp, wp):  # pragma: no cover
    """Flat index of output row (od, oh) in the padded plane's coordinates."""
    return (od * hp + oh) * wp


@njit(parallel=True, **KERNEL_OPTIONS)
def depthwise_forward_flat(x, src_d, src_h, src_w, before_w, offsets, w, bias, y, scratch,
                           rows):  # fmt: skip  # pragma: no cover
    """Stride-1 :func:`depthwise_forward`; ``w`` is ``(C, taps)`` in ``offsets``' order.

    ``rows[thread]`` holds the flat result before its valid part is copied out.
    """
    n_batch, c_n, od_n, oh_n, ow_n = y.shape
    _, dp, hp, wp = scratch.shape
    count = _flat_start(od_n - 1, oh_n - 1, hp, wp) + ow_n
    for plane in prange(n_batch * c_n):
        n = plane // c_n
        c = plane % c_n
        thread = numba.get_thread_id()
        local = scratch[thread]
        _load_padded_plane(x, n, c, src_d, src_h, src_w, before_w, local)
        flat = rows[thread]
        _flat_correlate(local.reshape(dp * hp * wp), flat, offsets, w[c], count)
        # The valid part of each row, with the bias. Unsigned indices into a flat
        # view of the plane: with signed ones this copy took 0.44 of 1.0 ms
        # (dw3x3), with these 0.12 (LLVM drops the negative-index code).
        b = bias[c]
        y_plane = y[n, c].reshape(od_n * oh_n * ow_n)
        j = np.uint64(0)
        for od in range(od_n):
            for oh in range(oh_n):
                start = np.uint64(_flat_start(od, oh, hp, wp))
                for ow in range(ow_n):
                    y_plane[j + np.uint64(ow)] = flat[start + np.uint64(ow)] + b
                j += np.uint64(ow_n)


@njit(inline="always", **KERNEL_OPTIONS)
def _place_flat(g, n, c, flat, first, hp, wp):  # pragma: no cover
    """flat[first + q] = g[n, c] at flat output index q; 0 everywhere else."""
    _, _, od_n, oh_n, ow_n = g.shape
    flat[:] = 0
    for od in range(od_n):
        for oh in range(oh_n):
            start = np.uint64(first + _flat_start(od, oh, hp, wp))
            g_row = g[n, c, od, oh]
            for ow in range(ow_n):
                flat[start + np.uint64(ow)] = g_row[np.uint64(ow)]


@njit(parallel=True, **KERNEL_OPTIONS)
def depthwise_input_grad_flat(gy, src_d, src_h, src_w, before_w, offsets, w, gx, scratch,
                              rows):  # fmt: skip  # pragma: no cover
    """Stride-1 :func:`depthwise_input_grad`: gxp[p] = Σ_t w[t] · gyq[p − offsets[t]].

    ``gyq`` is gy at its flat output indices (0 in the junk columns), placed
    ``offsets[-1]`` (the largest) into ``rows[thread]`` so that every read is
    in bounds: then ``gxp`` is a flat correlation with the offsets reversed.
    """
    _, c_n, _, _, _ = gy.shape
    n_batch = gy.shape[0]
    _, dp, hp, wp = scratch.shape
    last = offsets[offsets.shape[0] - 1]
    reversed_offsets = last - offsets
    for plane in prange(n_batch * c_n):
        n = plane // c_n
        c = plane % c_n
        thread = numba.get_thread_id()
        local = scratch[thread]
        placed = rows[thread]
        _place_flat(gy, n, c, placed, last, hp, wp)
        _flat_correlate(placed, local.reshape(dp * hp * wp), reversed_offsets, w[c], dp * hp * wp)
        _fold_padded_plane(local, gx, n, c, src_d, src_h, src_w, before_w)


@njit(parallel=True, **REDUCTION_OPTIONS)
def depthwise_weight_grad_flat(x, src_d, src_h, src_w, before_w, offsets, gy, partial, scratch,
                               rows):  # fmt: skip  # pragma: no cover
    """Stride-1 :func:`depthwise_weight_grad`: partial[n, c, t] = Σ_q xp[q + offsets[t]] · gyq[q].

    ``gyq`` is gy at its flat output indices, 0 in the junk columns, so the
    junk values of ``xp`` there add nothing.
    """
    n_batch, c_n, od_n, oh_n, ow_n = gy.shape
    _, dp, hp, wp = scratch.shape
    count = _flat_start(od_n - 1, oh_n - 1, hp, wp) + ow_n
    for plane in prange(n_batch * c_n):
        n = plane // c_n
        c = plane % c_n
        thread = numba.get_thread_id()
        local = scratch[thread]
        _load_padded_plane(x, n, c, src_d, src_h, src_w, before_w, local)
        flat = local.reshape(dp * hp * wp)
        placed = rows[thread]
        _place_flat(gy, n, c, placed, 0, hp, wp)
        _flat_dots(flat, placed, offsets, partial[n, c], count)


@njit(inline="always", **REDUCTION_OPTIONS)
def _flat_dots(src, g, offsets, out, count):  # pragma: no cover
    """out[t] = Σ_q src[q + offsets[t]] · g[q] for q < count.

    Nine taps share one pass (nine vector partial sums, g loaded once);
    other counts take a pass per tap.
    """
    zero = src.dtype.type(0)
    if offsets.shape[0] == 9:
        o0, o1, o2 = np.uint64(offsets[0]), np.uint64(offsets[1]), np.uint64(offsets[2])
        o3, o4, o5 = np.uint64(offsets[3]), np.uint64(offsets[4]), np.uint64(offsets[5])
        o6, o7, o8 = np.uint64(offsets[6]), np.uint64(offsets[7]), np.uint64(offsets[8])
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = zero
        for i in range(count):
            q = np.uint64(i)
            gq = g[q]
            s0 += src[q + o0] * gq
            s1 += src[q + o1] * gq
            s2 += src[q + o2] * gq
            s3 += src[q + o3] * gq
            s4 += src[q + o4] * gq
            s5 += src[q + o5] * gq
            s6 += src[q + o6] * gq
            s7 += src[q + o7] * gq
            s8 += src[q + o8] * gq
        out[0], out[1], out[2], out[3], out[4] = s0, s1, s2, s3, s4
        out[5], out[6], out[7], out[8] = s5, s6, s7, s8
        return
    for t in range(offsets.shape[0]):
        offset = np.uint64(offsets[t])
        total = zero
        for i in range(count):
            q = np.uint64(i)
            total += src[q + offset] * g[q]
        out[t] = total
