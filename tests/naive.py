"""Slow, obviously-correct references written from SEMANTICS.md, sharing no code with numconv.

They loop over output positions in NumPy, pad with ``np.pad`` and compute the
"same" padding from its written rule, so a bug in numconv's padding maps,
kernels or layout handling cannot hide in them.
"""

from __future__ import annotations

import itertools

import numpy as np

NP_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def same_pads(n, k, s, d):
    """SEMANTICS.md: out = ceil(n/s), total = max((out-1)·s + e - n, 0), extra after."""
    e = d * (k - 1) + 1
    out = -(-n // s)
    total = max((out - 1) * s + e - n, 0)
    return total // 2, total - total // 2


def expand_padding(padding, spatial, kernel, stride, dilation):
    """Per-side (before, after) pairs for any padding form."""
    nd = len(spatial)
    if padding == "valid":
        return [(0, 0)] * nd
    if padding == "same":
        return [same_pads(*a) for a in zip(spatial, kernel, stride, dilation)]
    if isinstance(padding, int):
        return [(padding, padding)] * nd
    return [(p, p) if isinstance(p, int) else tuple(p) for p in padding]


def conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """Batched N-d convolution, float64, one output element at a time."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    nd = x.ndim - 2
    stride = (stride,) * nd if isinstance(stride, int) else tuple(stride)
    dilation = (dilation,) * nd if isinstance(dilation, int) else tuple(dilation)
    kernel = w.shape[2:]
    pads = expand_padding(padding, x.shape[2:], kernel, stride, dilation)
    xp = np.pad(x, [(0, 0), (0, 0), *pads], mode=NP_PAD_MODE[padding_mode])
    out = [
        (n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(xp.shape[2:], kernel, stride, dilation)
    ]
    n_batch, c_in = x.shape[:2]
    c_out = w.shape[0]
    cgi, cgo = c_in // groups, c_out // groups
    y = np.zeros((n_batch, c_out, *out))
    for o in itertools.product(*map(range, out)):
        window = tuple(
            slice(i * s, i * s + d * (k - 1) + 1, d)
            for i, s, d, k in zip(o, stride, dilation, kernel)
        )
        patch = xp[(slice(None), slice(None), *window)]  # (N, C_in, *k)
        for co in range(c_out):
            g = co // cgo
            y[(slice(None), co, *o)] = np.sum(
                patch[:, g * cgi : (g + 1) * cgi] * w[co], axis=tuple(range(1, nd + 2))
            )
    if b is not None:
        y += np.asarray(b, dtype=np.float64).reshape(1, -1, *([1] * nd))
    return y


def _pool_windows(n, k, s, p, ceil_mode):
    """(start, stop) of each window in padded coordinates, by SEMANTICS.md's size rule."""
    out = (n + 2 * p - k + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return [(o * s - p, o * s - p + k) for o in range(out)]


def avg_pool(x, kernel, stride, padding, ceil_mode=False, count_include_pad=True, divisor=None):
    """Average pooling of batched ``x`` by its written rules, one window at a time."""
    spatial = x.shape[2:]
    per_dim = [
        _pool_windows(n, k, s, p, ceil_mode)
        for n, k, s, p in zip(spatial, kernel, stride, padding, strict=True)
    ]
    y = np.zeros(x.shape[:2] + tuple(len(w) for w in per_dim))
    for out_index in itertools.product(*(range(len(w)) for w in per_dim)):
        windows = [w[o] for w, o in zip(per_dim, out_index, strict=True)]
        inside = tuple(
            slice(max(a, 0), min(b, n)) for (a, b), n in zip(windows, spatial, strict=True)
        )
        total = x[(..., *inside)].sum(axis=tuple(range(2, x.ndim)))
        if divisor is not None:
            div = divisor
        elif count_include_pad:  # the overhang past the right padding does not count
            div = np.prod([min(b, n + p) - a for (a, b), n, p in zip(windows, spatial, padding)])
        else:
            div = np.prod([s.stop - s.start for s in inside])
        y[(..., *out_index)] = total / div
    return y


def adaptive_bins(n, out):
    """Bin i covers [floor(i·n/out), ceil((i+1)·n/out))."""
    return [(i * n // out, -(-(i + 1) * n // out)) for i in range(out)]


def adaptive_pool(x, output_size, reduce):
    """Adaptive pooling of batched ``x`` with ``reduce`` (e.g. np.mean) over each bin."""
    bins = [adaptive_bins(n, o) for n, o in zip(x.shape[2:], output_size, strict=True)]
    y = np.zeros(x.shape[:2] + tuple(output_size))
    for out_index in itertools.product(*(range(o) for o in output_size)):
        box = tuple(slice(*b[o]) for b, o in zip(bins, out_index, strict=True))
        y[(..., *out_index)] = reduce(x[(..., *box)], axis=tuple(range(2, x.ndim)))
    return y
