"""The pooling kernels' two paths per row agree exactly.

Kernels run the output columns whose windows lie inside the input along W
(the "inner segment") without bounds checks, and the rest window by window. Disabling
the inner segment must not change a single bit of a forward result, NaN and
ties included. The mean's backward adds overlapping windows' shares in another
order on the two paths, so there they agree to rounding.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from numconv._pool.plan import plan_adaptive, plan_pool
from numconv._pool.windows import _equal_run, adaptive_windows, average_divisor, regular_windows
from numconv.kernels.pool import window_max, window_mean, window_mean_backward

CONFIGS = [
    dict(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False),
    dict(kernel_size=(2, 3), stride=(1, 3), padding=(1, 1), dilation=(1, 2), ceil_mode=True),
    dict(kernel_size=2, stride=1, padding=0, dilation=1, ceil_mode=False),
    dict(kernel_size=(3, 5), stride=(2, 4), padding=(1, 2), dilation=1, ceil_mode=True),
    # The windows the mean's row helpers compile specially: (stride, taps) = (2, 2), (1, 3).
    dict(kernel_size=2, stride=2, padding=1, dilation=1, ceil_mode=True),
    dict(kernel_size=3, stride=1, padding=1, dilation=1, ceil_mode=False),
]


def _both(plan):
    windows = regular_windows(plan)
    assert windows.inner_w[1] > windows.inner_w[0], "the case must have an inner segment"
    border_only = dataclasses.replace(windows, inner_w=(0, 0, windows.inner_w[2]))
    return windows, border_only


@pytest.mark.parametrize("kw", CONFIGS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_paths_agree(rng, kw, dtype):
    x = rng.integers(0, 3, (3, 1, 9, 23)).astype(dtype)  # many ties
    x[0, 0, 4, 7] = x[1, 0, 2, 11] = x[2, 0, 0, 0] = np.nan
    plan = plan_pool(2, (3, 1, 9, 23), **kw)
    results = []
    for windows in _both(plan):
        y = np.empty((3, *plan.out), dtype)
        idx = np.empty((3, *plan.out), np.int64)
        window_max(x, y, idx, *windows.kernel_args())
        results.append((y, idx))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


@pytest.mark.parametrize("kw", [c for c in CONFIGS if c["dilation"] == 1])
@pytest.mark.parametrize("include_pad", [True, False])
def test_mean_paths_agree(rng, kw, include_pad):
    x = rng.standard_normal((3, 1, 9, 23))
    plan = plan_pool(2, (3, 1, 9, 23), **kw)
    forward, backward = [], []
    for windows in _both(plan):
        divisor = average_divisor(windows, plan.kernel, plan.padding, include_pad, None,
                                  np.dtype(np.float64))  # fmt: skip
        y = np.empty((3, *plan.out))
        window_mean(x, y, *windows.bounds_args, divisor, *windows.inner_w)
        forward.append(y)
        gx = np.full_like(x, np.nan)  # the kernel zeroes it
        window_mean_backward(y, gx, *windows.bounds_args, divisor, *windows.inner_w)
        backward.append(gx)
    np.testing.assert_array_equal(forward[0], forward[1])
    np.testing.assert_allclose(backward[0], backward[1], rtol=1e-14, atol=1e-16)


def _bins(n, out):
    o = np.arange(out)
    start = o * n // out
    return start, -((-(o + 1) * n) // out) - start


def _longest_equal_run_by_search(start, taps):
    best = 1
    for lo in range(len(start)):
        for hi in range(lo + 2, len(start) + 1):
            if len(set(taps[lo:hi])) == 1 and len(set(np.diff(start[lo:hi]))) == 1:
                best = max(best, hi - lo)
    return best


@pytest.mark.parametrize("n", [1, 2, 5, 7, 10, 13, 14, 23])
@pytest.mark.parametrize("out", [1, 2, 3, 4, 7, 9, 16])
def test_adaptive_inner_segment_is_the_longest_equal_run(n, out):
    start, taps = _bins(n, out)
    lo, hi, step = _equal_run(start, taps)
    np.testing.assert_array_equal(taps[lo:hi], taps[lo])
    np.testing.assert_array_equal(start[lo:hi], start[lo] + step * np.arange(hi - lo))
    assert hi - lo == _longest_equal_run_by_search(start, taps)


@pytest.mark.parametrize(("spatial", "out"), [((9, 14), (4, 7)), ((6, 10), (4, 4)), ((5, 7), 3)])
def test_adaptive_max_paths_agree(rng, spatial, out):
    x = rng.integers(0, 3, (3, 1, *spatial)).astype(np.float64)  # many ties
    x[0, 0, 1, 2] = np.nan
    plan = plan_adaptive(2, x.shape, out)
    windows = adaptive_windows(plan)
    assert windows.inner_w[1] > windows.inner_w[0], "the case must have an inner segment"
    border_only = dataclasses.replace(windows, inner_w=(0, 0, 1))
    results = []
    for w in (windows, border_only):
        y = np.empty((plan.planes, *plan.out))
        idx = np.empty(y.shape, np.int64)
        window_max(x.reshape(plan.planes, *plan.spatial), y, idx, *w.kernel_args())
        results.append((y, idx))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_results_do_not_depend_on_the_thread_count(rng):
    """One plane per parallel iteration: no thread ever shares an output element."""
    import numba

    import numconv.functional as F

    x = rng.standard_normal((4, 5, 12, 13))
    gy7, gy6 = rng.standard_normal((4, 5, 7, 7)), rng.standard_normal((4, 5, 6, 7))
    runs = []
    for threads in (1, 2):
        numba.set_num_threads(threads)
        try:
            runs.append([
                F.max_pool2d_backward(gy7, x, 3, 2, 1, ceil_mode=True),
                F.avg_pool2d_backward(gy7, x, 3, 2, 1, ceil_mode=True),
                F.lp_pool2d_backward(gy6[..., :6], np.abs(x), 2, 2),
                F.adaptive_avg_pool2d_backward(gy6, x, (6, 7)),
            ])  # fmt: skip
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for one, two in zip(*runs, strict=True):
        np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("elements", [1, 3, 4, 7, 8, 9, 15, 16, 17, 49, 100])
def test_plane_mean_sums_whole_vectors_and_the_tail(dtype, elements):
    """Global average pooling's kernel at row lengths below, at and past a vector (4, 8 or
    16 lanes) against NumPy's float64 mean; rows of ones give exact means, and a NaN reaches
    only its own row's mean."""
    from numconv.kernels.pool import plane_mean

    rows = 131  # not a whole number of the kernel's 64 blocks
    x = np.random.default_rng(elements).standard_normal((rows, elements)).astype(dtype)
    x[5] = 1
    x[7, elements - 1] = np.nan  # the last value: in the tail when there is one
    y = np.full(rows, -7.0, dtype=dtype)
    plane_mean(x, y)
    expected = x.astype(np.float64).mean(axis=1)
    assert y[5] == 1
    assert np.isnan(y[7]) and not np.isnan(np.delete(y, 7)).any()
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(y, expected.astype(dtype), rtol=rtol, atol=rtol)
