"""Input rows copied into flat planes, in vectors where the columns step by 1 or 2.

The phase sums and the tap sums both lay input rows out as planes whose
rows are a few tens of values long, read by the sums as contiguous runs.
Copied one value at a time through a column map such rows cost ~7 ns each
(docs/performance.md §33); here a row is copied in masked vectors wherever
its plane column ``e`` reads input column ``first + e·stride`` with a stride
of 1 or 2, masked loads giving zero padding's zeros. The few columns other
padding modes (reflect, replicate, circular) map elsewhere are listed by
:func:`column_fixes` and copied one by one by :func:`copy_row_columns`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._config import KERNEL_OPTIONS
from . import simd


@njit(inline="always", **KERNEL_OPTIONS)
def copy_row_vectors(
    x, first_row, r0, rows, row_source, first, stride, in_w, width, flat, at
):  # fmt: skip  # pragma: no cover
    """One plane's rows in vectors: ``flat[at + i·width + e] = x.flat[(first_row + row_source[r0
    + i])·in_w + first + e·stride]``, zeros outside the input's rows and columns."""
    lanes = simd.lanes(flat)
    zero = simd.zero(flat)
    for e0 in range(0, width, lanes):
        count = min(lanes, width - e0)
        column = first + e0 * stride
        lo, hi = -column, in_w - column  # the lanes inside the input row
        for i in range(rows):
            src = row_source[r0 + i]
            dst = at + i * width + e0
            if src < 0:
                simd.masked_store(flat, dst, zero, count, 1)
                continue
            read = (first_row + src) * in_w + column
            if stride == 1:
                v = simd.masked_load(x, read, lo, hi)
            else:
                low = simd.masked_load(x, read, lo, hi)
                v = simd.even_lanes(low, simd.masked_load(x, read + lanes, lo - lanes, hi - lanes))
            simd.masked_store(flat, dst, v, count, 1)


@njit(inline="always", **KERNEL_OPTIONS)
def copy_row_vector_pairs(
    x, first_row, r0, rows, row_source, first, in_w, width, flat, at_even, at_odd
):  # fmt: skip  # pragma: no cover
    """:func:`copy_row_vectors` at stride 2 for both W phases: plane column ``e`` of the
    even phase (at ``at_even``) reads input column ``first + 2e``, the odd phase's (at
    ``at_odd``) ``first + 1 + 2e``. Each pair of loads serves both: half the loads
    and masks of two calls."""
    lanes = simd.lanes(flat)
    zero = simd.zero(flat)
    for e0 in range(0, width, lanes):
        count = min(lanes, width - e0)
        column = first + 2 * e0
        lo, hi = -column, in_w - column  # the lanes inside the input row
        for i in range(rows):
            src = row_source[r0 + i]
            even = at_even + i * width + e0
            odd = at_odd + i * width + e0
            if src < 0:
                simd.masked_store(flat, even, zero, count, 1)
                simd.masked_store(flat, odd, zero, count, 1)
                continue
            read = (first_row + src) * in_w + column
            low = simd.masked_load(x, read, lo, hi)
            high = simd.masked_load(x, read + lanes, lo - lanes, hi - lanes)
            simd.masked_store(flat, even, simd.even_lanes(low, high), count, 1)
            simd.masked_store(flat, odd, simd.odd_lanes(low, high), count, 1)


@njit(inline="always", **KERNEL_OPTIONS)
def copy_row_columns(
    x, n, c, r0, rows, row_source, col_source, columns, width, plane
):  # fmt: skip  # pragma: no cover
    """One plane's ``columns``, one value at a time, from ``col_source``."""
    for i in range(rows):
        src = row_source[r0 + i]
        x_row = x[n, c, max(src, 0)]
        for e in columns:
            s = col_source[e]
            plane[i * width + e] = x_row[s] if src >= 0 and s >= 0 else 0


@njit(inline="always", **KERNEL_OPTIONS)
def column_fixes(col_source, col_first, col_stride, in_w):  # pragma: no cover
    """Per W phase, how many plane columns the vector copy gets wrong, then which.

    ``fixes[pc, 0]`` is the count, ``fixes[pc, 1:]`` the columns: those
    whose ``col_source`` is not ``col_first[pc] + e·col_stride`` inside the
    input and ``-1`` outside, i.e. the padding of modes other than zeros
    (reflect, replicate, circular), a few columns at each end.
    """
    phases, width = col_source.shape
    fixes = np.zeros((phases, width + 1), dtype=np.int64)
    for pc in range(phases):
        for e in range(width):
            s = col_first[pc] + e * col_stride
            if col_source[pc, e] != (s if 0 <= s < in_w else -1):
                fixes[pc, 0] += 1
                fixes[pc, fixes[pc, 0]] = e
    return fixes
