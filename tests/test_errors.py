"""Every bad argument gets a ValueError/TypeError that names it (SEMANTICS.md "Errors")."""

from __future__ import annotations

import numpy as np
import pytest

import numconv
import numconv.functional as F

X = np.zeros((2, 4, 8, 8))
W = np.zeros((6, 2, 3, 3))
GY = np.zeros((2, 6, 6, 6))


def conv(**kw):
    args = dict(x=X, weight=W, groups=2)
    args.update(kw)
    return lambda: F.conv2d(**args)


BAD_CALLS = [
    # dtypes
    (conv(x=X.astype(np.int64)), TypeError, "x must have dtype float"),
    (conv(x=X.astype(bool)), TypeError, "x must have dtype"),
    (conv(weight=W.astype(np.complex128)), TypeError, "weight must have dtype"),
    (conv(x=np.array([["a"]])), TypeError, "x must have dtype"),
    (conv(bias=np.zeros(6, np.int32)), TypeError, "bias must have dtype"),
    # ranks and shapes
    (conv(x=np.zeros((4, 8))), ValueError, "x must have shape"),
    (conv(x=np.zeros((2, 4, 8))), ValueError, "x has 2 channels"),  # read as unbatched
    (conv(x=np.zeros((1, 2, 4, 8, 8))), ValueError, "x must have shape"),
    (conv(weight=np.zeros((6, 2, 3))), ValueError, "weight must have shape"),
    (conv(weight=np.zeros((6, 3, 3, 3))), ValueError, "x has 4 channels but weight.shape"),
    (conv(weight=np.zeros((5, 2, 3, 3))), ValueError, "groups=2 must divide the output"),
    (conv(weight=np.zeros((6, 2, 0, 3))), ValueError, "weight must have no zero-size"),
    (conv(x=np.zeros((2, 0, 8, 8)), groups=1, weight=np.zeros((6, 0, 3, 3))), ValueError, "zero"),
    (conv(bias=np.zeros(5)), ValueError, r"bias must have shape \(6,\)"),
    (conv(bias=np.zeros((6, 1))), ValueError, "bias must have shape"),
    (conv(x=np.zeros((2, 4, 2, 8))), ValueError, "kernel larger than padded input"),
    (conv(dilation=4), ValueError, "kernel larger than padded input"),
    # ints and tuples
    (conv(stride=0), ValueError, "stride must be"),
    (conv(stride=(1, 1, 1)), ValueError, "stride must be"),
    (conv(stride=1.5), TypeError, "stride must be"),
    (conv(stride=(1, 1.0)), TypeError, "stride must be"),
    (conv(stride=True), TypeError, "stride must be"),
    (conv(dilation=-1), ValueError, "dilation must be"),
    (conv(groups=0), ValueError, "groups must be >= 1"),
    (conv(groups=2.0), TypeError, "groups must be an int"),
    (conv(groups=3), ValueError, r"weight.shape\[1\] \* groups = 2 \* 3"),
    (conv(groups=4), ValueError, "groups=4 must divide the output"),
    # padding
    (conv(padding=-1), ValueError, "padding must be"),
    (conv(padding=(1,)), ValueError, "padding must be"),
    (conv(padding=((1, 2, 3), 0)), TypeError, "padding must be"),
    (conv(padding=((1, -2), 0)), ValueError, "padding must be"),
    (conv(padding="full"), ValueError, "padding must be"),
    (conv(padding=1.0), TypeError, "padding must be"),
    (conv(padding_mode="wrap"), ValueError, "padding_mode must be one of"),
    (conv(padding=8, padding_mode="reflect"), ValueError, "padding_mode='reflect' needs"),
    (conv(padding=9, padding_mode="circular"), ValueError, "padding_mode='circular' needs"),
    # gradients
    (
        lambda: F.conv2d_input_grad((2, 4, 8, 8), W, GY[:, :5], groups=2),
        ValueError,
        "grad_output must have",
    ),
    (
        lambda: F.conv2d_input_grad((2, 4, 8, 8), W, GY[:1], groups=2),
        ValueError,
        "grad_output must have",
    ),
    (lambda: F.conv2d_input_grad((4, 8), W, GY, groups=2), ValueError, "input_shape must have"),
    (
        lambda: F.conv2d_input_grad((2, 4, 8, 8.0), W, GY, groups=2),
        TypeError,
        "input_shape must be",
    ),
    (
        lambda: F.conv2d_input_grad((2, 4, -8, 8), W, GY, groups=2),
        ValueError,
        "input_shape must not",
    ),
    (lambda: F.conv2d_input_grad(X.shape, W, GY.astype(int), groups=2), TypeError, "grad_output"),
    (
        lambda: F.conv2d_weight_grad(X, (6, 2, 3), GY, groups=2),
        ValueError,
        "weight_shape must have",
    ),
    (
        lambda: F.conv2d_weight_grad(X, (6, 2, 3, 3), GY[..., :5], groups=2),
        ValueError,
        "grad_output",
    ),
    (lambda: F.conv2d_weight_grad(X, "abc", GY, groups=2), TypeError, "weight_shape must be"),
    (
        lambda: F.conv2d_param_grads(X, (6, 2, 3, 3), GY[..., :5], groups=2),
        ValueError,
        "grad_output",
    ),
    (lambda: F.conv2d_param_grads(X.astype(int), (6, 2, 3, 3), GY, groups=2), TypeError, "x must"),
    (lambda: F.conv_bias_grad(np.zeros((2, 6))), ValueError, "grad_output must have shape"),
    (lambda: F.conv_bias_grad(np.zeros((2, 6, 3), int)), TypeError, "grad_output must have dtype"),
    # layers
    (lambda: numconv.Conv2d(4, 6, 3, groups=4), ValueError, "groups=4 must divide out_channels"),
    (lambda: numconv.Conv2d(0, 6, 3), ValueError, "in_channels must be >= 1"),
    (lambda: numconv.Conv2d(4, 6, 0), ValueError, "kernel_size must be"),
    (lambda: numconv.Conv2d(4, 6, (3, 3, 3)), ValueError, "kernel_size must be"),
    (lambda: numconv.Conv2d(4, 6, 3, padding_mode="bad"), ValueError, "padding_mode"),
    (lambda: numconv.Conv2d(4, 6, 3, padding="x"), ValueError, "padding must be"),
    (lambda: numconv.Conv2d(4, 6, 3, dtype=np.int32), TypeError, "dtype must be"),
    (lambda: numconv.Conv2d(4, 6, 3, dtype="nonsense"), TypeError, "dtype must be"),
    (lambda: numconv.Conv2d(4, 6, 3, bias=None), TypeError, "bias must be True or False"),
    (lambda: numconv.Conv2d(4, 6, 3)(np.zeros((1, 3, 8, 8))), ValueError, "x has 3 channels"),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD_CALLS)
def test_bad_input_raises_a_named_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_backward_before_forward_is_a_runtime_error():
    with pytest.raises(RuntimeError, match="before forward"):
        numconv.Conv2d(2, 2, 3).backward(np.zeros((1, 2, 3, 3)))


def test_layer_backward_checks_grad_output_shape():
    layer = numconv.Conv1d(2, 3, 3)
    layer(np.zeros((1, 2, 8)))
    with pytest.raises(ValueError, match="grad_output must have the forward output's shape"):
        layer.backward(np.zeros((1, 3, 5)))
    np.testing.assert_array_equal(layer.grads["weight"], 0)  # nothing accumulated


def test_failed_forward_does_not_replace_the_cache():
    layer = numconv.Conv1d(2, 3, 3, seed=0)
    x = np.ones((1, 2, 8))
    layer(x)
    with pytest.raises(ValueError):
        layer(np.ones((1, 5, 8)))
    assert layer.backward(np.ones((1, 3, 6))).shape == x.shape
