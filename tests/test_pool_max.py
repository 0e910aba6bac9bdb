"""Max and min pooling against PyTorch: values, indices and gradients."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import SEED_6X6
from hypothesis import assume, given
from hypothesis import strategies as st

import numconv.functional as F


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (dict(kernel_size=2, stride=2), [[7, 6, 8], [7, 9, 5], [9, 9, 9]]),
        (dict(kernel_size=2, stride=2, padding=1),
         [[2, 7, 6, 5], [0, 4, 8, 5], [9, 9, 9, 9], [2, 5, 9, 4]]),
        (dict(kernel_size=2, stride=2, padding=1, dilation=2), [[4, 4, 4], [6, 6, 6], [6, 9, 9]]),
    ],
)  # fmt: skip
def test_seed_examples(kwargs, expected):
    np.testing.assert_array_equal(F.max_pool2d(SEED_6X6[None, None], **kwargs)[0, 0], expected)


def torch_pool(torch, x, gy, nd, negate, **kw):
    """Values, indices and input gradient from PyTorch (min pooling as −max(−x))."""
    tx = torch.tensor(x, requires_grad=True)
    pool = getattr(torch.nn.functional, f"max_pool{nd}d")
    y, idx = pool(-tx if negate else tx, return_indices=True, **kw)
    y = -y if negate else y
    y.backward(torch.tensor(gy))
    return y.detach().numpy(), idx.numpy(), tx.grad.numpy()


def check(torch, x, nd, negate, **kw):
    kind = "min" if negate else "max"
    y, idx = getattr(F, f"{kind}_pool{nd}d")(x, return_indices=True, **kw)
    gy = np.random.default_rng(1).standard_normal(y.shape).astype(x.dtype)
    ref_y, ref_idx, ref_gx = torch_pool(torch, x, gy, nd, negate, **kw)
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_array_equal(idx, ref_idx)
    assert y.dtype == x.dtype and idx.dtype == np.int64
    backward = getattr(F, f"{kind}_pool{nd}d_backward")
    gx = backward(gy, x, **kw)
    np.testing.assert_allclose(gx, ref_gx, rtol=1e-6 if x.dtype == np.float32 else 1e-12)
    np.testing.assert_array_equal(backward(gy, x, indices=idx, **kw), gx)


CASES = [
    (1, (2, 3, 11), dict(kernel_size=3, stride=2, padding=1)),
    (1, (2, 2, 10), dict(kernel_size=4, stride=3, padding=2, dilation=2, ceil_mode=True)),
    (2, (2, 3, 9, 8), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (2, (1, 2, 7, 9), dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), dilation=(2, 1))),
    (2, (2, 2, 6, 6), dict(kernel_size=2)),
    (2, (1, 2, 8, 8), dict(kernel_size=3, stride=1, padding=1)),  # heavy overlap
    (3, (1, 2, 5, 6, 7), dict(kernel_size=(2, 3, 2), stride=2, padding=(1, 1, 0), ceil_mode=True)),
    (3, (2, 1, 4, 5, 6), dict(kernel_size=2, stride=1, dilation=(1, 2, 2))),
]


@pytest.mark.parametrize("negate", [False, True], ids=["max", "min"])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize(("nd", "shape", "kw"), CASES)
def test_matches_torch(torch, rng, nd, shape, kw, ties, negate):
    x = rng.integers(0, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    check(torch, x, nd, negate, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_and_unbatched(torch, rng, dtype):
    x = rng.standard_normal((3, 10, 9)).astype(dtype)
    check(torch, x, 2, False, kernel_size=3, stride=2, padding=1)


def test_nan_propagates_like_torch(torch, rng):
    x = rng.standard_normal((1, 2, 8, 8))
    x[0, 0, 2, 3] = x[0, 0, 3, 3] = x[0, 1, 7, 7] = np.nan
    for negate in (False, True):
        check(torch, x, 2, negate, kernel_size=3, stride=2, padding=1, ceil_mode=True)


def test_all_minus_infinity_window_points_into_the_input(torch):
    x = np.full((1, 1, 4, 4), -np.inf)
    check(torch, x, 2, False, kernel_size=2, stride=2, padding=1)


def test_float16_and_empty_batch():
    x = np.arange(32, dtype=np.float16).reshape(1, 2, 4, 4)
    y = F.max_pool2d(x, 2)
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, F.max_pool2d(x.astype(np.float32), 2))
    empty = F.max_pool2d(np.zeros((0, 3, 4, 4)), 2, return_indices=True)
    assert empty[0].shape == empty[1].shape == (0, 3, 2, 2)
    assert F.max_pool2d_backward(np.zeros((0, 3, 2, 2)), np.zeros((0, 3, 4, 4)), 2).shape == (
        0, 3, 4, 4,
    )  # fmt: skip


def test_inputs_are_not_modified(rng):
    x = rng.standard_normal((2, 2, 6, 6))
    gy = rng.standard_normal((2, 2, 3, 3))
    saved = x.copy(), gy.copy()
    F.min_pool2d(x, 2)
    F.min_pool2d_backward(gy, x, 2)
    np.testing.assert_array_equal(x, saved[0])
    np.testing.assert_array_equal(gy, saved[1])


@st.composite
def pool_configs(draw):
    nd = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    spatial = tuple(draw(st.integers(1, 9)) for _ in range(nd))
    ceil_mode = draw(st.booleans())
    for n, k, p, d in zip(spatial, kernel, padding, dilation):
        assume(n + 2 * p >= d * (k - 1) + 1)
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *spatial)
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
              ceil_mode=ceil_mode)  # fmt: skip
    return nd, shape, kw, draw(st.booleans()), draw(st.booleans())


@given(config=pool_configs(), seed=st.integers(0, 2**16))
def test_random_configurations_match_torch(torch, config, seed):
    nd, shape, kw, ties, negate = config
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    check(torch, x, nd, negate, **kw)


def _valid_but_one(shape, bad, dtype=np.int64):
    indices = np.zeros(shape, dtype)
    indices.reshape(-1)[-2] = bad
    return indices


BAD = [
    (lambda: F.max_pool2d(np.zeros((1, 1, 6, 6)), 3, padding=2), ValueError, "at most half"),
    (lambda: F.max_pool2d(np.zeros((1, 1, 2, 2)), 3, dilation=2), ValueError, "larger than"),
    (lambda: F.max_pool2d(np.zeros((1, 1, 6, 6)), 0), ValueError, "kernel_size must be"),
    (lambda: F.max_pool2d(np.zeros((1, 1, 6, 6)), 2, stride=0), ValueError, "stride must be"),
    (lambda: F.max_pool2d(np.zeros((1, 1, 6, 6)), 2, ceil_mode=1), TypeError, "ceil_mode"),
    (lambda: F.max_pool2d(np.zeros((1, 1, 6, 6)), 2, return_indices=1), TypeError, "return_"),
    (lambda: F.max_pool2d(np.zeros((6, 6)), 2), ValueError, "x must have shape"),
    (lambda: F.max_pool2d(np.zeros((1, 1, 6, 6), int), 2), TypeError, "x must have dtype"),
    (lambda: F.max_pool1d(np.zeros((1, 0, 6)), 2), ValueError, "zero-size"),
    (lambda: F.max_pool2d_backward(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 6, 6)), 2),
     ValueError, "grad_output must have"),
    (lambda: F.max_pool2d_backward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 6, 6)), 2,
                                   indices=np.full((1, 1, 3, 3), 36)), ValueError, r"\[0, 36\)"),
    (lambda: F.max_pool2d_backward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 6, 6)), 2,
                                   indices=np.full((1, 1, 3, 3), -1)), ValueError, "must lie in"),
    (lambda: F.max_pool2d_backward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 6, 6)), 2,
                                   indices=np.zeros((1, 1, 3, 3))), TypeError, "integer array"),
    # One bad index among valid ones, in the last plane: the kernel's own check finds it.
    (lambda: F.max_pool2d_backward(np.zeros((3, 4, 3, 3)), np.zeros((3, 4, 6, 6)), 2,
                                   indices=_valid_but_one((3, 4, 3, 3), 36)), ValueError,
     r"got values in \[0, 36\]"),
    (lambda: F.max_pool2d_backward(np.zeros((3, 4, 3, 3)), np.zeros((3, 4, 6, 6)), 2,
                                   indices=_valid_but_one((3, 4, 3, 3), 2**63, np.uint64)),
     ValueError, r"got values in \[0, 9223372036854775808\]"),
    (lambda: F.max_pool2d_backward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 6, 6)), 2,
                                   indices=np.zeros((1, 3, 3), int)), ValueError, "indices must"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "match"), BAD)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
