"""Direct convolution kernels on a channels-last layout.

Arrays and ints in, results written into preallocated outputs; no validation
(the caller's plan guarantees every index below is in bounds). Layouts:

- input ``xp``: padded ``(N, Dp, Hp, Wp, C)``, C-contiguous;
- output / output gradient ``y``: ``(N, OD, OH, OW, C_out)``;
- weight ``wt``: ``(G, KD, KH, KW, C_in/G, C_out/G)``; for the input gradient the
  last two axes are swapped so that the innermost loop is contiguous there too.

Why channels-last: the innermost loop then runs over a contiguous channel axis
of both operands, which LLVM turns into packed FMAs; an NCHW loop nest has a
runtime stride innermost and runs ~25x slower here (see PERFORMANCE.md).
Accumulation goes straight into the output row: a per-iteration scratch array
inside the ``prange`` body was measured to stay in memory and run slower.
"""

from __future__ import annotations

from numba import njit, prange

from .._config import KERNEL_OPTIONS


@njit(parallel=True, **KERNEL_OPTIONS)
def conv_forward(xp, wt, y, sd, sh, sw, dd, dh, dw):  # pragma: no cover - compiled
    """y[n, o, g·Cgo + co] += Σ_{k, ci} xp[n, o·s + k·d, g·Cgi + ci] · wt[g, k, ci, co]."""
    n_batch, od_n, oh_n, ow_n, _ = y.shape
    groups, kd_n, kh_n, kw_n, cgi, cgo = wt.shape
    # One output row (n, od, oh) per iteration: every element of y is written by
    # exactly one thread in a fixed order, so results are race-free and bitwise
    # reproducible.
    for row in prange(n_batch * od_n * oh_n):
        n = row // (od_n * oh_n)
        od = (row // oh_n) % od_n
        oh = row % oh_n
        for ow in range(ow_n):
            yv = y[n, od, oh, ow]
            for g in range(groups):
                for kd in range(kd_n):
                    for kh in range(kh_n):
                        for kw in range(kw_n):
                            xv = xp[n, od * sd + kd * dd, oh * sh + kh * dh, ow * sw + kw * dw]
                            wk = wt[g, kd, kh, kw]
                            for ci in range(cgi):
                                a = xv[g * cgi + ci]
                                for co in range(cgo):
                                    yv[g * cgo + co] += a * wk[ci, co]


@njit(parallel=True, **KERNEL_OPTIONS)
def conv_input_grad(gy, wtt, gxp, sd, sh, sw, dd, dh, dw):  # pragma: no cover - compiled
    """gxp[n, i, g·Cgi + ci] += Σ gy[n, o, g·Cgo + co] · wtt[g, k, co, ci] over i = o·s + k·d."""
    n_batch, dp_n, hp_n, wp_n, _ = gxp.shape
    _, od_n, oh_n, ow_n, _ = gy.shape
    groups, kd_n, kh_n, kw_n, cgo, cgi = wtt.shape
    # Gather form: each padded input row collects from the output positions that
    # read it, so no two iterations write the same element (a scatter over
    # output rows would race where windows overlap).
    for row in prange(n_batch * dp_n * hp_n):
        n = row // (dp_n * hp_n)
        i_d = (row // hp_n) % dp_n
        i_h = row % hp_n
        for kd in range(kd_n):
            td = i_d - kd * dd
            if td < 0 or td % sd != 0 or td // sd >= od_n:
                continue
            od = td // sd
            for kh in range(kh_n):
                th = i_h - kh * dh
                if th < 0 or th % sh != 0 or th // sh >= oh_n:
                    continue
                oh = th // sh
                for i_w in range(wp_n):
                    gxv = gxp[n, i_d, i_h, i_w]
                    for kw in range(kw_n):
                        tw = i_w - kw * dw
                        if tw < 0 or tw % sw != 0 or tw // sw >= ow_n:
                            continue
                        gyv = gy[n, od, oh, tw // sw]
                        for g in range(groups):
                            wk = wtt[g, kd, kh, kw]
                            for co in range(cgo):
                                a = gyv[g * cgo + co]
                                for ci in range(cgi):
                                    gxv[g * cgi + ci] += a * wk[co, ci]


@njit(parallel=True, **KERNEL_OPTIONS)
def conv_weight_grad(xp, gy, partial, sd, sh, sw, dd, dh, dw):  # pragma: no cover - compiled
    """partial[t, g, k, ci, co] = Σ over chunk t's rows of xp[n, o·s + k·d, ·] · gy[n, o, ·].

    The caller sums ``partial`` over ``t``.
    """
    n_batch, od_n, oh_n, ow_n, _ = gy.shape
    chunks, groups, kd_n, kh_n, kw_n, cgi, cgo = partial.shape
    rows = n_batch * od_n * oh_n
    # Every output position contributes to every weight, so threads cannot share
    # one accumulator: chunk t owns partial[t] and the chunks are reduced in a
    # fixed order afterwards (deterministic for a given chunk count).
    for t in prange(chunks):
        pt = partial[t]
        for row in range(t * rows // chunks, (t + 1) * rows // chunks):
            n = row // (od_n * oh_n)
            od = (row // oh_n) % od_n
            oh = row % oh_n
            for ow in range(ow_n):
                gyv = gy[n, od, oh, ow]
                for g in range(groups):
                    for kd in range(kd_n):
                        for kh in range(kh_n):
                            for kw in range(kw_n):
                                xv = xp[n, od * sd + kd * dd, oh * sh + kh * dh, ow * sw + kw * dw]
                                pk = pt[g, kd, kh, kw]
                                for ci in range(cgi):
                                    a = xv[g * cgi + ci]
                                    for co in range(cgo):
                                        pk[ci, co] += a * gyv[g * cgo + co]
