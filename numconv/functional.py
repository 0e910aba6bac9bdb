"""Convolution and pooling as functions, each with its gradients.

Every function validates its arguments once (raising ``ValueError`` or
``TypeError`` that names the argument), builds a plan, asks the dispatcher for
an algorithm and runs it. Inputs are never modified; results are C-contiguous
arrays of the inputs' (promoted) float dtype.

Use it like ``torch.nn.functional``::

    import numconv.functional as F
    y = F.conv2d(x, w, b, stride=2, padding="same")
"""

from __future__ import annotations

import math

import numpy as np

# Transposed convolution, unfold/fold and pooling live in their own modules; their functions
# are part of this namespace.
from . import _dispatch, _pool, _transpose, _unfold
from ._params import (
    as_float_array,
    check_grad_output,
    check_shape_arg,
    kernel_array,
    plan_conv,
    result_dtypes,
    to_caller,
)
from ._pool import *  # noqa: F403
from ._transpose import *  # noqa: F403
from ._unfold import *  # noqa: F403
from ._workers import run_parts, thread_parts
from .kernels.reduce import channel_sums

# Output gradients of this many bytes or more are summed on every thread, a
# range of channels each. Right after a weight gradient they come from
# memory, and one thread's sum is bound by its latency: the stem's 25.7 MB
# took 0.73-0.74 ms on one thread and 0.47-0.50 on two, audio1d's 16.8 MB
# 0.70-0.71 against 0.46, conv1d_k5's 10.2 MB 0.19-0.21 against 0.14-0.17.
# Below 10 MB the hand-off cost about what it saved: cifar_first's 8.4 MB
# 0.104 against 0.111 ms, res3x3_56's 6.4 MB 0.16-0.18 against 0.17-0.19
# (docs/performance.md §41).
BIAS_SPLIT_BYTES = 10_000_000

__all__ = [
    "conv1d",
    "conv1d_input_grad",
    "conv1d_weight_grad",
    "conv1d_param_grads",
    "conv2d",
    "conv2d_input_grad",
    "conv2d_weight_grad",
    "conv2d_param_grads",
    "conv3d",
    "conv3d_input_grad",
    "conv3d_weight_grad",
    "conv3d_param_grads",
    "conv_bias_grad",
    *_transpose.__all__,
    *_unfold.__all__,
    *_pool.__all__,
]


# --------------------------------------------------------------------------- core
def _conv(nd, x, weight, bias, stride, padding, dilation, groups, padding_mode):
    x = as_float_array(x, "x")
    weight = as_float_array(weight, "weight")
    operands = [x, weight]
    if bias is not None:
        bias = as_float_array(bias, "bias")
        operands.append(bias)
    plan = plan_conv(nd, x.shape, weight.shape, stride, padding, dilation, groups, padding_mode)
    if bias is not None and bias.shape != (plan.out_channels,):
        raise ValueError(f"bias must have shape ({plan.out_channels},); got {bias.shape}")
    compute, result = result_dtypes(*operands)
    if plan.batch == 0:
        return np.zeros(plan.output_shape, dtype=result)
    algorithm = _dispatch.select("forward", plan, compute)
    x5, w5 = x.reshape(plan.input5), weight.reshape(plan.weight5)
    y5 = algorithm.forward(plan, x5, w5, bias, compute)
    return to_caller(y5, plan.output_shape, result)


def _conv_input_grad(nd, input_shape, weight, grad_output, stride, padding, dilation, groups, mode):
    input_shape = check_shape_arg(input_shape, "input_shape", (nd + 1, nd + 2))
    weight = as_float_array(weight, "weight")
    grad_output = as_float_array(grad_output, "grad_output")
    plan = plan_conv(
        nd, input_shape, weight.shape, stride, padding, dilation, groups, mode,
        input_name="input_shape",
    )  # fmt: skip
    check_grad_output(grad_output, plan)
    compute, result = result_dtypes(weight, grad_output)
    if plan.batch == 0:
        return np.zeros(input_shape, dtype=result)
    algorithm = _dispatch.select("input_grad", plan, compute)
    gx5 = algorithm.input_grad(
        plan, weight.reshape(plan.weight5), grad_output.reshape(plan.output5), compute
    )
    return to_caller(gx5, input_shape, result)


