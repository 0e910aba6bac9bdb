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
            row[before_w : before_w + w_n] = x_row  # the interior: one contiguous copy
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
            for k in range(w_n):
                gx_row[k] += row[before_w + k]
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
