"""LP pooling against PyTorch, a direct formula and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close, torch_with_grad
from hypothesis import given
from hypothesis import strategies as st

import numconv.functional as F


def check_lp(torch, x, nd, norm_type, **kw):
    function = getattr(torch.nn.functional, f"lp_pool{nd}d")
    torch_kw = dict(kw)
    if nd == 1:  # PyTorch's lp_pool1d takes only plain ints
        torch_kw.update({k: v[0] for k, v in kw.items() if isinstance(v, tuple)})
    (ref_y,), gy, ref_gx = torch_with_grad(torch, function, x, norm_type, **torch_kw)
    y = getattr(F, f"lp_pool{nd}d")(x, norm_type, **kw)
    assert y.dtype == x.dtype
    np.testing.assert_allclose(y, ref_y, rtol=1e-5 if x.dtype == np.float32 else 1e-12)
    gx = getattr(F, f"lp_pool{nd}d_backward")(gy.astype(x.dtype), x, norm_type, **kw)
    np.testing.assert_allclose(gx, ref_gx, rtol=1e-4 if x.dtype == np.float32 else 1e-10,
                               atol=1e-12)  # fmt: skip


CASES = [
    (1, (2, 3, 11), 2, dict(kernel_size=3, stride=2)),
    (1, (2, 2, 10), 1, dict(kernel_size=4, stride=3, ceil_mode=True)),
    (2, (2, 3, 9, 8), 2, dict(kernel_size=3, stride=2, ceil_mode=True)),  # overhang scaled
    (2, (1, 2, 7, 9), 3, dict(kernel_size=(2, 3), stride=(1, 2))),
    (2, (2, 2, 6, 6), 1.5, dict(kernel_size=2)),
    (2, (1, 2, 8, 8), 4, dict(kernel_size=3, stride=1)),  # heavy overlap
    (3, (1, 2, 5, 6, 7), 2, dict(kernel_size=(2, 3, 2), stride=2, ceil_mode=True)),
    (3, (2, 1, 4, 5, 6), 0.5, dict(kernel_size=2, stride=1)),
]


@pytest.mark.parametrize(("nd", "shape", "p", "kw"), CASES)
def test_matches_torch(torch, rng, nd, shape, p, kw):
    # Positive data: a negative sum gives NaN for non-integer 1/p (tested below).
    check_lp(torch, rng.uniform(0.1, 2.0, shape), nd, p, **kw)


@pytest.mark.parametrize("p", [1, 2, 3, np.inf])
def test_signed_data_and_nan_like_torch(torch, rng, p):
    check_lp(torch, rng.standard_normal((2, 3, 8, 9)), 2, p, kernel_size=2, stride=2)


def test_is_the_p_norm_of_each_window(rng):
    x = rng.uniform(0.1, 2.0, (2, 3, 6, 6))
    y = F.lp_pool2d(x, 3, 2)
    windows = x.reshape(2, 3, 3, 2, 3, 2)
    assert_close(y, (windows**3).sum(axis=(3, 5)) ** (1 / 3))


def test_zero_sum_windows_have_zero_gradient(torch):
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 2:, 2:] = [[1.0, 2.0], [3.0, 4.0]]
    gx = F.lp_pool2d_backward(np.ones((1, 1, 2, 2)), x, 2, 2)
    assert np.all(np.isfinite(gx)) and np.all(gx[0, 0, :2, :] == 0) and np.all(gx[0, 0, :, :2] == 0)
    check_lp(torch, x, 2, 2, kernel_size=2)


def test_gradient_by_finite_differences(rng):
    x = rng.uniform(0.5, 2.0, (1, 2, 5, 5))
    kw = dict(norm_type=2.5, kernel_size=2, stride=1)
    g = rng.standard_normal(F.lp_pool2d(x, **kw).shape)
    gx = F.lp_pool2d_backward(g, x, **kw)
    step = 1e-6
    for index in [(0, 0, 0, 0), (0, 1, 2, 3), (0, 0, 4, 4), (0, 1, 2, 2)]:
        plus, minus = x.copy(), x.copy()
        plus[index] += step
        minus[index] -= step
        numeric = np.vdot(g, F.lp_pool2d(plus, **kw) - F.lp_pool2d(minus, **kw)) / (2 * step)
        assert np.isclose(gx[index], numeric, rtol=1e-6)


def test_float32_float16_and_unbatched(torch, rng):
    x = rng.uniform(0.1, 2.0, (3, 10, 9))
    check_lp(torch, x.astype(np.float32), 2, 2, kernel_size=3, stride=2)
    y16 = F.lp_pool2d(x.astype(np.float16), 2, 3, stride=2)
    assert y16.dtype == np.float16
    assert_close(y16, F.lp_pool2d(x, 2, 3, stride=2), np.float16)


@given(
    nd=st.integers(1, 3),
    p=st.sampled_from([1, 2, 3, 0.75, 2.5, np.inf]),
    data=st.data(),
)
def test_random_configurations_match_torch(torch, nd, p, data):
    kernel = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
    spatial = tuple(data.draw(st.integers(k, 8)) for k in kernel)
    x = np.random.default_rng(nd).uniform(0.1, 2.0, (2, 2, *spatial))
    check_lp(torch, x, nd, p, kernel_size=kernel, stride=stride, ceil_mode=data.draw(st.booleans()))


BAD = [
    (lambda: F.lp_pool2d(np.ones((1, 1, 6, 6)), 0, 2), ValueError, "norm_type must be"),
    (lambda: F.lp_pool2d(np.ones((1, 1, 6, 6)), -2, 2), ValueError, "norm_type must be"),
    (lambda: F.lp_pool2d(np.ones((1, 1, 6, 6)), -np.inf, 2), ValueError, "norm_type"),
    (lambda: F.lp_pool2d(np.ones((1, 1, 6, 6)), np.nan, 2), ValueError, "norm_type"),
    (lambda: F.lp_pool2d(np.ones((1, 1, 6, 6)), "2", 2), TypeError, "norm_type"),
    (lambda: F.lp_pool2d(np.ones((1, 1, 6, 6)), True, 2), TypeError, "norm_type"),
    (lambda: F.lp_pool1d(np.ones((1, 1, 2)), 2, 3), ValueError, "larger than"),
    (lambda: F.lp_pool2d_backward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 6, 6)), 2, 2),
     ValueError, "grad_output must have"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "match"), BAD)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
