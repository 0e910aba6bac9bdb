"""Phase split and merge: a grid's residue classes stacked along a leading axis.

With dilation ``d = (dd, dh, dw)``, position ``q`` along an axis has residue
``r = q mod d`` and index ``q // d`` in its phase (sub-grid). A grid of shape
``(N, C, D, H, W)`` becomes ``(P, N, C, PD, PH, PW)`` with ``P = dd·dh·dw``
phases, phase ``p = (rd·dh + rh)·dw + rw``, all of one shape (the largest);
positions a shorter phase lacks are zeros. Used by
:mod:`numconv._algorithms.polyphase` to run a dilated layer's phases as one
undilated call with ``P·N`` images.

Both kernels are memory-bound copies of whole planes: one side of each
inner loop is contiguous, the other has stride ``dw``. They are serial and
release the GIL; a call copies planes ``[lo, hi)``, and the algorithm runs
one range per worker thread of :func:`numconv._workers.run_parts`.
They are not ``prange`` loops because an OpenMP parallel region leaves its
workers spinning for milliseconds after it ends, and the Winograd or GEMM
call that follows the split (or the next call's, after the merge) then
shares the two cores with them: dilated3x3's undilated call took 12-16 ms
right after a parallel split against 6-8 ms alone.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._config import KERNEL_OPTIONS
from . import simd
from .plane_rows import (
    column_fixes,
    copy_row_columns,
    copy_row_vector_pairs,
    copy_row_vectors,
)


@njit(**KERNEL_OPTIONS)
def split_phases(x, dst, src_d, src_h, col_source, col_first, dilation, lo, hi):  # pragma: no cover
    """``dst[p, n, c, i, j, l] = x[n, c, src_d[rd + dd·i], src_h[rh + dh·j], col_source[rw, l]]``.

    ``src_d`` and ``src_h`` are padding maps as in :mod:`numconv._padding`,
    extended with ``-1`` (a zero) to ``d·P`` entries per axis;
    ``col_source[rw, l]`` is W's map at ``rw + dw·l``, and ``col_first[rw]``
    the input column it would read at ``l = 0`` were it inside the input
    (``rw`` minus the left padding). They pad the input, in any mode, in the
    same pass. The call runs tasks ``lo`` to ``hi - 1`` of :func:`split_tasks`'
    numbering: a task is one phase plane ``(p, n, c)``, or with ``dw`` 2 a pair
    (both W phases), numbered ``(n, c)``-major so that one input plane's phases
    are consecutive tasks, which one thread runs while the plane is in its
    cache. Numbered ``p``-major, every input row came from memory twice with
    ``dh`` 2 (dilated3x3's split read cold 0.54-0.64 ms a call; §42).

    Rows are copied in masked vectors where ``dw`` is 1 or 2
    (:mod:`numconv.kernels.plane_rows`; the columns other padding modes map
    elsewhere then one by one): one value at a time through the map they
    took 0.73 ms a split on dilated3x3 (two threads). With ``dw`` 2 each
    pair of loads fills both W phases' rows.
    """
    batch, channels, depth, height, width = dst.shape[1:]
    in_d, in_h, in_w = x.shape[2:]
    dd, dh, dw = dilation
    x4 = x.reshape((x.shape[0], x.shape[1] * in_d, in_h, in_w))
    flat = dst.reshape(dst.size)
    fixes = column_fixes(col_source, col_first, dw, in_w)
    rows = np.empty(height, dtype=np.int64)
    plane = height * width
    paired = dw == 2
    phase_planes = batch * channels * depth * plane  # one phase's values
    per_plane = dst.shape[0] // (2 if paired else 1)  # tasks per input plane (n, c)
    for task in range(lo, hi):
        p = task % per_plane * (2 if paired else 1)
        n = task // per_plane // channels
        c = task // per_plane % channels
        rd = p // (dh * dw)
        rh = (p // dw) % dh
        rw = p % dw
        for j in range(height):
            rows[j] = src_h[rh + dh * j]
        for i in range(depth):
            a = src_d[rd + dd * i]
            at = (((p * batch + n) * channels + c) * depth + i) * plane
            if a < 0:
                flat[at : at + plane] = 0
                if paired:
                    flat[at + phase_planes : at + phase_planes + plane] = 0
                continue
            slice_ = c * in_d + a  # the input's (channel, depth) plane in x4
            first_row = (n * x4.shape[1] + slice_) * in_h
            if paired:
                copy_row_vector_pairs(x4, first_row, 0, height, rows, col_first[0], in_w, width,
                                      flat, at, at + phase_planes)  # fmt: skip
                for phase in range(2):
                    count = fixes[phase, 0]
                    if count:
                        out = flat[at + phase * phase_planes : at + phase * phase_planes + plane]
                        copy_row_columns(x4, n, slice_, 0, height, rows, col_source[phase],
                                         fixes[phase, 1 : count + 1], width, out)  # fmt: skip
                continue
            out = flat[at : at + plane]
            if dw > 2:
                copy_row_columns(x4, n, slice_, 0, height, rows, col_source[rw], range(width),
                                 width, out)  # fmt: skip
                continue
            copy_row_vectors(x4, first_row, 0, height, rows, col_first[rw], dw, in_w, width,
                             flat, at)  # fmt: skip
            count = fixes[rw, 0]
            if count:
                copy_row_columns(x4, n, slice_, 0, height, rows, col_source[rw],
                                 fixes[rw, 1 : count + 1], width, out)  # fmt: skip


def split_tasks(planes: int, dilation) -> int:
    """:func:`split_phases`' task count for ``planes`` planes ``(p, n, c)``: a plane each,
    or a pair of W phases each with ``dw`` 2 (``(n, c)``-major, see there)."""
    return planes // 2 if dilation[2] == 2 else planes


@njit(inline="always", **KERNEL_OPTIONS)
def _interleave_two(dst, at, width, phases, even, odd):  # pragma: no cover
    """One output row from its two W phases (dilation 2 along W), by flat index:
    ``dst.flat[at + 2t] = phases.flat[even + t]`` and ``dst.flat[at + 2t + 1] =
    phases.flat[odd + t]`` for the ``width`` positions of the row.

    Whole blocks of ``2·lanes`` values go through one interleaving store, the
    rest through the even and odd lanes of masked step-2 stores. LLVM's own
    vectorisation of the scalar loop took 15.7 ns a 56-value row (0.45 ms a
    merge on dilated3x3, two threads; §42).
    """
    lanes = simd.lanes(dst)
    t = 0
    while 2 * (t + lanes) <= width:
        pair = (simd.load(phases, even + t), simd.load(phases, odd + t))
        simd.store_interleaved(dst, at + 2 * t, pair)
        t += lanes
    left = width - 2 * t  # values still to write, fewer than 2·lanes
    if left > 0:
        evens, odds = (left + 1) // 2, left // 2
        _spread_store(dst, at + 2 * t, simd.masked_load(phases, even + t, 0, evens), evens)
        _spread_store(dst, at + 2 * t + 1, simd.masked_load(phases, odd + t, 0, odds), odds)


@njit(inline="always", **KERNEL_OPTIONS)
def _spread_store(dst, at, values, count):  # pragma: no cover
    """``dst.flat[at + 2s] = values[s]`` for ``s < count``; the odd positions untouched."""
    lanes = simd.lanes(dst)
    simd.masked_store(dst, at, simd.spread_low(values), 2 * count - 1, 2)
    simd.masked_store(dst, at + lanes, simd.spread_high(values), 2 * count - 1 - lanes, 2)


@njit(**KERNEL_OPTIONS)
def merge_phases(phases, dst, dilation, offset, lo, hi):  # pragma: no cover
    """``dst[n, c, a, b, e] = phases[p, n, c, qa // dd, qb // dh, qe // dw]``.

    ``q = (a, b, e) + offset`` and ``p`` is the phase of ``q``'s residues.
    ``offset`` skips leading positions of the phase grid (the padding, when
    the input gradient is cropped to the input); every ``q`` must lie inside
    ``phases``. The call writes planes ``(n, c)`` ``lo`` to ``hi - 1``
    (row-major).
    """
    channels, depth, height, width = dst.shape[1:]
    batch, _, p_depth, p_height, p_width = phases.shape[1:]
    dd, dh, dw = dilation
    od, oh, ow = offset
    for task in range(lo, hi):
        n = task // channels
        c = task % channels
        for a in range(depth):
            qa = a + od
            for b in range(height):
                qb = b + oh
                out = dst[n, c, a, b]
                p_row = ((qa % dd) * dh + qb % dh) * dw
                if dw == 2:
                    # the phases of the row's even and odd output columns, by flat index
                    row = (((p_row * batch + n) * channels + c) * p_depth + qa // dd) * p_height
                    first = (row + qb // dh) * p_width
                    plane = batch * channels * p_depth * p_height * p_width  # one phase
                    even = first + ow % 2 * plane + ow // 2
                    odd = first + (ow + 1) % 2 * plane + (ow + 1) // 2
                    at = (((n * channels + c) * depth + a) * height + b) * width
                    _interleave_two(dst, at, width, phases, even, odd)
                    continue
                for rw in range(dw):
                    row = phases[p_row + rw, n, c, qa // dd, qb // dh]
                    first = (rw - ow) % dw  # the first e with (e + ow) % dw == rw
                    start = (first + ow) // dw
                    for t in range((width - first + dw - 1) // dw):
                        out[first + dw * t] = row[start + t]