def _conv_weight_grad(nd, x, weight_shape, grad_output, stride, padding, dilation, groups, mode):
    return _conv_param_grads(
        nd, x, weight_shape, grad_output, stride, padding, dilation, groups, mode, bias=False
    )


def _conv_param_grads(
    nd, x, weight_shape, grad_output, stride, padding, dilation, groups, mode, bias=True
):  # fmt: skip
    """The weight gradient, and with ``bias`` the bias gradient too: ``(gw, gb)``."""
    x = as_float_array(x, "x")
    weight_shape = check_shape_arg(weight_shape, "weight_shape", (nd + 2,))
    grad_output = as_float_array(grad_output, "grad_output")
    plan = plan_conv(
        nd, x.shape, weight_shape, stride, padding, dilation, groups, mode,
        weight_name="weight_shape",
    )  # fmt: skip
    check_grad_output(grad_output, plan)
    compute, result = result_dtypes(x, grad_output)
    if plan.batch == 0:
        gw = np.zeros(weight_shape, dtype=result)
        return (gw, np.zeros(plan.out_channels, dtype=result)) if bias else gw
    algorithm = _dispatch.select("weight_grad", plan, compute)
    x5, gy5 = x.reshape(plan.input5), grad_output.reshape(plan.output5)
    fused = getattr(algorithm, "weight_bias_grad", None) if bias else None
    if fused is not None:  # the bias from the same pass over grad_output
        gw5, gb = fused(plan, x5, gy5, compute)
    else:
        gw5 = algorithm.weight_grad(plan, x5, gy5, compute)
        gb = conv_bias_grad(gy5) if bias else None
    gw = to_caller(gw5, weight_shape, result)
    return (gw, gb.astype(result, copy=False)) if bias else gw


# --------------------------------------------------------------------------- docs
_SHAPES = {1: ("L", "kL"), 2: ("H, W", "kH, kW"), 3: ("D, H, W", "kD, kH, kW")}
_OUT = {1: "L_out", 2: "H_out, W_out", 3: "D_out, H_out, W_out"}

_COMMON_PARAMS = """\
stride : int or tuple of {nd} ints, default 1
    Step between windows, per spatial dim.
padding : int, tuple, "valid" or "same", default 0
    Padding added to both sides of each spatial dim. A tuple has one entry per
    dim, each an int or a ``(before, after)`` pair (per-side padding, beyond
    PyTorch). ``"valid"`` means no padding. ``"same"`` pads so that
    ``out = ceil(n / stride)``: with stride 1 this is PyTorch's rule (an odd
    total puts the extra element after); with stride > 1, where PyTorch refuses,
    TensorFlow's rule.
dilation : int or tuple of {nd} ints, default 1
    Spacing between kernel elements.
groups : int, default 1
    Number of blocked connections; must divide both channel counts.
    ``groups == C_in`` is a depthwise convolution.
padding_mode : {{"zeros", "reflect", "replicate", "circular"}}, default "zeros"
    How padded values are made. ``reflect`` needs padding < input size and
    ``circular`` padding <= input size in each dim."""

_NOTES = """\
Shapes (a leading ``N`` may be omitted for an unbatched call)::

    input  : (N, C_in, {s})
    weight : (C_out, C_in / groups, {k})
    output : (N, C_out, {o})

Output size per spatial dim, with ``e = dilation * (kernel - 1) + 1``::

    out = floor((n + pad_before + pad_after - e) / stride) + 1

It is an error if ``out < 1``. float32 and float64 compute natively; float16
computes in float32 and is returned as float16; mixed dtypes promote as NumPy
does."""

_CONV_DOC = """\
{nd}-d convolution (cross-correlation, as PyTorch's ``conv{nd}d``).

Parameters
----------
x : array_like of float, shape (N, C_in, {s}) or (C_in, {s})
    Input.
weight : array_like of float, shape (C_out, C_in / groups, {k})
    Filters.
bias : array_like of float, shape (C_out,), optional
    Added to every output position of its channel.
{params}

Returns
-------
ndarray, shape (N, C_out, {o}) or (C_out, {o})

Raises
------
ValueError
    A bad shape or value; the message names the argument.
TypeError
    A non-float dtype or a wrong argument type.

Notes
-----
{notes}

Examples
--------
>>> import numpy as np, numconv.functional as F
>>> F.conv{nd}d(np.ones((1, 2{ones})), np.ones((4, 2{kones})), padding="same").shape
(1, 4{shape})
"""

