"""Transposed convolution against PyTorch float64 autograd, adjointness and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close
from hypothesis import assume, given
from hypothesis import strategies as st

import numconv.functional as F


def _ops(nd):
    return (getattr(F, f"conv_transpose{nd}d"), getattr(F, f"conv_transpose{nd}d_input_grad"),
            getattr(F, f"conv_transpose{nd}d_weight_grad"))  # fmt: skip


def torch_transpose_grads(torch, x, w, b, stride, padding, output_padding, groups, dilation):
    """PyTorch float64 autograd of conv_transpose: (y, gx, gw, gb, gy)."""
    nd = x.ndim - 2
    tx = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
    tw = torch.tensor(np.asarray(w, np.float64), requires_grad=True)
    tb = None if b is None else torch.tensor(np.asarray(b, np.float64), requires_grad=True)
    conv_transpose = getattr(torch.nn.functional, f"conv_transpose{nd}d")
    ty = conv_transpose(tx, tw, tb, stride, padding, output_padding, groups, dilation)
    gy = np.random.default_rng(3).standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(gy))
    gb = None if b is None else tb.grad.numpy()
    return ty.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), gb, gy


def check(torch, rng, shape, c_out, kernel, stride=1, padding=0, output_padding=0, groups=1,
          dilation=1, bias=True, dtype=np.float64):  # fmt: skip
    nd = len(kernel)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((shape[1], c_out // groups, *kernel)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype) if bias else None
    args = (stride, padding, output_padding, groups, dilation)
    ref_y, ref_gx, ref_gw, ref_gb, gy = torch_transpose_grads(torch, x, w, b, *args)
    forward, input_grad, weight_grad = _ops(nd)
    gy = gy.astype(dtype)
    y = forward(x, w, b, *args)
    gx = input_grad(x.shape, w, gy, *args)
    gw = weight_grad(x, w.shape, gy, *args)
    for name, got, ref in (("y", y, ref_y), ("gx", gx, ref_gx), ("gw", gw, ref_gw)):
        assert got.dtype == dtype, name
        assert_close(got, ref, dtype)
    if bias:
        assert_close(F.conv_bias_grad(gy), ref_gb, dtype)


# (input shape, C_out, kernel, stride, padding, output_padding, groups, dilation)
CASES = [
    ((2, 3, 7), 4, (3,), 1, 0, 0, 1, 1),
    ((2, 4, 6), 6, (4,), 2, 1, 1, 2, 1),
    ((1, 3, 5), 3, (3,), 3, 2, 2, 3, 2),
    ((2, 2, 5), 3, (2,), 1, 0, 1, 1, 2),  # output_padding >= stride, allowed by the dilation
    ((2, 3, 5, 6), 4, (3, 3), 2, 1, 1, 1, 1),  # the upsampling layer of a decoder
    ((1, 4, 4, 5), 2, (2, 3), (2, 3), (0, 1), (1, 2), 2, 1),
    ((2, 6, 4, 4), 6, (3, 3), 1, 1, 0, 6, 1),  # depthwise
    ((1, 2, 5, 4), 4, (3, 2), (1, 2), (2, 0), (0, 1), 1, (2, 1)),
    ((1, 2, 3, 4, 3), 4, (2, 3, 2), 2, (0, 1, 0), (1, 0, 1), 2, 1),
    ((2, 3, 3, 3, 3), 2, (3, 3, 3), (1, 2, 1), 1, 0, 1, (2, 1, 1)),
]


@pytest.mark.parametrize("case", CASES)
def test_matches_torch(torch, rng, case):
    check(torch, rng, *case)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_dtypes_and_bias(torch, rng, dtype, bias):
    check(torch, rng, (2, 4, 5, 6), 6, (3, 3), 2, 1, 1, 2, 1, bias=bias, dtype=dtype)


@given(
    nd=st.integers(1, 3),
    n=st.integers(1, 2),
    size=st.integers(1, 5),
    k=st.integers(1, 3),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 2),
    padding=st.integers(0, 2),
    op=st.integers(0, 2),
    groups=st.sampled_from([1, 2]),
)
def test_hypothesis_configurations(torch, nd, n, size, k, stride, dilation, padding, op, groups):
    assume(op < stride or op < dilation)
    assume((size - 1) * stride - 2 * padding + dilation * (k - 1) + 1 + op >= 1)
    check(torch, np.random.default_rng(size * 7 + k), (n, 2, *(size,) * nd), 2 * groups // 1,
          (k,) * nd, stride, padding, op, groups, dilation)  # fmt: skip


def test_output_size_selects_output_padding(torch, rng):
    x = rng.standard_normal((1, 2, 4, 5))
    w = rng.standard_normal((2, 3, 3, 3))
    for size in [(7, 9), (8, 10), (1, 3, 8, 9)]:
        y = F.conv_transpose2d(x, w, stride=2, padding=1, output_size=size)
        op = tuple(s - m for s, m in zip(size[-2:], (7, 9), strict=True))
        ref = torch.nn.functional.conv_transpose2d(
            torch.tensor(x), torch.tensor(w), stride=2, padding=1, output_padding=op
        )
        assert_close(y, ref.numpy())


def test_is_the_adjoint_of_convolution(rng):
    # <conv(x), y> = <x, conv_transpose(y)> for the same weight, stride, padding, dilation.
    x = rng.standard_normal((2, 4, 9, 8))
    w = rng.standard_normal((6, 2, 3, 2))
    kw = dict(stride=(2, 3), padding=(1, 0), dilation=(1, 2), groups=2)
    y = F.conv2d(x, w, **kw)
    c = rng.standard_normal(y.shape)
    back = F.conv_transpose2d(c, w, output_size=x.shape, **kw)
    assert back.shape == x.shape
    assert np.isclose(np.vdot(y, c), np.vdot(x, back), rtol=1e-12)
    # and it is, by definition, the convolution's input gradient
    np.testing.assert_allclose(back, F.conv2d_input_grad(x.shape, w, c, **kw), rtol=1e-12)


def test_per_side_padding_crops_each_side(rng):
    x = rng.standard_normal((1, 2, 5))
    w = rng.standard_normal((2, 3, 3))
    full = F.conv_transpose1d(x, w, stride=2)
    np.testing.assert_allclose(F.conv_transpose1d(x, w, stride=2, padding=((2, 1),)),
                               full[..., 2:-1], rtol=1e-14)  # fmt: skip


def test_finite_differences_without_torch(rng):
    x = rng.standard_normal((1, 2, 3, 3))
    w = rng.standard_normal((2, 2, 2, 3))
    args = (2, 1, 1, 1, 1)
    gy = rng.standard_normal(F.conv_transpose2d(x, w, None, *args).shape)

    def loss(xv, wv):
        return np.vdot(F.conv_transpose2d(xv, wv, None, *args), gy)

    gx = F.conv_transpose2d_input_grad(x.shape, w, gy, *args)
    gw = F.conv_transpose2d_weight_grad(x, w.shape, gy, *args)
    h = 1e-6
    for array, grad, is_x, indices in (
        (x, gx, True, [(0, 0, 0, 0), (0, 1, 1, 2), (0, 1, 2, 2)]),
        (w, gw, False, [(0, 0, 0, 0), (0, 1, 1, 2), (1, 1, 1, 1)]),
    ):
        for index in indices:
            step = np.zeros_like(array)
            step[index] = h
            plus = loss(x + step, w) if is_x else loss(x, w + step)
            minus = loss(x - step, w) if is_x else loss(x, w - step)
            assert np.isclose((plus - minus) / (2 * h), grad[index], rtol=1e-6, atol=1e-8)


def test_unbatched_empty_batch_float16_and_inputs_untouched(rng):
    x = rng.standard_normal((3, 4, 4))
    w = rng.standard_normal((3, 2, 3, 3))
    x_before, w_before = x.copy(), w.copy()
    y = F.conv_transpose2d(x, w, stride=2)
    np.testing.assert_array_equal(y, F.conv_transpose2d(x[None], w, stride=2)[0])
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(w, w_before)
    assert F.conv_transpose2d(np.zeros((0, 3, 4, 4)), w, stride=2).shape == (0, 2, 9, 9)
    half = F.conv_transpose2d(x.astype(np.float16), w.astype(np.float16), stride=2)
    assert half.dtype == np.float16
    np.testing.assert_allclose(half, y, rtol=2e-2, atol=2e-2)
    gx = F.conv_transpose2d_input_grad(x.shape, w, np.ones_like(y), stride=2)
    assert gx.shape == x.shape


BAD = [
    (dict(output_padding=2), ValueError, "output_padding must be smaller"),
    (dict(stride=2, output_padding=2), ValueError, "output_padding must be smaller"),
    (dict(padding="same"), ValueError, "padding"),
    (dict(groups=4), ValueError, "groups=4 must divide"),
    (dict(output_size=(20, 20)), ValueError, r"output_size must lie in \[6, 6\]"),
    (dict(stride=2, output_size=(9, 12)), ValueError, r"\[9, 10\], \[9, 10\]"),
    (dict(output_size=7), TypeError, "output_size"),
    (dict(padding=5), ValueError, "padding too large"),
    (dict(stride=0), ValueError, "stride"),
    (dict(output_padding=-1), ValueError, "output_padding"),
    (dict(dilation=1.5), TypeError, "dilation"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD)
def test_bad_arguments(rng, kwargs, error, match):
    x = rng.standard_normal((1, 2, 4, 4))
    w = rng.standard_normal((2, 3, 3, 3))
    with pytest.raises(error, match=match):
        F.conv_transpose2d(x, w, **kwargs)


def test_bad_shapes(rng):
    w = rng.standard_normal((2, 3, 3, 3))
    with pytest.raises(ValueError, match=r"weight\.shape\[0\]"):
        F.conv_transpose2d(np.ones((1, 3, 4, 4)), w)
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        F.conv_transpose2d(np.ones((1, 2, 4, 4)), w, np.ones(2))
    with pytest.raises(ValueError, match="x must have shape"):
        F.conv_transpose2d(np.ones((2, 4, 4)[:1]), w)
    with pytest.raises(ValueError, match="zero-size"):
        F.conv_transpose2d(np.ones((1, 2, 0, 4)), w)
    with pytest.raises(TypeError, match="x must have dtype"):
        F.conv_transpose2d(np.ones((1, 2, 4, 4), dtype=int), w)
    with pytest.raises(ValueError, match="grad_output must have the forward output"):
        F.conv_transpose2d_input_grad((1, 2, 4, 4), w, np.ones((1, 3, 5, 5)))
    with pytest.raises(ValueError, match="weight_shape"):
        F.conv_transpose2d_weight_grad(np.ones((1, 2, 4, 4)), (2, 3, 3), np.ones((1, 3, 6, 6)))


def test_input_is_extended_to_the_convolutions_output_size():
    # output_padding 1 >= stride 1 (allowed by dilation 2): the convolution of the
    # 8-long output is 6 long, one more than x. The algorithms are promised arrays
    # of their plan's shapes, so x reaches them zero-extended to 6.
    from numconv._transpose import _extended, plan_conv_transpose

    plan = plan_conv_transpose(1, (2, 2, 5), (2, 3, 2), 1, 0, 1, 1, 2, None)
    assert plan.output_shape == (2, 3, 8) and plan.conv.out[-1] == 6
    x5 = np.ones(plan.input5)
    extended = _extended(x5, plan, np.float64)
    assert extended.shape == plan.conv.output5
    np.testing.assert_array_equal(extended[..., :5], x5)
    assert not extended[..., 5:].any()
