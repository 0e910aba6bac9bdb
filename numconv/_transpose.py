"""Transposed convolution, run on the convolution engine as its adjoint.

``conv_transpose(x, w)`` is the input gradient of the convolution that maps the
transposed output back to ``x``'s size: ``conv_input_grad(out_shape, w, x)``.
PyTorch's transposed weight layout ``(C_in, C_out / groups, *k)`` is exactly
that convolution's weight ``(C_out_conv, C_in_conv / groups, *k)``, so the
three algorithms of the engine serve all three ops here unchanged:

- forward       = the convolution's input gradient,
- input grad    = the convolution's forward,
- weight grad   = the convolution's weight gradient with input and output swapped.

One subtlety: ``output_padding`` may reach the stride when it stays below the
dilation (PyTorch's rule). The convolution of such an output is then longer than
``x``; its extra positions take no input, so ``x`` is extended with zeros to the
convolution's output size (and the input gradient cropped back).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _dispatch
from ._params import (
    ConvPlan,
    as_float_array,
    caller_shape,
    check_grad_output,
    check_int,
    check_shape_arg,
    dim_names,
    lift,
    normalize_padding,
    ntuple,
    plan_conv,
    result_dtypes,
    split_input_shape,
    to_caller,
)

__all__ = [
    f"conv_transpose{nd}d{suffix}"
    for nd in (1, 2, 3)
    for suffix in ("", "_input_grad", "_weight_grad")
]


@dataclass(frozen=True)
class TransposePlan:
    """A validated transposed convolution: the convolution it is the adjoint of.

    ``conv`` maps the transposed output (its input) to a result of size
    ``conv.out``, which is ``spatial`` (the transposed input's size, lifted to
    three dims) plus the zero positions described in the module docstring.
    """

    conv: ConvPlan
    spatial: tuple[int, int, int]
    output_padding: tuple[int, ...]  # in the caller's rank, as resolved from output_size

    @property
    def input_shape(self) -> tuple[int, ...]:
        return caller_shape(self.conv, self.conv.out_channels, self.spatial)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.conv.input_shape

    @property
    def input5(self) -> tuple[int, ...]:
        return (self.conv.batch, self.conv.out_channels, *self.spatial)


def transpose_output_size(n: int, before: int, after: int, k: int, s: int, d: int, op: int):
    """``(n − 1)·s − pb − pa + d·(k − 1) + 1 + op``."""
    return (n - 1) * s - before - after + d * (k - 1) + 1 + op


def _output_padding_for(output_size, smallest, stride, nd: int) -> tuple[int, ...]:
    """The output_padding that gives ``output_size``, which must lie in PyTorch's range."""
    if isinstance(output_size, np.ndarray):
        output_size = tuple(output_size.tolist())
    size = check_shape_arg(output_size, "output_size", (nd, nd + 1, nd + 2))[-nd:]
    for n, low, s in zip(size, smallest, stride, strict=True):
        if not low <= n <= low + s - 1:
            ranges = ", ".join(
                f"[{lo}, {lo + st - 1}]" for lo, st in zip(smallest, stride, strict=True)
            )
            raise ValueError(
                f"output_size must lie in {ranges} per spatial dim (the sizes output_padding"
                f" 0 to stride - 1 give); got {tuple(size)}"
            )
    return tuple(n - low for n, low in zip(size, smallest, strict=True))


