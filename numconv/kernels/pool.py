"""Pooling kernels on ``(planes, D, H, W)`` arrays, one ``(n, c)`` plane per iteration.

Arrays and ints in, results written into preallocated outputs; no validation.
Parallelising over planes keeps backward race-free: overlapping windows only
ever add into their own plane, which one thread owns.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._config import KERNEL_OPTIONS


@njit(parallel=True, **KERNEL_OPTIONS)
def max_pool_forward(
    x, y, indices, kd_n, kh_n, kw_n, sd, sh, sw, pd, ph, pw, dd, dh, dw
):  # pragma: no cover
    """y = window max (padding acts as −∞); indices = flat position in the unpadded plane."""
    planes, d_n, h_n, w_n = x.shape
    _, od_n, oh_n, ow_n = y.shape
    for p in prange(planes):
        for od in range(od_n):
            for oh in range(oh_n):
                for ow in range(ow_n):
                    best = -np.inf
                    best_i = -1
                    for a in range(kd_n):
                        i_d = od * sd - pd + a * dd
                        if i_d < 0 or i_d >= d_n:
                            continue
                        for b in range(kh_n):
                            i_h = oh * sh - ph + b * dh
                            if i_h < 0 or i_h >= h_n:
                                continue
                            for c in range(kw_n):
                                i_w = ow * sw - pw + c * dw
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
def scatter_by_index(grad_output, indices, grad_input):  # pragma: no cover
    """grad_input[p, indices[p, j]] += grad_output[p, j] (indices < 0 are skipped)."""
    planes, outputs = grad_output.shape
    for p in prange(planes):
        for j in range(outputs):
            i = indices[p, j]
            if i >= 0:
                grad_input[p, i] += grad_output[p, j]
