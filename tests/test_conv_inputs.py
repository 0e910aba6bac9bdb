"""How convolution treats its inputs: dtypes, array-likes, batching, determinism."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pytest
from helpers import assert_close
from naive import conv as naive_conv

import numconv.functional as F

KW = dict(stride=2, padding=1, dilation=1, groups=2)


def all_three(x, w, gy, **kw):
    return (
        F.conv2d(x, w, None, **kw),
        F.conv2d_input_grad(np.shape(x), w, gy, **kw),
        F.conv2d_weight_grad(x, np.shape(w), gy, **kw),
    )


@pytest.fixture
def problem(rng):
    x = rng.standard_normal((2, 4, 7, 6))
    w = rng.standard_normal((6, 2, 3, 3))
    gy = rng.standard_normal(F.conv2d(x, w, **KW).shape)
    return x, w, gy


def test_float16_computes_in_float32_and_returns_float16(problem):
    x, w, gy = problem
    got = all_three(x.astype(np.float16), w.astype(np.float16), gy.astype(np.float16), **KW)
    via32 = all_three(
        x.astype(np.float16).astype(np.float32),
        w.astype(np.float16).astype(np.float32),
        gy.astype(np.float16).astype(np.float32),
        **KW,
    )
    for g, r in zip(got, via32):
        assert g.dtype == np.float16
        np.testing.assert_array_equal(g, r.astype(np.float16))


@pytest.mark.parametrize(
    ("dx", "dw", "expected"),
    [
        (np.float32, np.float64, np.float64),
        (np.float16, np.float32, np.float32),
        (np.float64, np.float16, np.float64),
    ],
)
def test_mixed_dtypes_promote_like_numpy(problem, dx, dw, expected):
    x, w, _gy = problem
    y = F.conv2d(x.astype(dx), w.astype(dw), **KW)
    assert y.dtype == expected
    assert_close(y, naive_conv(x.astype(dx), w.astype(dw), **KW), expected)


def test_bias_dtype_takes_part_in_promotion(problem):
    x, w, _ = problem
    y = F.conv2d(x.astype(np.float32), w.astype(np.float32), np.zeros(6), **KW)
    assert y.dtype == np.float64


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a.tolist(),
        lambda a: np.asfortranarray(a),
        lambda a: a[..., ::-1].copy()[..., ::-1],  # negative strides
        lambda a: np.lib.stride_tricks.as_strided(a, a.shape, a.strides, writeable=False),
        lambda a: np.repeat(a, 2, axis=-1)[..., ::2],  # non-contiguous view
    ],
    ids=["list", "fortran", "negative-strides", "read-only", "strided-view"],
)
def test_array_likes_give_the_same_result(problem, make):
    x, w, gy = problem
    expected = all_three(x, w, gy, **KW)
    for got, ref in zip(all_three(make(x), make(w), make(gy), **KW), expected):
        np.testing.assert_array_equal(got, ref)
        assert got.flags.c_contiguous and got.flags.writeable


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_inputs_are_never_modified(problem, mode):
    x, w, gy = problem
    b = np.arange(6.0)
    saved = [a.copy() for a in (x, w, gy, b)]
    F.conv2d(x, w, b, padding_mode=mode, **KW)
    F.conv2d_input_grad(x.shape, w, gy, padding_mode=mode, **KW)
    F.conv2d_weight_grad(x, w.shape, gy, padding_mode=mode, **KW)
    F.conv_bias_grad(gy)
    for a, s in zip((x, w, gy, b), saved):
        np.testing.assert_array_equal(a, s)


def test_unbatched_equals_batched(problem):
    x, w, gy = problem
    batched = all_three(x[:1], w, gy[:1], **KW)
    unbatched = all_three(x[0], w, gy[0], **KW)
    np.testing.assert_array_equal(unbatched[0], batched[0][0])
    np.testing.assert_array_equal(unbatched[1], batched[1][0])
    np.testing.assert_array_equal(unbatched[2], batched[2])
    gw, gb = F.conv2d_param_grads(x[0], w.shape, gy[0], **KW)
    np.testing.assert_array_equal(gw, batched[2])
    np.testing.assert_array_equal(gb, F.conv_bias_grad(gy[:1]))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize(
    "shape, kernel, kw",
    [
        ((64, 3, 32, 32), (32, 3, 3, 3), dict(padding=1)),  # cifar_first: tap sums, fused bias
        ((3, 4, 90), (6, 4, 5), dict(stride=2, padding=1)),  # one output row: W phases
        ((2, 6, 9, 9), (6, 2, 3, 3), dict(padding=1, groups=3)),  # another algorithm
    ],
)
def test_param_grads_are_the_weight_and_bias_grads(rng, dtype, shape, kernel, kw):
    """The weight gradient exactly as conv*d_weight_grad's; the bias within the dtype's
    rounding of the exact channel sums (fused, it sums in the dtype within a block)."""
    nd = len(shape) - 2
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(kernel).astype(dtype)
    gy = rng.standard_normal(getattr(F, f"conv{nd}d")(x, w, **kw).shape).astype(dtype)
    saved = x.copy(), gy.copy()
    gw, gb = getattr(F, f"conv{nd}d_param_grads")(x, kernel, gy, **kw)
    np.testing.assert_array_equal(gw, getattr(F, f"conv{nd}d_weight_grad")(x, kernel, gy, **kw))
    exact = gy.astype(np.float64).sum(axis=(0, *range(2, gy.ndim)))
    assert gb.dtype == dtype and gb.shape == (kernel[0],)
    assert_close(gb, exact, dtype)
    np.testing.assert_array_equal(x, saved[0])  # inputs untouched
    np.testing.assert_array_equal(gy, saved[1])


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_empty_batch(nd):
    x = np.zeros((0, 4) + (5,) * nd, dtype=np.float32)
    w = np.ones((6, 2) + (3,) * nd, dtype=np.float32)
    conv = getattr(F, f"conv{nd}d")
    y = conv(x, w, np.ones(6, np.float32), stride=2, padding=1, groups=2)
    assert y.shape == (0, 6) + (3,) * nd and y.dtype == np.float32
    gx = getattr(F, f"conv{nd}d_input_grad")(x.shape, w, y, stride=2, padding=1, groups=2)
    assert gx.shape == x.shape
    gw = getattr(F, f"conv{nd}d_weight_grad")(x, w.shape, y, stride=2, padding=1, groups=2)
    np.testing.assert_array_equal(gw, np.zeros(w.shape))
    np.testing.assert_array_equal(F.conv_bias_grad(y), np.zeros(6))
    gw, gb = getattr(F, f"conv{nd}d_param_grads")(x, w.shape, y, stride=2, padding=1, groups=2)
    np.testing.assert_array_equal(gw, np.zeros(w.shape))
    np.testing.assert_array_equal(gb, np.zeros(6))
    assert gw.dtype == gb.dtype == np.float32


def test_results_are_bitwise_reproducible(rng):
    x = rng.standard_normal((4, 16, 20, 20)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((4, 16, 20, 20)).astype(np.float32)
    first = all_three(x, w, gy, padding=1)
    for _ in range(3):
        for a, b in zip(all_three(x, w, gy, padding=1), first):
            assert np.array_equal(a, b)


def test_concurrent_calls_from_threads(rng):
    """Compile first, then call from a pool: kernels release the GIL and share no state."""
    problems = [
        (rng.standard_normal((2, 4, 9, 9)), rng.standard_normal((4, 4, 3, 3))) for _ in range(6)
    ]
    expected = [F.conv2d(x, w, padding=1) for x, w in problems]
    with ThreadPoolExecutor(max_workers=3) as pool:
        got = list(pool.map(lambda p: F.conv2d(p[0], p[1], padding=1), problems))
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


def test_nan_and_inf_propagate(problem):
    x, w, _ = problem
    x = x.copy()
    x[0, 0, 3, 3] = np.nan
    x[1, 1, 0, 0] = np.inf
    y = F.conv2d(x, w, **KW)
    ref = naive_conv(x, w, **KW)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(ref))


@pytest.mark.parametrize("shape", [(3, 7, 50), (1, 3, 4, 5), (2, 1, 9)])
def test_bias_grad_split_by_channels_gives_the_serial_sums(monkeypatch, rng, shape):
    """Large output gradients are summed a range of channels per thread: every channel's
    sum is the serial kernel's, bit for bit, at any thread count."""
    gy = rng.standard_normal(shape).astype(np.float32)
    serial = F.conv_bias_grad(gy)
    monkeypatch.setattr(F, "BIAS_SPLIT_BYTES", 0)
    previous = numba.get_num_threads()
    try:
        for threads in range(1, numba.config.NUMBA_NUM_THREADS + 1):
            numba.set_num_threads(threads)
            # Both signs in turn: a channel left unsummed cannot pass on the last call's value.
            for sign in (-1, 1):
                np.testing.assert_array_equal(F.conv_bias_grad(sign * gy), sign * serial)
    finally:
        numba.set_num_threads(previous)
    exact = gy.astype(np.float64).sum(axis=(0, *range(2, gy.ndim)))
    np.testing.assert_allclose(serial, exact, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 5, 7), (2, 4, 6, 9), (2, 3, 4, 5, 6), (1, 2, 0, 3)])
def test_bias_grad_is_the_channel_sum(rng, dtype, shape):
    """Summed in float64 whatever the dtype, then cast: within one rounding of the exact sum."""
    gy = (rng.standard_normal(shape) * 100).astype(dtype)
    exact = np.array([math.fsum(gy[:, c].astype(np.float64).ravel()) for c in range(shape[1])])
    got = F.conv_bias_grad(gy)
    assert got.dtype == dtype and got.shape == (shape[1],)
    # Float64 running sums (bound: terms · eps · Σ|g|), then one rounding to dtype.
    terms = gy[:, 0].size
    absolute = np.abs(gy.astype(np.float64)).sum(axis=(0, *range(2, gy.ndim)))
    error = np.abs(got.astype(np.float64) - exact)
    assert np.all(error <= np.finfo(dtype).eps * np.abs(exact) + terms * 2e-16 * absolute)
    # A non-contiguous view gives the same sums.
    view = np.swapaxes(np.swapaxes(gy, 0, 1).copy(), 0, 1)
    np.testing.assert_array_equal(F.conv_bias_grad(view), got)
