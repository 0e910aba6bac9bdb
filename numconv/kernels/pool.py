"""Pooling kernels on ``(planes, D, H, W)`` arrays, one ``(n, c)`` plane per iteration.

Arrays and ints in, results written into preallocated outputs; no validation.
Windows are described per spatial dim by small int arrays indexed by output
position, so one kernel serves regular pooling (every window the same size,
possibly dilated or hanging into padding) and adaptive pooling (windows of
varying size). Parallelising over planes keeps every backward race-free:
overlapping windows only ever add into their own plane, which one thread owns.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._config import KERNEL_OPTIONS


@njit(parallel=True, **KERNEL_OPTIONS)
def window_max(
    x, y, indices, start_d, start_h, start_w, taps_d, taps_h, taps_w, step_d, step_h, step_w
):  # pragma: no cover
    """y = max over each window's in-bounds taps; indices = flat position in the plane.

    Taps of window ``o`` along a dim are ``start[o] + t * step`` for ``t < taps[o]``;
    taps outside ``[0, n)`` are padding and act as −∞.
    """
    planes, d_n, h_n, w_n = x.shape
    _, od_n, oh_n, ow_n = y.shape
    for p in prange(planes):
        for od in range(od_n):
            for oh in range(oh_n):
                for ow in range(ow_n):
                    best = -np.inf
                    best_i = -1
                    for a in range(taps_d[od]):
                        i_d = start_d[od] + a * step_d
                        if i_d < 0 or i_d >= d_n:
                            continue
                        for b in range(taps_h[oh]):
                            i_h = start_h[oh] + b * step_h
                            if i_h < 0 or i_h >= h_n:
                                continue
                            for c in range(taps_w[ow]):
                                i_w = start_w[ow] + c * step_w
                                if i_w < 0 or i_w >= w_n:
                                    continue
                                v = x[p, i_d, i_h, i_w]
                                # PyTorch's rule: strictly greater keeps the first of
                                # equal maxima; a NaN always wins, so NaN propagates.
                                # best_i < 0 seeds the first in-bounds element, so an
                                # all −∞ window still points into the input.
                                if best_i < 0 or v > best or np.isnan(v):
                                    best = v
                                    best_i = (i_d * h_n + i_h) * w_n + i_w
                    y[p, od, oh, ow] = best
                    indices[p, od, oh, ow] = best_i


@njit(parallel=True, **KERNEL_OPTIONS)
def window_mean(x, y, lo_d, hi_d, lo_h, hi_h, lo_w, hi_w, divisor):  # pragma: no cover
    """y[o] = sum of x over the window ``[lo, hi)`` per dim, divided by ``divisor[o]``."""
    planes = x.shape[0]
    _, od_n, oh_n, ow_n = y.shape
    for p in prange(planes):
        for od in range(od_n):
            for oh in range(oh_n):
                for ow in range(ow_n):
                    total = x.dtype.type(0)
                    for i_d in range(lo_d[od], hi_d[od]):
                        for i_h in range(lo_h[oh], hi_h[oh]):
                            for i_w in range(lo_w[ow], hi_w[ow]):
                                total += x[p, i_d, i_h, i_w]
                    y[p, od, oh, ow] = total / divisor[od, oh, ow]


@njit(parallel=True, **KERNEL_OPTIONS)
def window_mean_backward(
    grad_output, grad_input, lo_d, hi_d, lo_h, hi_h, lo_w, hi_w, divisor
):  # pragma: no cover
    """Adjoint of :func:`window_mean`: each window's gradient / divisor added over it."""
    planes = grad_input.shape[0]
    _, od_n, oh_n, ow_n = grad_output.shape
    for p in prange(planes):
        for od in range(od_n):
            for oh in range(oh_n):
                for ow in range(ow_n):
                    share = grad_output[p, od, oh, ow] / divisor[od, oh, ow]
                    for i_d in range(lo_d[od], hi_d[od]):
                        for i_h in range(lo_h[oh], hi_h[oh]):
                            for i_w in range(lo_w[ow], hi_w[ow]):
                                grad_input[p, i_d, i_h, i_w] += share


@njit(parallel=True, **KERNEL_OPTIONS)
def scatter_add(values, indices, out):  # pragma: no cover
    """out[p, indices[p, j]] += values[p, j] (indices < 0 are skipped)."""
    planes, count = values.shape
    for p in prange(planes):
        for j in range(count):
            i = indices[p, j]
            if i >= 0:
                out[p, i] += values[p, j]


@njit(parallel=True, **KERNEL_OPTIONS)
def scatter_assign(values, indices, out):  # pragma: no cover
    """out[p, indices[p, j]] = values[p, j]; of repeated indices the last one wins."""
    planes, count = values.shape
    for p in prange(planes):
        for j in range(count):
            out[p, indices[p, j]] = values[p, j]


@njit(parallel=True, **KERNEL_OPTIONS)
def gather(values, indices, out):  # pragma: no cover
    """out[p, j] = values[p, indices[p, j]]."""
    planes, count = out.shape
    for p in prange(planes):
        for j in range(count):
            out[p, j] = values[p, indices[p, j]]
