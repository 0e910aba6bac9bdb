"""Where each pooling window lies, per spatial dim, as small int arrays for the kernels.

A window along one dim is described by its first tap (which may lie in the
left padding), its number of taps and the step between taps. Regular pooling
has ``start = o·s − p``, ``k`` taps and step ``d``; adaptive pooling has
``start = ⌊o·n/out⌋``, ``⌈(o+1)·n/out⌉ − start`` taps and step 1. Because every
window is a product of per-dim ranges, so is every divisor of average pooling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .plan import PlaneMap, PoolPlan


@dataclass(frozen=True)
class Windows:
    """Per-dim window geometry (three dims, as the plans are lifted)."""

    start: tuple[np.ndarray, np.ndarray, np.ndarray]
    taps: tuple[np.ndarray, np.ndarray, np.ndarray]
    step: tuple[int, int, int]

    def kernel_args(self) -> tuple:
        """Arguments for :func:`numconv.kernels.pool.window_max`."""
        return (*self.start, *self.taps, *self.step)

    def bounds(self, spatial) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """``(lo, hi)`` per dim: the in-bounds part of each contiguous (step 1) window."""
        assert self.step == (1, 1, 1), "bounds() describes contiguous windows only"
        return tuple(
            (np.maximum(start, 0), np.minimum(start + taps, n))
            for start, taps, n in zip(self.start, self.taps, spatial, strict=True)
        )


def _int_array(values) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.int64)


def regular_windows(plan: PoolPlan) -> Windows:
    """Windows of a pooling with kernel size, stride, padding and dilation."""
    return Windows(
        start=tuple(
            _int_array(np.arange(out) * s - p)
            for out, s, p in zip(plan.out, plan.stride, plan.padding, strict=True)
        ),
        taps=tuple(
            _int_array(np.full(out, k)) for out, k in zip(plan.out, plan.kernel, strict=True)
        ),
        step=plan.dilation,
    )


def adaptive_windows(plan: PlaneMap) -> Windows:
    """Adaptive bins: bin ``o`` of ``out`` over ``n`` covers ``[⌊o·n/out⌋, ⌈(o+1)·n/out⌉)``."""
    starts, taps = [], []
    for n, out in zip(plan.spatial, plan.out, strict=True):
        o = np.arange(out)
        start = o * n // out
        stop = -((-(o + 1) * n) // out)  # ceiling division in integers
        starts.append(_int_array(start))
        taps.append(_int_array(stop - start))
    return Windows(start=tuple(starts), taps=tuple(taps), step=(1, 1, 1))


def _outer_product(factors, dtype) -> np.ndarray:
    d, h, w = (np.asarray(f, dtype=np.float64) for f in factors)
    product = d[:, None, None] * h[None, :, None] * w[None, None, :]
    return np.ascontiguousarray(product, dtype=dtype)


def counts(windows: Windows, spatial, dtype) -> np.ndarray:
    """Number of in-bounds elements of every window, shape ``out`` (lifted)."""
    return _outer_product([hi - lo for lo, hi in windows.bounds(spatial)], dtype)


def average_divisor(
    plan: PoolPlan, windows: Windows, count_include_pad: bool, divisor_override, dtype
) -> np.ndarray:
    """Each window's divisor, shape ``out`` (lifted), by PyTorch's three rules."""
    if divisor_override is not None:
        return np.full(plan.out, divisor_override, dtype=dtype)
    if not count_include_pad:
        return counts(windows, plan.spatial, dtype)
    # Padding counts, but a ceil-mode overhang beyond the right padding does not.
    return _outer_product(
        [
            np.minimum(start + k, n + p) - start
            for start, k, n, p in zip(
                windows.start, plan.kernel, plan.spatial, plan.padding, strict=True
            )
        ],
        dtype,
    )
