"""im2col / col2im kernels on ``(planes, D, H, W)`` images and ``(planes, K, L)`` columns.

A plane is one ``(n, c)`` image; its columns hold, for each of the ``K`` kernel
positions (C order) and each of the ``L`` output positions (C order), the image
value under that kernel position, or 0 where it falls into the padding. One
plane per parallel iteration: folding adds overlapping patches only into its
own plane, so it never races and its order of additions is fixed.
"""

from __future__ import annotations

from numba import njit, prange

from .._config import KERNEL_OPTIONS


@njit(inline="always", **KERNEL_OPTIONS)
def _in_range(n, out, stride, offset):  # pragma: no cover
    """Output positions ``[lo, hi)`` whose input ``o·stride + offset`` lies in ``[0, n)``."""
    lo = 0 if offset >= 0 else (-offset + stride - 1) // stride
    hi = 0 if offset > n - 1 else (n - 1 - offset) // stride + 1
    hi = min(hi, out)
    return lo, max(lo, hi)


@njit(parallel=True, **KERNEL_OPTIONS)
def unfold_planes(x, cols, k_d, k_h, k_w, s_d, s_h, s_w, p_d, p_h, p_w, d_d, d_h, d_w,
                  o_d, o_h, o_w):  # fmt: skip  # pragma: no cover
    """cols[p, kernel position, output position] = x[p] under it, 0 in the padding."""
    planes, n_d, n_h, n_w = x.shape
    for p in prange(planes):
        for a in range(k_d):
            for b in range(k_h):
                for c in range(k_w):
                    k = (a * k_h + b) * k_w + c
                    w_lo, w_hi = _in_range(n_w, o_w, s_w, c * d_w - p_w)
                    for od in range(o_d):
                        i_d = od * s_d - p_d + a * d_d
                        for oh in range(o_h):
                            i_h = oh * s_h - p_h + b * d_h
                            first = (od * o_h + oh) * o_w
                            row = cols[p, k, first : first + o_w]
                            if i_d < 0 or i_d >= n_d or i_h < 0 or i_h >= n_h:
                                row[:] = 0
                                continue
                            row[:w_lo] = 0
                            row[w_hi:] = 0
                            x_row = x[p, i_d, i_h]
                            offset = c * d_w - p_w
                            for ow in range(w_lo, w_hi):
                                row[ow] = x_row[ow * s_w + offset]


@njit(parallel=True, **KERNEL_OPTIONS)
def fold_planes(cols, x, k_d, k_h, k_w, s_d, s_h, s_w, p_d, p_h, p_w, d_d, d_h, d_w,
                o_d, o_h, o_w):  # fmt: skip  # pragma: no cover
    """x[p] = 0, then every column value added back where :func:`unfold_planes` took it."""
    planes, n_d, n_h, n_w = x.shape
    for p in prange(planes):
        x[p, :, :, :] = 0
        for a in range(k_d):
            for b in range(k_h):
                for c in range(k_w):
                    k = (a * k_h + b) * k_w + c
                    w_lo, w_hi = _in_range(n_w, o_w, s_w, c * d_w - p_w)
                    for od in range(o_d):
                        i_d = od * s_d - p_d + a * d_d
                        if i_d < 0 or i_d >= n_d:
                            continue
                        for oh in range(o_h):
                            i_h = oh * s_h - p_h + b * d_h
                            if i_h < 0 or i_h >= n_h:
                                continue
                            first = (od * o_h + oh) * o_w
                            row = cols[p, k, first : first + o_w]
                            x_row = x[p, i_d, i_h]
                            offset = c * d_w - p_w
                            for ow in range(w_lo, w_hi):
                                x_row[ow * s_w + offset] += row[ow]
