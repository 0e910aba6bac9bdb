"""Depthwise convolution kernels (one input and one output channel per group).

Layouts as in :mod:`numconv.kernels.direct`: padded input ``xp`` and output
``y`` channels-last, ``(N, D, H, W, C)``; the weight is ``wc (KD, KH, KW, C)``,
one filter per channel with the channel innermost. Each channel only meets its
own filter, so a GEMM has nothing to multiply here (one input channel per
output); instead the innermost loop runs over the contiguous channel axis of
input, weight and output alike, which LLVM vectorises. The work is a few
multiply-adds per byte loaded: memory, not arithmetic, bounds it.
"""

from __future__ import annotations

from numba import njit, prange

from .._config import KERNEL_OPTIONS


@njit(parallel=True, **KERNEL_OPTIONS)
def depthwise_forward(xp, wc, y, stride, dilation):  # pragma: no cover - compiled
    """y[n, o, c] += Σ_k xp[n, o·s + k·d, c] · wc[k, c]."""
    n_batch, od_n, oh_n, ow_n, c_n = y.shape
    kd_n, kh_n, kw_n, _ = wc.shape
    sd, sh, sw = stride
    dd, dh, dw = dilation
    for row in prange(n_batch * od_n * oh_n):  # one writer per output row
        n = row // (od_n * oh_n)
        od = (row // oh_n) % od_n
        oh = row % oh_n
        for ow in range(ow_n):
            yv = y[n, od, oh, ow]
            for kd in range(kd_n):
                for kh in range(kh_n):
                    x_row = xp[n, od * sd + kd * dd, oh * sh + kh * dh]
                    for kw in range(kw_n):
                        xv = x_row[ow * sw + kw * dw]
                        wv = wc[kd, kh, kw]
                        for c in range(c_n):
                            yv[c] += xv[c] * wv[c]


@njit(parallel=True, **KERNEL_OPTIONS)
def depthwise_input_grad(gy, wc, gxp, stride, dilation):  # pragma: no cover - compiled
    """gxp[n, i, c] += Σ gy[n, o, c] · wc[k, c] over i = o·s + k·d (gather form, race-free)."""
    n_batch, dp_n, hp_n, wp_n, c_n = gxp.shape
    _, od_n, oh_n, ow_n, _ = gy.shape
    kd_n, kh_n, kw_n, _ = wc.shape
    sd, sh, sw = stride
    dd, dh, dw = dilation
    for row in prange(n_batch * dp_n * hp_n):
        n = row // (dp_n * hp_n)
        i_d = (row // hp_n) % dp_n
        i_h = row % hp_n
        for kd in range(kd_n):
            td = i_d - kd * dd
            if td < 0 or td % sd != 0 or td // sd >= od_n:
                continue
            for kh in range(kh_n):
                th = i_h - kh * dh
                if th < 0 or th % sh != 0 or th // sh >= oh_n:
                    continue
                gy_row = gy[n, td // sd, th // sh]
                for i_w in range(wp_n):
                    gxv = gxp[n, i_d, i_h, i_w]
                    for kw in range(kw_n):
                        tw = i_w - kw * dw
                        if tw < 0 or tw % sw != 0 or tw // sw >= ow_n:
                            continue
                        gyv = gy_row[tw // sw]
                        wv = wc[kd, kh, kw]
                        for c in range(c_n):
                            gxv[c] += gyv[c] * wv[c]


@njit(parallel=True, **KERNEL_OPTIONS)
def depthwise_weight_grad(xp, gy, partial, stride, dilation):  # pragma: no cover - compiled
    """partial[t, k, c] = Σ over chunk t's output rows of xp[n, o·s + k·d, c] · gy[n, o, c].

    One partial sum per chunk (the caller sums them in order): every output
    position contributes to every weight, so threads cannot share one.
    """
    n_batch, od_n, oh_n, ow_n, c_n = gy.shape
    chunks, kd_n, kh_n, kw_n, _ = partial.shape
    sd, sh, sw = stride
    dd, dh, dw = dilation
    rows = n_batch * od_n * oh_n
    for t in prange(chunks):
        pt = partial[t]
        for row in range(t * rows // chunks, (t + 1) * rows // chunks):
            n = row // (od_n * oh_n)
            od = (row // oh_n) % od_n
            oh = row % oh_n
            for ow in range(ow_n):
                gyv = gy[n, od, oh, ow]
                for kd in range(kd_n):
                    for kh in range(kh_n):
                        x_row = xp[n, od * sd + kd * dd, oh * sh + kh * dh]
                        for kw in range(kw_n):
                            xv = x_row[ow * sw + kw * dw]
                            pv = pt[kd, kh, kw]
                            for c in range(c_n):
                                pv[c] += xv[c] * gyv[c]