_INPUT_GRAD_DOC = """\
Gradient of a {nd}-d convolution with respect to its input.

Returns ``∂⟨conv{nd}d(x, weight), grad_output⟩ / ∂x`` for an input of shape
``input_shape``; the value does not depend on ``x`` itself. Gradient mass that
the forward pass read from padding made by ``reflect``, ``replicate`` or
``circular`` is folded back onto the input positions it came from.

Parameters
----------
input_shape : tuple of ints
    ``(N, C_in, {s})`` or ``(C_in, {s})``: the forward input's shape.
weight : array_like of float, shape (C_out, C_in / groups, {k})
    The forward filters.
grad_output : array_like of float
    Gradient of the loss with respect to the forward output; must have exactly
    the forward output's shape ``(N, C_out, {o})``.
{params}

Returns
-------
ndarray of shape ``input_shape``

Notes
-----
{notes}
"""

# The weight gradient's parameters, shared by its function and the param grads'.
_WEIGHT_GRAD_PARAMS = """\
Parameters
----------
x : array_like of float, shape (N, C_in, {s}) or (C_in, {s})
    The forward input.
weight_shape : tuple of ints
    ``(C_out, C_in / groups, {k})``: the forward filters' shape.
grad_output : array_like of float
    Gradient of the loss with respect to the forward output; must have exactly
    the forward output's shape ``(N, C_out, {o})``.
{params}
"""

_WEIGHT_GRAD_DOC = (
    """\
Gradient of a {nd}-d convolution with respect to its weight.

Returns ``∂⟨conv{nd}d(x, weight), grad_output⟩ / ∂weight`` for a weight of
shape ``weight_shape``; the value does not depend on the weight itself.

"""
    + _WEIGHT_GRAD_PARAMS
    + """
Returns
-------
ndarray of shape ``weight_shape``

Notes
-----
{notes}
"""
)


_PARAM_GRADS_DOC = (
    """\
Gradients of a {nd}-d convolution with respect to its weight and its bias.

``(conv{nd}d_weight_grad(x, weight_shape, grad_output, ...),
conv_bias_grad(grad_output))`` in one call, which a layer's backward needs:
where the algorithm allows (the tap sums), the bias comes out of the same pass
over ``grad_output`` as the weight, which saves reading it a second time.

"""
    + _WEIGHT_GRAD_PARAMS
    + """
Returns
-------
grad_weight : ndarray of shape ``weight_shape``
    The same as :func:`conv{nd}d_weight_grad`'s.
grad_bias : ndarray of shape ``(C_out,)``
    ``grad_output`` summed over every axis but the channels. When fused, the
    sums run in the compute dtype within a block of positions and in float64
    across blocks; :func:`conv_bias_grad` sums in float64 throughout, so the
    two agree to the dtype's rounding, not bit for bit.

Notes
-----
{notes}
"""
)


def _doc(template: str, nd: int) -> str:
    s, k = _SHAPES[nd]
    fields = {"nd": nd, "s": s, "k": k, "o": _OUT[nd]}
    return template.format(
        params=_COMMON_PARAMS.format(**fields),
        notes=_NOTES.format(s=s, k=k, o=_OUT[nd]),
        ones=", 5" * nd,
        kones=", 3" * nd,
        shape=", 5" * nd,
        **fields,
    )


