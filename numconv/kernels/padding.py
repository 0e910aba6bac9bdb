"""Zero padding of whole planes in one pass: each row copied or zeroed once.

``pad_planes`` writes every plane of a padded array ``dst`` from ``a``: row
``r`` of a plane is ``a``'s row ``r - top`` placed at column ``left``, and
zeros wherever ``a`` has no value (the frame, and the end of whole-tile
sources). A negative ``top`` or ``left`` crops ``a`` instead.

NumPy did this as a strided copy and then four frame assignments, serial: the
frame's columns are runs of one or two values per row, about 20 ns each
(1.1 ms to zero the frames of dilated3x3's input-gradient source, 64·32
planes). The kernel is serial and releases the GIL. The Winograd algorithms
call it on the calling thread for all planes: two threads gained nothing
(the copy is bound by the L3 and memory), and a ``prange`` loop's OpenMP
workers would keep spinning into the products that follow (see
:mod:`numconv.kernels.phases`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._config import KERNEL_OPTIONS


@njit(**KERNEL_OPTIONS)
def pad_planes(a, dst, top, left):  # pragma: no cover
    """``dst[n, c, d] = `` ``a[n, c, d]`` at offset ``(top, left)``, zeros elsewhere.

    ``a`` is ``(N, C, D, h, w)``, C-contiguous or a strided view (a second
    signature), and ``dst`` a C-contiguous ``(N, C, D, H, W)``. No
    validation: the caller's shapes keep every index in bounds.
    """
    batch, channels, depth, h, w = a.shape
    height, width = dst.shape[3], dst.shape[4]
    r0, r1 = max(top, 0), min(top + h, height)
    c0, c1 = max(left, 0), max(min(left + w, width), max(left, 0))
    # Unsigned indices: no negative-index wrap code in the loops.
    shift, first, copied = np.uint64(c0 - left), np.uint64(c0), np.uint64(c1 - c0)
    for n, c, d in np.ndindex(batch, channels, depth):
        source, target = a[n, c, d], dst[n, c, d]
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
