"""Column (im2col) tiles in the caller's channel-first layout, for the planar GEMM.

A tile is a run of output positions ``p0 .. p0 + m`` of one image ``n``, where
``p = (od·OH + oh)·OW + ow`` counts positions in the output's own order. Its
column matrix has one row per window value, ``(ci, kd, kh, kw)`` in the
weight's own order, and one column per position:

    cols[(ci·KD + kd)·KH·KW + kh·KW + kw, p − p0]
        = xp[n, g·cgi + ci, od·sd + kd·dd, oh·sh + kh·dh, ow·sw + kw·dw]

So a row is a copy of runs of input rows (contiguous when the W stride is 1),
the weight needs no reordering, and the product ``W @ cols`` lands directly in
the output's ``(C_out, positions)`` block. No validation here: the caller's
plan keeps every index in bounds.

Serial kernels that release the GIL, one per worker thread next to
single-threaded BLAS, as in :mod:`numconv.kernels.columns`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._config import KERNEL_OPTIONS


@njit(inline="always", **KERNEL_OPTIONS)
def _window_value(r, kernel):  # pragma: no cover
    """Column row ``r`` -> ``(ci, kd, kh, kw)``."""
    kd_n, kh_n, kw_n = kernel
    taps = kd_n * kh_n * kw_n
    t = r % taps
    return r // taps, t // (kh_n * kw_n), (t // kw_n) % kh_n, t % kw_n


@njit(**KERNEL_OPTIONS)
def gather_planar(xp, cols, n, c0, p0, kernel, stride, dilation, out):  # pragma: no cover
    """Fill ``cols`` (``cgi·taps × m``) from the padded input ``xp`` ``(N, C, Dp, Hp, Wp)``."""
    sd, sh, sw = stride
    dd, dh, dw = dilation
    _, oh_n, ow_n = out
    m = cols.shape[1]
    for r in range(cols.shape[0]):
        ci, kd, kh, kw = _window_value(r, kernel)
        plane = xp[n, c0 + ci]
        dst = cols[r]
        j, p = 0, p0
        while j < m:  # one output row's run at a time
            od, oh, ow = p // (oh_n * ow_n), (p // ow_n) % oh_n, p % ow_n
            run = min(ow_n - ow, m - j)
            src = plane[od * sd + kd * dd, oh * sh + kh * dh]
            base = ow * sw + kw * dw
            # Unsigned indices: no negative-index wrap code in the copy loop.
            for i in range(np.uint64(run)):
                dst[np.uint64(j) + i] = src[np.uint64(base) + i * np.uint64(sw)]
            j += run
            p += run


@njit(**KERNEL_OPTIONS)
def scatter_planar(cols, gxp, n, c0, p0, kernel, stride, dilation, out):  # pragma: no cover
    """Add ``cols`` back where :func:`gather_planar` read it: ``gxp`` += col2im(cols).

    Within one row of ``cols`` every position reads a different input value,
    so the adds of a row never collide; rows are added in order, so the result
    is deterministic.
    """
    sd, sh, sw = stride
    dd, dh, dw = dilation
    _, oh_n, ow_n = out
    m = cols.shape[1]
    for r in range(cols.shape[0]):
        ci, kd, kh, kw = _window_value(r, kernel)
        plane = gxp[n, c0 + ci]
        src = cols[r]
        j, p = 0, p0
        while j < m:
            od, oh, ow = p // (oh_n * ow_n), (p // ow_n) % oh_n, p % ow_n
            run = min(ow_n - ow, m - j)
            dst = plane[od * sd + kd * dd, oh * sh + kh * dh]
            base = ow * sw + kw * dw
            for i in range(np.uint64(run)):
                dst[np.uint64(base) + i * np.uint64(sw)] += src[np.uint64(j) + i]
            j += run
            p += run
