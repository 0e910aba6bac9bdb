"""Column (im2col) tiles for the GEMM algorithm, on the channels-last layout.

A tile is a run of whole output rows ``row0 .. row0 + rows``, where an output
row is one ``(n, od, oh)`` and holds ``OW`` positions. Its column matrix has
one row per output position and, per window tap ``(kd, kh, kw)`` in that
order, the ``cgi`` input channels of group ``g`` the tap reads:

    cols[p, ((kd·KH + kh)·KW + kw)·cgi + ci]
        = xp[n, od·sd + kd·dd, oh·sh + kh·dh, ow·sw + kw·dw, g·cgi + ci]

with ``p = (row − row0)·OW + ow``. Each tap's slice is a contiguous copy of a
contiguous channel run, which is what lets these loops vectorise. No
validation here: the caller's plan keeps every index in bounds.

The kernels are serial and release the GIL: the GEMM algorithm runs one per
worker thread, each on its own tiles, next to single-threaded BLAS calls (see
:mod:`numconv._algorithms.gemm` for why not Numba's thread pool).
"""

from __future__ import annotations

from numba import njit

from .._config import KERNEL_OPTIONS


@njit(**KERNEL_OPTIONS)
def gather_columns(xp, cols, row0, g, kernel, stride, dilation, out):  # pragma: no cover
    """Fill ``cols`` (``rows·OW × taps·cgi``) from the padded input ``xp``."""
    kd_n, kh_n, kw_n = kernel
    sd, sh, sw = stride
    dd, dh, dw = dilation
    od_n, oh_n, ow_n = out
    cgi = cols.shape[1] // (kd_n * kh_n * kw_n)
    c0 = g * cgi
    # With every channel and undilated W taps, a window row's KW taps lie side
    # by side in memory: one copy of KW·C values instead of KW copies of C.
    run = kw_n * cgi if (dw == 1 and cgi == xp.shape[4]) else 0
    for r in range(cols.shape[0] // ow_n):
        row = row0 + r
        n = row // (od_n * oh_n)
        od = (row // oh_n) % od_n
        oh = row % oh_n
        for ow in range(ow_n):
            dst = cols[r * ow_n + ow]
            t = 0
            for kd in range(kd_n):
                for kh in range(kh_n):
                    src_row = xp[n, od * sd + kd * dd, oh * sh + kh * dh]
                    if run:
                        src = src_row[ow * sw : ow * sw + kw_n].reshape(run)
                        dst[t : t + run] = src
                        t += run
                        continue
                    for kw in range(kw_n):
                        src = src_row[ow * sw + kw * dw]
                        for ci in range(cgi):
                            dst[t + ci] = src[c0 + ci]
                        t += cgi


@njit(**KERNEL_OPTIONS)
def scatter_columns(cols, gxp, row0, g, kernel, stride, dilation, out):  # pragma: no cover
    """Add ``cols`` back where :func:`gather_columns` read it: ``gxp`` += col2im(cols).

    Gather form: each padded input row ``(n, id, ih)`` of the tile's images
    collects, in a fixed tap order, the column entries of the tile's positions
    that read it.
    """
    kd_n, kh_n, kw_n = kernel
    sd, sh, sw = stride
    dd, dh, dw = dilation
    od_n, oh_n, ow_n = out
    _, dp_n, hp_n, wp_n, _ = gxp.shape
    cgi = cols.shape[1] // (kd_n * kh_n * kw_n)
    c0 = g * cgi
    rows = cols.shape[0] // ow_n
    # The padded input rows of the images the tile touches.
    n_first = row0 // (od_n * oh_n)
    n_last = (row0 + rows - 1) // (od_n * oh_n)
    for in_row in range((n_last - n_first + 1) * dp_n * hp_n):
        n = n_first + in_row // (dp_n * hp_n)
        i_d = (in_row // hp_n) % dp_n
        i_h = in_row % hp_n
        target_row = gxp[n, i_d, i_h]
        for kd in range(kd_n):
            td = i_d - kd * dd
            if td < 0 or td % sd != 0 or td // sd >= od_n:
                continue
            for kh in range(kh_n):
                th = i_h - kh * dh
                if th < 0 or th % sh != 0 or th // sh >= oh_n:
                    continue
                r = (n * od_n + td // sd) * oh_n + th // sh - row0
                if r < 0 or r >= rows:
                    continue
                t0 = (kd * kh_n + kh) * kw_n
                for i_w in range(wp_n):
                    target = target_row[i_w]
                    for kw in range(kw_n):
                        tw = i_w - kw * dw
                        if tw < 0 or tw % sw != 0 or tw // sw >= ow_n:
                            continue
                        src = cols[r * ow_n + tw // sw]
                        t = (t0 + kw) * cgi
                        for ci in range(cgi):
                            target[c0 + ci] += src[t + ci]