def plan_conv_transpose(
    nd: int, input_shape, weight_shape, stride, padding, output_padding, groups, dilation,
    output_size, *, input_name: str = "x", weight_name: str = "weight",
) -> TransposePlan:  # fmt: skip
    """Validate a transposed convolution's arguments and compute its sizes."""
    if len(input_shape) not in (nd + 1, nd + 2):
        raise ValueError(
            f"{input_name} must have shape (N, C_in, {dim_names(nd)}) or (C_in, {dim_names(nd)})"
            f" for a {nd}-d transposed convolution; got shape {tuple(input_shape)}"
        )
    if len(weight_shape) != nd + 2:
        raise ValueError(
            f"{weight_name} must have shape (C_in, C_out/groups, {dim_names(nd, 'k')});"
            f" got shape {tuple(weight_shape)}"
        )
    batched, batch, in_channels, spatial = split_input_shape(input_shape, nd)
    weight_in, group_out, *kernel = weight_shape
    groups = check_int(groups, "groups", minimum=1)
    stride = ntuple(stride, nd, "stride", minimum=1)
    dilation = ntuple(dilation, nd, "dilation", minimum=1)
    if isinstance(padding, str):
        raise ValueError(
            f"padding must be an int or a tuple (of ints or (before, after) pairs) for a"
            f" transposed convolution; got {padding!r}"
        )
    pads = normalize_padding(padding, nd)
    if min(kernel) < 1 or weight_in < 1 or group_out < 1:
        raise ValueError(
            f"{weight_name} must have no zero-size dimension; got shape {tuple(weight_shape)}"
        )
    if in_channels < 1 or min(spatial) < 1:
        raise ValueError(
            f"{input_name} must have at least one channel and no zero-size spatial dim;"
            f" got shape {tuple(input_shape)}"
        )
    if in_channels != weight_in:
        raise ValueError(
            f"{input_name} has {in_channels} channels but {weight_name}.shape[0] (C_in of a"
            f" transposed convolution's weight) is {weight_in}"
        )
    if weight_in % groups:
        raise ValueError(
            f"groups={groups} must divide the input channels ({weight_name}.shape[0]={weight_in})"
        )
    smallest = tuple(
        transpose_output_size(n, b, a, k, s, d, 0)
        for n, (b, a), k, s, d in zip(spatial, pads, kernel, stride, dilation, strict=True)
    )
    if output_size is None:
        op = ntuple(output_padding, nd, "output_padding", minimum=0)
        for o, s, d in zip(op, stride, dilation, strict=True):
            if not (o < s or o < d):
                raise ValueError(
                    f"output_padding must be smaller than stride or dilation in every dim;"
                    f" got output_padding {op}, stride {stride}, dilation {dilation}"
                )
    else:
        op = _output_padding_for(output_size, smallest, stride, nd)
    out = tuple(low + o for low, o in zip(smallest, op, strict=True))
    if min(out) < 1:
        raise ValueError(
            f"padding too large: {input_name} spatial size {tuple(spatial)}, padding {pads},"
            f" kernel {tuple(kernel)}, stride {stride}, dilation {dilation} give output size {out}"
        )
    out_channels = group_out * groups
    conv = plan_conv(
        nd, (batch, out_channels, *out) if batched else (out_channels, *out), weight_shape,
        stride, pads, dilation, groups, "zeros", input_name="output", weight_name=weight_name,
    )  # fmt: skip
    return TransposePlan(conv=conv, spatial=lift(spatial, 1), output_padding=op)


def _extended(x5: np.ndarray, plan: TransposePlan, dtype) -> np.ndarray:
    """``x5`` with zeros appended up to the convolution's output size (usually none)."""
    extra = [m - n for m, n in zip(plan.conv.out, plan.spatial, strict=True)]
    if not any(extra):
        return x5
    return np.pad(x5.astype(dtype, copy=False), ((0, 0), (0, 0), *((0, e) for e in extra)))


def _conv_transpose(nd, x, weight, bias, stride, padding, output_padding, groups, dilation,
                    output_size):  # fmt: skip
    x = as_float_array(x, "x")
    weight = as_float_array(weight, "weight")
    operands = [x, weight]
    if bias is not None:
        bias = as_float_array(bias, "bias")
        operands.append(bias)
    plan = plan_conv_transpose(
        nd, x.shape, weight.shape, stride, padding, output_padding, groups, dilation, output_size
    )
    conv = plan.conv
    if bias is not None and bias.shape != (conv.in_channels,):
        raise ValueError(f"bias must have shape ({conv.in_channels},); got {bias.shape}")
    compute, result = result_dtypes(*operands)
    if conv.batch == 0:
        return np.zeros(plan.output_shape, dtype=result)
    algorithm = _dispatch.select("input_grad", conv, compute)
    x5 = _extended(x.reshape(plan.input5), plan, compute)
    y5 = algorithm.input_grad(conv, weight.reshape(conv.weight5), x5, compute)
    if bias is not None:
        y5 = y5 + bias.astype(compute).reshape(1, -1, 1, 1, 1)
    return to_caller(y5, plan.output_shape, result)


