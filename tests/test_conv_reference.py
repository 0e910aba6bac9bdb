"""Convolution checked without PyTorch: the naive reference, finite differences, seeds."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close
from naive import conv as naive_conv

import numconv.functional as F

MODES = ["zeros", "reflect", "replicate", "circular"]

# Every test here runs once per algorithm of the dispatch (where it applies).
pytestmark = pytest.mark.usefixtures("each_algorithm")


# ----------------------------------------------------------------- seeds' examples
def test_d2l_cross_correlation():
    x = np.array([[1.0, 2, 3], [2, 3, 4], [3, 4, 5]])
    k = np.array([[1.0, 2], [2, 3]])
    y = F.conv2d(x[None, None], k[None, None])[0, 0]
    np.testing.assert_array_equal(y, [[18, 26], [26, 34]])


def test_d2l_two_channel_example():
    x = np.array([[[0.0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1.0, 2, 3], [4, 5, 6], [7, 8, 9]]])
    k = np.array([[[0.0, 1], [2, 3]], [[1.0, 2], [3, 4]]])
    y = F.conv2d(x, k[None])  # unbatched input
    np.testing.assert_array_equal(y, [[[56, 72], [104, 120]]])


def test_edge_detection_example():
    x = np.ones((6, 8))
    x[:, 2:6] = 0
    y = F.conv2d(x[None, None], np.array([[[[1.0, -1.0]]]]))[0, 0]
    expected = np.zeros((6, 7))
    expected[:, 1], expected[:, 5] = 1, -1
    np.testing.assert_array_equal(y, expected)
    # the transposed image has horizontal edges only, which [1, -1] cannot see
    np.testing.assert_array_equal(F.conv2d(x.T[None, None], np.array([[[[1.0, -1.0]]]])), 0)


def test_pointwise_conv_is_per_pixel_matmul(rng):
    x = rng.standard_normal((2, 5, 4, 6))
    w = rng.standard_normal((3, 5, 1, 1))
    expected = np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x)
    assert_close(F.conv2d(x, w), expected)


# ----------------------------------------------------------------- naive reference
NAIVE_CASES = [
    ((2, 3, 10), (4, 3, 3), dict(stride=2, padding=2, dilation=2)),
    ((2, 4, 7, 8), (6, 2, 3, 2), dict(stride=(1, 2), padding=((2, 1), (0, 3)), groups=2)),
    ((1, 2, 9, 9), (2, 2, 4, 4), dict(stride=3, padding="same")),
    ((1, 2, 5, 6, 4), (4, 1, 2, 3, 2), dict(stride=(2, 1, 1), padding=1, groups=2)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("xs", "ws", "kw"), NAIVE_CASES)
def test_forward_matches_naive(rng, xs, ws, kw, mode):
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    y = getattr(F, f"conv{len(xs) - 2}d")(x, w, b, padding_mode=mode, **kw)
    assert_close(y, naive_conv(x, w, b, padding_mode=mode, **kw))


@pytest.mark.parametrize(
    ("n", "k", "s", "d", "expected"),
    [
        (10, 3, 1, 1, (1, 1)),
        (10, 4, 1, 1, (1, 2)),  # odd total: the extra element after
        (10, 3, 2, 1, (0, 1)),  # TF: out 5, total max(8+3-10, 0) = 1
        (11, 3, 2, 1, (1, 1)),
        (7, 5, 3, 2, (4, 4)),  # e = 9, out 3, total 6 + 9 - 7 = 8
        (4, 1, 3, 1, (0, 0)),
    ],
)
def test_same_padding_rule(n, k, s, d, expected):
    """Strided "same" gives ceil(n/s) outputs, with the documented pads."""
    x = np.arange(n, dtype=np.float64)[None, None]
    w = np.ones((1, 1, k))
    y = F.conv1d(x, w, stride=s, padding="same", dilation=d)
    assert y.shape[-1] == -(-n // s)
    explicit = F.conv1d(x, w, stride=s, padding=(expected,), dilation=d)
    np.testing.assert_array_equal(y, explicit)


# ----------------------------------------------------------------- finite differences
FD_CASES = [
    (1, (2, 3, 9), (4, 3, 3), dict(stride=2, padding=2, dilation=2)),
    (2, (2, 4, 6, 7), (4, 2, 3, 2), dict(stride=(2, 1), padding=((2, 1), (1, 2)), groups=2)),
    (2, (1, 2, 7, 6), (3, 2, 3, 3), dict(stride=2, padding="same")),
    (3, (1, 2, 4, 5, 4), (2, 2, 2, 3, 2), dict(stride=(1, 2, 1), padding=1)),
]


def _fd_gradient(f, a, h=1e-6):
    """Central differences of scalar ``f`` at every element of ``a`` (float64)."""
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        plus, minus = a.copy(), a.copy()
        plus[i] += h
        minus[i] -= h
        g[i] = (f(plus) - f(minus)) / (2 * h)
    return g


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("nd", "xs", "ws", "kw"), FD_CASES)
def test_gradients_match_finite_differences(rng, nd, xs, ws, kw, mode):
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    conv = getattr(F, f"conv{nd}d")
    kw = {**kw, "padding_mode": mode}
    gy = rng.standard_normal(conv(x, w, b, **kw).shape)

    def loss(x_, w_, b_):
        return float(np.sum(conv(x_, w_, b_, **kw) * gy))

    gx = getattr(F, f"conv{nd}d_input_grad")(x.shape, w, gy, **kw)
    gw = getattr(F, f"conv{nd}d_weight_grad")(x, w.shape, gy, **kw)
    # The loss is linear in each argument, so central differences are exact up
    # to rounding: 1e-7 relative is a strict bound.
    for got, fd in (
        (gx, _fd_gradient(lambda a: loss(a, w, b), x)),
        (gw, _fd_gradient(lambda a: loss(x, a, b), w)),
        (F.conv_bias_grad(gy), _fd_gradient(lambda a: loss(x, w, a), b)),
    ):
        np.testing.assert_allclose(got, fd, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("mode", MODES)
def test_input_grad_is_adjoint_of_forward(rng, mode):
    """⟨conv(x), gy⟩ = ⟨x, input_grad(gy)⟩ on a larger case than finite differences allow."""
    x, w = rng.standard_normal((2, 6, 13, 11)), rng.standard_normal((9, 2, 3, 4))
    kw = dict(stride=(2, 3), padding=((3, 2), (1, 3)), dilation=(2, 1), groups=3, padding_mode=mode)
    y = F.conv2d(x, w, **kw)
    gy = rng.standard_normal(y.shape)
    gx = F.conv2d_input_grad(x.shape, w, gy, **kw)
    gw = F.conv2d_weight_grad(x, w.shape, gy, **kw)
    assert np.isclose(np.vdot(y, gy), np.vdot(x, gx), rtol=1e-12)
    assert np.isclose(np.vdot(y, gy), np.vdot(w, gw), rtol=1e-12)
