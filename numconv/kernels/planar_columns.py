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


@njit(inline="always", **KERNEL_OPTIONS)
def _move_runs(
    image, cols, n0, p0, kernel, stride, dilation, out, add_back, rows_outer
):  # pragma: no cover
    """Copy ``image`` runs into ``cols`` (gather), or add ``cols`` back into them.

    One walk for both directions: ``add_back`` is constant per call, so the
    compiler splits the loops on it. ``cols`` is ``(images, rows, m)``, or
    ``(rows, images, m)`` with ``rows_outer``.
    """
    sd, sh, sw = stride
    dd, dh, dw = dilation
    _, oh_n, ow_n = out
    if rows_outer:
        rows, images, m = cols.shape
    else:
        images, rows, m = cols.shape
    for i in range(images):
        for r in range(rows):
            ci, kd, kh, kw = _window_value(r, kernel)
            plane = image[n0 + i, ci]
            col = cols[r, i] if rows_outer else cols[i, r]
            # Step through the output rows the tile covers: no division per run.
            od, oh, ow = p0 // (oh_n * ow_n), (p0 // ow_n) % oh_n, p0 % ow_n
            j = 0
            while j < m:
                run = np.uint64(min(ow_n - ow, m - j))
                row = plane[od * sd + kd * dd, oh * sh + kh * dh]
                # Unsigned indices: no negative-index wrap code in the loops.
                # Stride 1 has loops of its own, so that they vectorise.
                at, step, c = np.uint64(ow * sw + kw * dw), np.uint64(sw), np.uint64(j)
                if add_back and sw == 1:
                    for t in range(run):
                        row[at + t] += col[c + t]
                elif add_back:
                    for t in range(run):
                        row[at + t * step] += col[c + t]
                elif sw == 1:
                    for t in range(run):
                        col[c + t] = row[at + t]
                else:
                    for t in range(run):
                        col[c + t] = row[at + t * step]
                j += int(run)
                ow, oh = 0, oh + 1
                if oh == oh_n:
                    oh, od = 0, od + 1


@njit(**KERNEL_OPTIONS)
def gather_planar(xp, cols, n0, p0, kernel, stride, dilation, out):  # pragma: no cover
    """Fill ``cols`` (``images × C_in·taps × m``) from the padded input ``xp``."""
    _move_runs(xp, cols, n0, p0, kernel, stride, dilation, out, False, False)


@njit(**KERNEL_OPTIONS)
def gather_planar_by_row(xp, cols, n0, p0, kernel, stride, dilation, out):  # pragma: no cover
    """:func:`gather_planar` into ``(C_in·taps, images, m)`` columns.

    Each row then holds the tile's images side by side, so one product over
    ``images·m`` columns sums a weight gradient over all of them (BLAS adds
    over its inner dimension; per-image products would need adding up).
    """
    _move_runs(xp, cols, n0, p0, kernel, stride, dilation, out, False, True)


@njit(**KERNEL_OPTIONS)
def scatter_planar(cols, gxp, n0, p0, kernel, stride, dilation, out):  # pragma: no cover
    """Add ``cols`` back where :func:`gather_planar` read it: ``gxp`` += col2im(cols).

    Within one row of ``cols`` every position reads a different input value,
    so the adds of a row never collide; rows are added in order, so the result
    is deterministic.
    """
    _move_runs(gxp, cols, n0, p0, kernel, stride, dilation, out, True, False)
