"""Zero padding of whole planes in one pass: each row copied or zeroed once.

``pad_planes`` writes every plane of a padded array ``dst`` from ``a``: row
``r`` of a plane is ``a``'s row ``r - top`` placed at column ``left``, and
zeros wherever ``a`` has no value (the frame, and the end of whole-tile
sources). A negative ``top`` or ``left`` crops ``a`` instead. Whole planes
can be shifted the same way along the two plane axes after the batch (depth
padding, in either the channel-first or the depth-major layout), and planes
with no source are zeros.

NumPy did this as a strided copy and then four frame assignments, serial: the
frame's columns are runs of one or two values per row, about 20 ns each
(1.1 ms to zero the frames of dilated3x3's input-gradient source, 64·32
planes). The kernel is serial and releases the GIL. The Winograd algorithms
call it on the calling thread for all planes: two threads gained nothing
(the copy is bound by the L3 and memory), and a ``prange`` loop's OpenMP
workers would keep spinning into the products that follow (see
:mod:`numconv.kernels.phases`).

Planes no wider than a vector (deep layers' 7² to 14² images and their
whole-tile sources) have rows of a few values, and the row loops' fixed
cost dominated: 0.23 ms to pad res3x3_7's 8·512 planes of 7² to 10².
``pad_narrow_planes`` writes each such row with one masked load and one
masked store (:mod:`numconv.kernels.simd`), zeros included: 0.036 ms.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._config import KERNEL_OPTIONS
from . import simd


@njit(**KERNEL_OPTIONS)
def pad_planes(a, dst, ahead1, ahead2, top, left):  # pragma: no cover
    """``dst[n, i, j]`` = ``a[n, i - ahead1, j - ahead2]`` at ``(top, left)``, zeros elsewhere.

    ``a`` is ``(N, A1, A2, h, w)``, C-contiguous or a strided view (a second
    signature), and ``dst`` a C-contiguous ``(N, B1, B2, H, W)``; a plane of
    ``dst`` whose source index falls outside ``a`` is all zeros. No
    validation: the caller's shapes keep every index in bounds.
    """
    batch, size1, size2, h, w = a.shape
    planes1, planes2, height, width = dst.shape[1:]
    r0, r1 = max(top, 0), min(top + h, height)
    c0, c1 = max(left, 0), max(min(left + w, width), max(left, 0))
    # Unsigned indices: no negative-index wrap code in the loops.
    shift, first, copied = np.uint64(c0 - left), np.uint64(c0), np.uint64(c1 - c0)
    for n, i, j in np.ndindex(batch, planes1, planes2):
        target = dst[n, i, j]
        i_source, j_source = i - ahead1, j - ahead2
        if not (0 <= i_source < size1 and 0 <= j_source < size2):
            for r in range(height):
                row = target[r]
                for q in range(width):
                    row[q] = 0
            continue
        source = a[n, i_source, j_source]
        for r in range(height):
            row = target[r]
            if r < r0 or r >= r1:
                for q in range(width):
                    row[q] = 0
                continue
            values = source[r - top]
            for q in range(c0):
                row[q] = 0
            for q in range(copied):
                row[first + q] = values[shift + q]
            for q in range(c1, width):
                row[q] = 0


@njit(**KERNEL_OPTIONS)
def pad_narrow_planes(a, dst, top, left):  # pragma: no cover
    """:func:`pad_planes` of C-contiguous ``(P, h, w)`` planes into ``(P, H, W)``, ``W`` at
    most a vector's lanes, without plane shifts: one masked load and store a row.

    Lane ``q`` of a row's vector is column ``q`` of ``dst``: the load's index
    starts ``left`` values before the source row (or after it, cropping) and
    only lanes ``c0 <= q < c1`` are read, the rest are zeros.
    """
    planes, h, w = a.shape
    height, width = dst.shape[1:]
    r0, r1 = max(top, 0), min(top + h, height)
    c0, c1 = max(left, 0), max(min(left + w, width), max(left, 0))
    zeros = simd.zero(dst)
    for p in range(planes):
        for r in range(height):
            at = (p * height + r) * width
            if r < r0 or r >= r1:
                simd.masked_store(dst, at, zeros, width, 1)
            else:
                start = (p * h + r - top) * w - left
                simd.masked_store(dst, at, simd.masked_load(a, start, c0, c1), width, 1)


@njit(**KERNEL_OPTIONS)
def pad_channels_last(a, dst, top, left, n0, n1):  # pragma: no cover
    """``dst[n, r, q, c] = a[n, c, r - top, q - left]`` for images ``n0 <= n < n1``, zeros
    where ``a`` has no value.

    ``a`` is ``(N, C, h, w)``, ``dst`` a C-contiguous ``(N, H, W, C)``: zero
    padding (or cropping, for negative offsets) and the move of the channels
    last in one pass, each value of ``dst`` written once. (Blocks of 16
    channels, each position's 16 values one store, ran slower with warm
    caches, 0.13 against 0.06 ms on 8·512 planes of 7² to 10², and alike
    from memory, ~0.2 ms.)
    """
    _, channels, h, w = a.shape
    _, height, width, _ = dst.shape
    for n in range(n0, n1):
        for r in range(height):
            i = r - top
            for q in range(width):
                j = q - left
                target = dst[n, r, q]
                if 0 <= i < h and 0 <= j < w:
                    for c in range(channels):
                        target[c] = a[n, c, i, j]
                else:
                    for c in range(channels):
                        target[c] = 0