def _conv_transpose_input_grad(nd, input_shape, weight, grad_output, stride, padding,
                               output_padding, groups, dilation, output_size):  # fmt: skip
    input_shape = check_shape_arg(input_shape, "input_shape", (nd + 1, nd + 2))
    weight = as_float_array(weight, "weight")
    grad_output = as_float_array(grad_output, "grad_output")
    plan = plan_conv_transpose(
        nd, input_shape, weight.shape, stride, padding, output_padding, groups, dilation,
        output_size, input_name="input_shape",
    )  # fmt: skip
    check_grad_output(grad_output, plan)
    compute, result = result_dtypes(weight, grad_output)
    conv = plan.conv
    if conv.batch == 0:
        return np.zeros(input_shape, dtype=result)
    algorithm = _dispatch.select("forward", conv, compute)
    gx5 = algorithm.forward(
        conv, grad_output.reshape(conv.input5), weight.reshape(conv.weight5), None, compute
    )
    crop = tuple(slice(0, n) for n in plan.spatial)
    return to_caller(gx5[(slice(None), slice(None), *crop)], input_shape, result)


def _conv_transpose_weight_grad(nd, x, weight_shape, grad_output, stride, padding,
                                output_padding, groups, dilation, output_size):  # fmt: skip
    x = as_float_array(x, "x")
    weight_shape = check_shape_arg(weight_shape, "weight_shape", (nd + 2,))
    grad_output = as_float_array(grad_output, "grad_output")
    plan = plan_conv_transpose(
        nd, x.shape, weight_shape, stride, padding, output_padding, groups, dilation,
        output_size, weight_name="weight_shape",
    )  # fmt: skip
    check_grad_output(grad_output, plan)
    compute, result = result_dtypes(x, grad_output)
    conv = plan.conv
    if conv.batch == 0:
        return np.zeros(weight_shape, dtype=result)
    algorithm = _dispatch.select("weight_grad", conv, compute)
    x5 = _extended(x.reshape(plan.input5), plan, compute)
    gw5 = algorithm.weight_grad(conv, grad_output.reshape(conv.input5), x5, compute)
    return to_caller(gw5, weight_shape, result)


# --------------------------------------------------------------------------- docs
_SHAPES = {1: ("L", "kL", "L_out"), 2: ("H, W", "kH, kW", "H_out, W_out"),
           3: ("D, H, W", "kD, kH, kW", "D_out, H_out, W_out")}  # fmt: skip

_PARAMS = """\
stride : int or tuple of {nd} ints, default 1
    The upsampling factor: step of the input positions in the output.
padding : int or tuple of {nd} entries, default 0
    Removed from both ends of each spatial dim of the full output (it is the
    padding of the convolution this one transposes). A tuple entry may be a
    ``(before, after)`` pair (beyond PyTorch).
output_padding : int or tuple of {nd} ints, default 0
    Extra size added at the end of each dim; each must be smaller than the
    stride or the dilation of its dim. Ignored when ``output_size`` is given.
groups : int, default 1
    Must divide ``C_in``; group ``g`` maps input channels
    ``[g·C_in/G, (g+1)·C_in/G)`` to output channels ``[g·C_out/G, (g+1)·C_out/G)``.
dilation : int or tuple of {nd} ints, default 1
    Spacing between kernel elements.
output_size : tuple of ints, optional
    The output's spatial size (a full ``(N, C, ...)`` shape is accepted; its
    last {nd} entries are used). Each must lie in ``[min, min + stride - 1]``,
    ``min`` being the size for ``output_padding = 0``; it selects the
    output_padding, as in PyTorch's ``ConvTranspose{nd}d.forward``."""

_NOTES = """\
Shapes (a leading ``N`` may be omitted for an unbatched call)::

    input  : (N, C_in, {s})
    weight : (C_in, C_out / groups, {k})
    output : (N, C_out, {o})

Output size per spatial dim::

    out = (n - 1) * stride - pad_before - pad_after + dilation * (k - 1) + 1 + output_padding

A transposed convolution is the adjoint of a convolution with the same
weight: ``conv_transpose{nd}d(y, w) == conv{nd}d_input_grad(out_shape, w, y)``."""

