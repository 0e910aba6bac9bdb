"""Where each pooling window lies, per spatial dim, as small int arrays for the kernels.

A window along one dim is described by its first tap (which may lie in the
left padding), its number of taps and the step between taps. Regular pooling
has ``start = o·s − p``, ``k`` taps and step ``d``; adaptive pooling has
``start = ⌊o·n/out⌋``, ``⌈(o+1)·n/out⌉ − start`` taps and step 1. Because every
window is a product of per-dim ranges, so is every divisor of average pooling.

Building these arrays costs more than pooling a small input, so they are
cached per geometry (the batch and channel counts do not enter). The cached
arrays are shared between calls: kernels only read them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .plan import PlaneMap, PoolPlan

_CACHE_SIZE = 256


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: they are cached
class Windows:
    """Per-dim window geometry over an input of size ``spatial`` (lifted to 3 dims)."""

    spatial: tuple[int, int, int]
    start: tuple[np.ndarray, np.ndarray, np.ndarray]
    taps: tuple[np.ndarray, np.ndarray, np.ndarray]
    step: tuple[int, int, int]
    # Output columns [lo, hi) whose windows are equal and lie inside the input
    # along W, and their stride: kernels run those without bounds checks.
    inner_w: tuple[int, int, int] = (0, 0, 1)

    def kernel_args(self) -> tuple:
        """Arguments for :func:`numconv.kernels.pool.window_max`."""
        return (*self.start, *self.taps, *self.step, *self.inner_w)

    @functools.cached_property
    def bounds(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """``(lo, hi)`` per dim: the in-bounds part of each contiguous (step 1) window."""
        assert self.step == (1, 1, 1), "bounds describes contiguous windows only"
        return tuple(
            (np.maximum(start, 0), np.minimum(start + taps, n))
            for start, taps, n in zip(self.start, self.taps, self.spatial, strict=True)
        )

    @functools.cached_property
    def bounds_args(self) -> tuple[np.ndarray, ...]:
        """``lo_d, hi_d, lo_h, hi_h, lo_w, hi_w`` for the window-mean kernels."""
        return tuple(a for pair in self.bounds for a in pair)


def _int_array(values) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.int64)


def _inner_columns(n: int, out: int, k: int, s: int, p: int, d: int) -> tuple[int, int, int]:
    """``(lo, hi, s)``: the outputs whose taps ``o·s − p + t·d`` all lie in ``[0, n)``."""
    lo = -(-p // s)  # first o with o·s − p ≥ 0
    last_start = n - 1 + p - (k - 1) * d  # o·s must not exceed this
    hi = min(out, last_start // s + 1) if last_start >= 0 else 0
    return (lo, hi, s) if hi > lo else (0, 0, s)


def regular_windows(plan: PoolPlan) -> Windows:
    """Windows of a pooling with kernel size, stride, padding and dilation."""
    return _regular(plan.spatial, plan.out, plan.kernel, plan.stride, plan.padding, plan.dilation)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _regular(spatial, out, kernel, stride, padding, dilation) -> Windows:
    return Windows(
        spatial=spatial,
        inner_w=_inner_columns(spatial[2], out[2], kernel[2], stride[2], padding[2], dilation[2]),
        start=tuple(
            _int_array(np.arange(o) * s - p) for o, s, p in zip(out, stride, padding, strict=True)
        ),
        taps=tuple(_int_array(np.full(o, k)) for o, k in zip(out, kernel, strict=True)),
        step=dilation,
    )


def adaptive_windows(plan: PlaneMap) -> Windows:
    """Adaptive bins: bin ``o`` of ``out`` over ``n`` covers ``[⌊o·n/out⌋, ⌈(o+1)·n/out⌉)``."""
    return _adaptive(plan.spatial, plan.out)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _adaptive(spatial, outs) -> Windows:
    starts, taps = [], []
    for n, out in zip(spatial, outs, strict=True):
        o = np.arange(out)
        start = o * n // out
        stop = -((-(o + 1) * n) // out)  # ceiling division in integers
        starts.append(_int_array(start))
        taps.append(_int_array(stop - start))
    return Windows(
        spatial=spatial,
        start=tuple(starts),
        taps=tuple(taps),
        step=(1, 1, 1),
        inner_w=_equal_run(starts[2], taps[2]),
    )


def _equal_run(start: np.ndarray, taps: np.ndarray) -> tuple[int, int, int]:
    """``(lo, hi, s)``: the longest run of bins of equal size whose starts are ``s`` apart.

    Adaptive bins always lie inside the input, so such a run can take the
    kernels' unchecked row path. Bins are equal and evenly spaced whenever the
    output size divides the input size, and often otherwise (7 → 3: starts
    0, 2, 4, three taps each).
    """
    best_lo, best_hi = 0, min(len(start), 1)
    run_lo = 0  # [run_lo, o] is the current run
    for o in range(1, len(start)):
        if taps[o] != taps[o - 1]:
            run_lo = o
        elif o - 1 > run_lo and start[o] - start[o - 1] != start[o - 1] - start[o - 2]:
            run_lo = o - 1  # the spacing changed: the pair (o - 1, o) starts a run
        if o + 1 - run_lo > best_hi - best_lo:
            best_lo, best_hi = run_lo, o + 1
    lo, hi = best_lo, best_hi
    return (lo, hi, int(start[lo + 1] - start[lo]) if hi - lo > 1 else 1)


def _outer_product(factors, dtype) -> np.ndarray:
    d, h, w = (np.asarray(f, dtype=np.float64) for f in factors)
    product = d[:, None, None] * h[None, :, None] * w[None, None, :]
    return np.ascontiguousarray(product, dtype=dtype)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def counts(windows: Windows, dtype) -> np.ndarray:
    """Number of in-bounds elements of every window, shape ``out`` (lifted)."""
    return _outer_product([hi - lo for lo, hi in windows.bounds], dtype)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def average_divisor(
    windows: Windows, kernel, padding, count_include_pad: bool, divisor_override, dtype
) -> np.ndarray:
    """Each window's divisor, shape ``out`` (lifted), by PyTorch's three rules."""
    if divisor_override is not None:
        out = tuple(len(start) for start in windows.start)
        return np.full(out, divisor_override, dtype=dtype)
    if not count_include_pad:
        return counts(windows, dtype)
    # Padding counts, but a ceil-mode overhang beyond the right padding does not.
    return _outer_product(
        [
            np.minimum(start + k, n + p) - start
            for start, k, n, p in zip(windows.start, kernel, windows.spatial, padding, strict=True)
        ],
        dtype,
    )
