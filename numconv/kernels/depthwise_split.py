"""Depthwise kernels for layers of stride 2 along W, on planes split into even and odd columns.

With an even width ``W``, the parity of a plane's flat index is the parity of
its column, so one loop over the whole plane splits it into its even columns
(``E``, ``H`` rows of ``W/2``) and its odd ones (``O``). LLVM vectorises that
loop with shuffles, where copying a padded plane into stride phases row by row
(:mod:`numconv.kernels.depthwise`) cost about 1 ns a value on 14² and 28²
planes, most of those layers' time.

Tap ``(b, e)`` of output ``(oh, ow)`` reads input column
``2·ow + e·dw − pl``: region ``P = (e·dw − pl) mod 2`` (``E`` or ``O``) at
column ``ow + shift``, ``shift = ⌊(e·dw − pl) / 2⌋``, and padded row
``sh·oh + b·dh``. With ``q = oh·pitch + ow`` and ``pitch = sh·W/2`` (``sh``
split rows per output row), that is slot ``q + offset`` of the region, one
offset per tap, as in :mod:`numconv.kernels.depthwise_masked`; and as there,
a read whose column falls outside the row lands on a neighbouring row, so
``keep[e, q]`` says whether it is inside and the kernels select zero where it
is not. The padding rows above and below are zero rows in the buffer; there
are no padding columns. For ``sh = 2`` the odd half of each pitch is junk
(computed, never copied out): twice the arithmetic, which is cheap next to a
copy the vector units cannot help.

Every plane of one channel (all images, all depth slices) has the same
filter, so a parallel item stacks a few of them, each in a *slot* of ``rows``
split rows (``pt`` zero rows, the plane's ``H``, zero rows up to a multiple of
``sh``), in both regions. Each region starts with ``margin`` zeros so that a
negative shift stays in bounds. The split-plane buffers are allocated zeroed
per call and the kernels write only the planes' rows, so the padding rows
stay zero.

Only windows one deep with no depth padding: each depth slice of a 3-d input
is a plane of its own. The row blocks (:mod:`numconv.kernels.depthwise_rows`)
took these layers' input gradients and the forwards of planes up to 64²
(docs/performance.md §37); the weight gradient and the forward of larger
planes stay here.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .._config import KERNEL_OPTIONS, REDUCTION_OPTIONS
from .depthwise_masked import _masked_correlate, _masked_dots, _stack_range


@njit(inline="always", **KERNEL_OPTIONS)
def _split_stack(src, c, first, last, buf, margin, pad_top, rows, region):  # pragma: no cover
    """Planes ``first:last`` of channel ``c`` split into their even and odd columns.

    Plane ``j``'s row ``h`` goes to row ``pad_top + h`` of slot ``j`` in both
    regions (``E`` from ``margin``, ``O`` from ``region + margin``).
    """
    _, _, d_n, h_n, w_n = src.shape
    half = w_n // 2
    size = h_n * half
    for j in range(last - first):
        n = (first + j) // d_n
        d = (first + j) % d_n
        plane = src[n, c, d].reshape(h_n * w_n)
        even = np.uint64(margin + (j * rows + pad_top) * half)  # unsigned: no wraparound code
        odd = even + np.uint64(region)
        for i in range(size):
            u = np.uint64(i)
            buf[even + u] = plane[2 * u]
            buf[odd + u] = plane[2 * u + 1]


@njit(inline="always", **KERNEL_OPTIONS)
def _place_outputs(g, c, first, last, buf, slot, pitch):  # pragma: no cover
    """buf[j·slot + oh·pitch + ow] = g[plane j, oh, ow]; the junk slots between are untouched."""
    _, _, d_n, oh_n, ow_n = g.shape
    for j in range(last - first):
        n = (first + j) // d_n
        d = (first + j) % d_n
        for oh in range(oh_n):
            start = np.uint64(j * slot + oh * pitch)
            g_row = g[n, c, d, oh]
            for ow in range(ow_n):
                buf[start + np.uint64(ow)] = g_row[np.uint64(ow)]


@njit(inline="always", **KERNEL_OPTIONS)
def _take_outputs(result, dst, c, first, last, slot, pitch):  # pragma: no cover
    """dst[plane j, oh, ow] = result[j·slot + oh·pitch + ow]: the valid outputs."""
    _, _, d_n, oh_n, ow_n = dst.shape
    for j in range(last - first):
        n = (first + j) // d_n
        d = (first + j) % d_n
        for oh in range(oh_n):
            start = np.uint64(j * slot + oh * pitch)
            row = dst[n, c, d, oh]
            for ow in range(ow_n):
                row[np.uint64(ow)] = result[start + np.uint64(ow)]


@njit(inline="always", **KERNEL_OPTIONS)
def _valid_count(planes, slot, pitch, oh_n, ow_n):  # pragma: no cover
    """Slots up to the last plane's last valid output."""
    return (planes - 1) * slot + (oh_n - 1) * pitch + ow_n


