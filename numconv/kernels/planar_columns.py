"""Column (im2col) tiles in the caller's channel-first layout, for the planar GEMM.

A tile is a run of output positions ``p0 .. p0 + m`` of the images
``n0 .. n0 + images``, where ``p = (od·OH + oh)·OW + ow`` counts positions in
the output's own order. Its column array ``(images, rows, m)`` holds, for each
image, one row per window value, ``(ci, kd, kh, kw)`` over every input
channel in the weight's own order, and one column per position:

    cols[i, (ci·KD + kd)·KH·KW + kh·KW + kw, p − p0]
        = xp[n0 + i, ci, od·sd + kd·dd, oh·sh + kh·dh, ow·sw + kw·dw]

So a row is a copy of runs of input rows (contiguous when the W stride is 1),
the weight needs no reordering, group ``g``'s rows are the ``g``-th block of
``C_in/groups · taps``, and the product ``W_g @ cols[i, block g]`` lands
directly in image ``n0 + i``'s ``(C_out, positions)`` block. No validation here: the
caller's plan keeps every index in bounds.

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
def gather_planar(xp, cols, n0, p0, kernel, stride, dilation, out):  # pragma: no cover
    """Fill ``cols`` (``images × C_in·taps × m``) from the padded input ``xp``."""
    sd, sh, sw = stride
    dd, dh, dw = dilation
    _, oh_n, ow_n = out
    images, rows, m = cols.shape
    for i in range(images):
        for r in range(rows):
            ci, kd, kh, kw = _window_value(r, kernel)
            plane = xp[n0 + i, ci]
            dst = cols[i, r]
            # Step through the output rows the tile covers: no division per run.
            od, oh, ow = p0 // (oh_n * ow_n), (p0 // ow_n) % oh_n, p0 % ow_n
            j = 0
            while j < m:
                run = min(ow_n - ow, m - j)
                src = plane[od * sd + kd * dd, oh * sh + kh * dh]
                base = ow * sw + kw * dw
                # Unsigned indices: no negative-index wrap code in the loops.
                # The stride-1 loop is its own so that it vectorises.
                if sw == 1:
                    for t in range(np.uint64(run)):
                        dst[np.uint64(j) + t] = src[np.uint64(base) + t]
                else:
                    for t in range(np.uint64(run)):
                        dst[np.uint64(j) + t] = src[np.uint64(base) + t * np.uint64(sw)]
                j += run
                ow, oh = 0, oh + 1
                if oh == oh_n:
                    oh, od = 0, od + 1


@njit(**KERNEL_OPTIONS)
def scatter_planar(cols, gxp, n0, p0, kernel, stride, dilation, out):  # pragma: no cover
    """Add ``cols`` back where :func:`gather_planar` read it: ``gxp`` += col2im(cols).

    Within one row of ``cols`` every position reads a different input value,
    so the adds of a row never collide; rows are added in order, so the result
    is deterministic.
    """
    sd, sh, sw = stride
    dd, dh, dw = dilation
    _, oh_n, ow_n = out
    images, rows, m = cols.shape
    for i in range(images):
        for r in range(rows):
            ci, kd, kh, kw = _window_value(r, kernel)
            plane = gxp[n0 + i, ci]
            src = cols[i, r]
            od, oh, ow = p0 // (oh_n * ow_n), (p0 // ow_n) % oh_n, p0 % ow_n
            j = 0
            while j < m:
                run = min(ow_n - ow, m - j)
                dst = plane[od * sd + kd * dd, oh * sh + kh * dh]
                base = ow * sw + kw * dw
                if sw == 1:  # its own loop, so that it vectorises
                    for t in range(np.uint64(run)):
                        dst[np.uint64(base) + t] += src[np.uint64(j) + t]
                else:
                    for t in range(np.uint64(run)):
                        dst[np.uint64(base) + t * np.uint64(sw)] += src[np.uint64(j) + t]
                j += run
                ow, oh = 0, oh + 1
                if oh == oh_n:
                    oh, od = 0, od + 1
