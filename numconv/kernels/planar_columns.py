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

from numba import njit

from .._config import KERNEL_OPTIONS
from . import simd


@njit(inline="always", **KERNEL_OPTIONS)
def _window_value(r, kernel):  # pragma: no cover
    """Column row ``r`` -> ``(ci, kd, kh, kw)``."""
    kd_n, kh_n, kw_n = kernel
    taps = kd_n * kh_n * kw_n
    t = r % taps
    return r // taps, t // (kh_n * kw_n), (t // kw_n) % kh_n, t % kw_n


@njit(inline="always", **KERNEL_OPTIONS)
def _copy_run(src, read, step, dst, write, run):  # pragma: no cover
    """``dst.flat[write + t] = src.flat[read + t·step]`` for ``t < run``.

    Steps of 1 and 2 go in masked vectors (2 through an even-lane shuffle of
    two loads): runs are often one output row of 7-56 values, too short for
    LLVM's vector loop, and one value at a time a 14-value run took ~8 ns
    (docs/performance.md §42).
    """
    lanes = simd.lanes(dst)
    if step == 1:
        for t0 in range(0, run, lanes):
            count = min(lanes, run - t0)
            simd.masked_store(dst, write + t0, simd.masked_load(src, read + t0, 0, count), count, 1)
    elif step == 2:
        for t0 in range(0, run, lanes):
            count = min(lanes, run - t0)
            at, span = read + 2 * t0, 2 * count - 1  # the values the run's lanes read
            low = simd.masked_load(src, at, 0, span)
            high = simd.masked_load(src, at + lanes, -lanes, span - lanes)
            simd.masked_store(dst, write + t0, simd.even_lanes(low, high), count, 1)
    else:
        for t in range(run):
            dst.flat[write + t] = src.flat[read + t * step]


@njit(inline="always", **KERNEL_OPTIONS)
def _add_run(src, read, dst, write, step, run):  # pragma: no cover
    """``dst.flat[write + t·step] += src.flat[read + t]`` for ``t < run``, as :func:`_copy_run`.

    The vector adds are ``fma(a, b, 1)``, one rounding of ``a + b``: the same
    sums, bit for bit, as scalar adds in the same order.
    """
    lanes = simd.lanes(dst)
    one = dst.dtype.type(1)
    if step == 1:
        for t0 in range(0, run, lanes):
            count = min(lanes, run - t0)
            total = simd.fma(
                simd.masked_load(dst, write + t0, 0, count),
                simd.masked_load(src, read + t0, 0, count),
                one,
            )
            simd.masked_store(dst, write + t0, total, count, 1)
    elif step == 2:
        for t0 in range(0, run, lanes):
            count = min(lanes, run - t0)
            at, span = write + 2 * t0, 2 * count - 1  # the values the run's lanes write
            values = simd.masked_load(src, read + t0, 0, count)
            low = simd.fma(simd.masked_load(dst, at, 0, span), simd.spread_low(values), one)
            high = simd.fma(
                simd.masked_load(dst, at + lanes, -lanes, span - lanes),
                simd.spread_high(values),
                one,
            )
            simd.masked_store(dst, at, low, span, 2)  # the even lanes: the run's own values
            simd.masked_store(dst, at + lanes, high, span - lanes, 2)
    else:
        for t in range(run):
            dst.flat[write + t * step] += src.flat[read + t]


@njit(inline="always", **KERNEL_OPTIONS)
def _move_runs(
    image, cols, n0, p0, kernel, stride, dilation, out, add_back, rows_outer
):  # pragma: no cover
    """Copy ``image`` runs into ``cols`` (gather), or add ``cols`` back into them.

    One walk for both directions: ``add_back`` is constant per call, so the
    compiler splits the loops on it. ``cols`` is ``(images, rows, m)``, or
    ``(rows, images, m)`` with ``rows_outer``. Both arrays are addressed by
    flat index, for the vector copies.
    """
    sd, sh, sw = stride
    dd, dh, dw = dilation
    _, oh_n, ow_n = out
    _, channels, in_d, in_h, in_w = image.shape
    if rows_outer:
        rows, images, m = cols.shape
    else:
        images, rows, m = cols.shape
    for i in range(images):
        for r in range(rows):
            ci, kd, kh, kw = _window_value(r, kernel)
            plane = ((n0 + i) * channels + ci) * in_d
            col = (r * images + i) * m if rows_outer else (i * rows + r) * m
            # Step through the output rows the tile covers: no division per run.
            od, oh, ow = p0 // (oh_n * ow_n), (p0 // ow_n) % oh_n, p0 % ow_n
            j = 0
            while j < m:
                run = min(ow_n - ow, m - j)
                row = ((plane + od * sd + kd * dd) * in_h + oh * sh + kh * dh) * in_w
                at = row + ow * sw + kw * dw
                if add_back:
                    _add_run(cols, col + j, image, at, sw, run)
                else:
                    _copy_run(image, at, sw, cols, col + j, run)
                j += run
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