# --------------------------------------------------------------------------- public
def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    return _conv(1, x, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    return _conv(2, x, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv3d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    return _conv(3, x, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv1d_input_grad(
    input_shape, weight, grad_output, stride=1, padding=0, dilation=1, groups=1,
    padding_mode="zeros",
):  # fmt: skip
    return _conv_input_grad(
        1, input_shape, weight, grad_output, stride, padding, dilation, groups, padding_mode
    )


def conv2d_input_grad(
    input_shape, weight, grad_output, stride=1, padding=0, dilation=1, groups=1,
    padding_mode="zeros",
):  # fmt: skip
    return _conv_input_grad(
        2, input_shape, weight, grad_output, stride, padding, dilation, groups, padding_mode
    )


def conv3d_input_grad(
    input_shape, weight, grad_output, stride=1, padding=0, dilation=1, groups=1,
    padding_mode="zeros",
):  # fmt: skip
    return _conv_input_grad(
        3, input_shape, weight, grad_output, stride, padding, dilation, groups, padding_mode
    )


def conv1d_weight_grad(
    x, weight_shape, grad_output, stride=1, padding=0, dilation=1, groups=1,
    padding_mode="zeros",
):  # fmt: skip
    return _conv_weight_grad(
        1, x, weight_shape, grad_output, stride, padding, dilation, groups, padding_mode
    )


def conv2d_weight_grad(
    x, weight_shape, grad_output, stride=1, padding=0, dilation=1, groups=1,
    padding_mode="zeros",
):  # fmt: skip
    return _conv_weight_grad(
        2, x, weight_shape, grad_output, stride, padding, dilation, groups, padding_mode
    )


def conv3d_weight_grad(
    x, weight_shape, grad_output, stride=1, padding=0, dilation=1, groups=1,
    padding_mode="zeros",
):  # fmt: skip
    return _conv_weight_grad(
        3, x, weight_shape, grad_output, stride, padding, dilation, groups, padding_mode
    )


def conv1d_param_grads(
    x, weight_shape, grad_output, stride=1, padding=0, dilation=1, groups=1,
    padding_mode="zeros",
):  # fmt: skip
    return _conv_param_grads(
        1, x, weight_shape, grad_output, stride, padding, dilation, groups, padding_mode
    )


def conv2d_param_grads(
    x, weight_shape, grad_output, stride=1, padding=0, dilation=1, groups=1,
    padding_mode="zeros",
):  # fmt: skip
    return _conv_param_grads(
        2, x, weight_shape, grad_output, stride, padding, dilation, groups, padding_mode
    )


def conv3d_param_grads(
    x, weight_shape, grad_output, stride=1, padding=0, dilation=1, groups=1,
    padding_mode="zeros",
):  # fmt: skip
    return _conv_param_grads(
        3, x, weight_shape, grad_output, stride, padding, dilation, groups, padding_mode
    )


for _nd, (_f, _gi, _gw, _gp) in {
    1: (conv1d, conv1d_input_grad, conv1d_weight_grad, conv1d_param_grads),
    2: (conv2d, conv2d_input_grad, conv2d_weight_grad, conv2d_param_grads),
    3: (conv3d, conv3d_input_grad, conv3d_weight_grad, conv3d_param_grads),
}.items():
    _f.__doc__ = _doc(_CONV_DOC, _nd)
    _gi.__doc__ = _doc(_INPUT_GRAD_DOC, _nd)
    _gw.__doc__ = _doc(_WEIGHT_GRAD_DOC, _nd)
    _gp.__doc__ = _doc(_PARAM_GRADS_DOC, _nd)


def conv_bias_grad(grad_output):
    """Gradient of a convolution with respect to its bias.

    Parameters
    ----------
    grad_output : array_like of float, shape (N, C_out, *spatial)
        Gradient of the loss with respect to a batched convolution output
        (1 to 3 spatial dims). For an unbatched output pass ``grad_output[None]``.

    Returns
    -------
    ndarray, shape (C_out,)
        ``grad_output`` summed over every axis but axis 1.
    """
    grad_output = as_float_array(grad_output, "grad_output")
    if not 3 <= grad_output.ndim <= 5:
        raise ValueError(
            "grad_output must have shape (N, C_out, *spatial) with 1 to 3 spatial dims;"
            f" got shape {grad_output.shape}"
        )
    compute, result = result_dtypes(grad_output)
    batch, channels, *spatial = grad_output.shape
    g3 = kernel_array(grad_output, (batch, channels, math.prod(spatial)), compute)
    sums = np.empty(channels, dtype=np.float64)
    if g3.nbytes >= BIAS_SPLIT_BYTES:
        run_parts(lambda part: channel_sums(g3, sums, *part), thread_parts(channels), blas=False)
    else:
        channel_sums(g3, sums, 0, channels)
    return sums.astype(result)