_FORWARD_DOC = """\
{nd}-d transposed convolution (PyTorch's ``conv_transpose{nd}d``).

Parameters
----------
x : array_like of float, shape (N, C_in, {s}) or (C_in, {s})
weight : array_like of float, shape (C_in, C_out / groups, {k})
bias : array_like of float, shape (C_out,), optional
{params}

Returns
-------
ndarray, shape (N, C_out, {o}) or (C_out, {o})

Notes
-----
{notes}

Examples
--------
>>> import numpy as np, numconv.functional as F
>>> F.conv_transpose{nd}d(np.ones((1, 2{ones})), np.ones((2, 4{kones})), stride=2).shape
(1, 4{shape})
"""

_INPUT_GRAD_DOC = """\
Gradient of a {nd}-d transposed convolution with respect to its input.

Parameters
----------
input_shape : tuple of ints
    ``(N, C_in, {s})`` or ``(C_in, {s})``: the forward input's shape.
weight : array_like of float, shape (C_in, C_out / groups, {k})
grad_output : array_like of float
    Same shape as the forward output.
{params}

Returns
-------
ndarray of shape ``input_shape``
    The convolution ``conv{nd}d(grad_output, weight, ...)`` (cropped to the input
    size when ``output_padding`` reaches the stride).

Notes
-----
{notes}
"""

_WEIGHT_GRAD_DOC = """\
Gradient of a {nd}-d transposed convolution with respect to its weight.

Parameters
----------
x : array_like of float, shape (N, C_in, {s}) or (C_in, {s})
    The forward input.
weight_shape : tuple of ints
    ``(C_in, C_out / groups, {k})``.
grad_output : array_like of float
    Same shape as the forward output.
{params}

Returns
-------
ndarray of shape ``weight_shape``

Notes
-----
{notes}
The bias gradient is :func:`conv_bias_grad` of ``grad_output``.
"""


def _make(nd: int):
    def forward(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                dilation=1, output_size=None):  # fmt: skip
        return _conv_transpose(nd, x, weight, bias, stride, padding, output_padding, groups,
                               dilation, output_size)  # fmt: skip

    def input_grad(input_shape, weight, grad_output, stride=1, padding=0, output_padding=0,
                   groups=1, dilation=1, output_size=None):  # fmt: skip
        return _conv_transpose_input_grad(
            nd, input_shape, weight, grad_output, stride, padding, output_padding, groups,
            dilation, output_size,
        )  # fmt: skip

    def weight_grad(x, weight_shape, grad_output, stride=1, padding=0, output_padding=0,
                    groups=1, dilation=1, output_size=None):  # fmt: skip
        return _conv_transpose_weight_grad(
            nd, x, weight_shape, grad_output, stride, padding, output_padding, groups,
            dilation, output_size,
        )  # fmt: skip

    s, k, o = _SHAPES[nd]
    fields = {"nd": nd, "s": s, "k": k, "o": o}
    params = _PARAMS.format(nd=nd)
    notes = _NOTES.format(**fields)
    functions = []
    for function, suffix, template in (
        (forward, "", _FORWARD_DOC),
        (input_grad, "_input_grad", _INPUT_GRAD_DOC),
        (weight_grad, "_weight_grad", _WEIGHT_GRAD_DOC),
    ):
        function.__name__ = function.__qualname__ = f"conv_transpose{nd}d{suffix}"
        function.__module__ = "numconv.functional"
        function.__doc__ = template.format(
            params=params, notes=notes, ones=", 4" * nd, kones=", 3" * nd, shape=", 9" * nd,
            **fields,
        )  # fmt: skip
        functions.append(function)
    return functions


conv_transpose1d, conv_transpose1d_input_grad, conv_transpose1d_weight_grad = _make(1)
conv_transpose2d, conv_transpose2d_input_grad, conv_transpose2d_weight_grad = _make(2)
conv_transpose3d, conv_transpose3d_input_grad, conv_transpose3d_weight_grad = _make(3)