@njit(parallel=True, **KERNEL_OPTIONS)
def split_forward(src, margin, pad_top, rows, region, pitch, offsets, keep, taps, bias, dst,
                  per_stack, buffers, results):  # fmt: skip  # pragma: no cover
    """dst[n, c, d] = bias[c] + the correlation of src[n, c, d] with taps[c], W stride 2.

    ``src`` is ``(N, C, D, H, W)`` and ``dst`` ``(N, C, D, OH, OW)``, both
    C-contiguous; ``taps`` is ``(C, KH·KW)`` in ``offsets``' order.
    """
    n_batch, c_n, d_n, _, w_n = src.shape
    oh_n, ow_n = dst.shape[3], dst.shape[4]
    slot = rows * (w_n // 2)
    kw = keep.shape[0]
    planes = n_batch * d_n
    stacks = -(-planes // per_stack)
    for item in prange(c_n * stacks):
        c, first, last = _stack_range(item, stacks, planes, per_stack)
        thread = numba.get_thread_id()
        buf, result = buffers[thread], results[thread]
        _split_stack(src, c, first, last, buf, margin, pad_top, rows, region)
        count = _valid_count(last - first, slot, pitch, oh_n, ow_n)
        # Width 0: these reads are not stride-1 rows, so never the wide-row path.
        _masked_correlate(buf, result, offsets, keep, taps[c], bias[c], count, kw, 0, 0)
        _take_outputs(result, dst, c, first, last, slot, pitch)


@njit(parallel=True, **REDUCTION_OPTIONS)
def split_weight_grad(x, margin, pad_top, rows, region, pitch, offsets, keep, gy, partial,
                      per_stack, buffers, placed):  # fmt: skip  # pragma: no cover
    """partial[c, s, t] = Σ over stack ``s`` of channel ``c``: Σ_q (xbuf[q + offsets[t]]
    if keep[t % KW, q] else 0) · gybuf[q]; the caller sums over ``s`` in order.

    ``gybuf`` holds gy at its flat slots and zero in the junk ones.
    """
    n_batch, c_n, d_n, _, w_n = x.shape
    oh_n, ow_n = gy.shape[3], gy.shape[4]
    slot = rows * (w_n // 2)
    planes = n_batch * d_n
    stacks = -(-planes // per_stack)
    for item in prange(c_n * stacks):
        c, first, last = _stack_range(item, stacks, planes, per_stack)
        thread = numba.get_thread_id()
        buf, g = buffers[thread], placed[thread]
        _split_stack(x, c, first, last, buf, margin, pad_top, rows, region)
        _place_outputs(gy, c, first, last, g, slot, pitch)
        count = _valid_count(last - first, slot, pitch, oh_n, ow_n)
        _masked_dots(buf, g, offsets, keep, partial[c, item % stacks], count)
