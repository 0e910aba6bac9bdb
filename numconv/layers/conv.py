"""Convolution layers: ``Conv1d``, ``Conv2d``, ``Conv3d``."""

from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .._params import (
    as_float_array,
    check_dtype,
    check_int,
    check_padding_mode,
    normalize_padding,
    ntuple,
)
from .base import Layer


class _ConvNd(Layer):
    _nd: int
    _ops: tuple  # (forward, input_grad, weight_grad, param_grads) functions of this rank

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=True,
        padding_mode="zeros",
        dtype=np.float32,
        seed=None,
    ):
        super().__init__()
        nd = self._nd
        self.in_channels = check_int(in_channels, "in_channels", minimum=1)
        self.out_channels = check_int(out_channels, "out_channels", minimum=1)
        self.kernel_size = ntuple(kernel_size, nd, "kernel_size", minimum=1)
        self.stride = ntuple(stride, nd, "stride", minimum=1)
        self.dilation = ntuple(dilation, nd, "dilation", minimum=1)
        self.groups = check_int(groups, "groups", minimum=1)
        self.padding_mode = check_padding_mode(padding_mode)
        pads = normalize_padding(padding, nd)
        # keep PyTorch's display: symmetric pads as one int per dim
        if pads != "same" and all(b == a for b, a in pads):
            pads = tuple(b for b, _ in pads)
        self.padding = pads
        self.dtype = check_dtype(dtype)
        if not isinstance(bias, bool | np.bool_):
            raise TypeError(f"bias must be True or False; got {bias!r}")
        for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
            if channels % self.groups:
                raise ValueError(f"groups={self.groups} must divide {name}={channels}")
        # PyTorch's default init: kaiming_uniform(a=√5) for the weight reduces to
        # U(±1/√fan_in); the bias uses the same bound.
        shape = self._weight_shape()
        fan_in = shape[1] * math.prod(self.kernel_size)  # weight dim 1, as PyTorch
        bound = 1.0 / math.sqrt(fan_in)
        rng = np.random.default_rng(seed)
        self._add_param("weight", rng.uniform(-bound, bound, shape).astype(self.dtype))
        if bias:
            bias_values = rng.uniform(-bound, bound, self.out_channels)
            self._add_param("bias", bias_values.astype(self.dtype))

    def _weight_shape(self) -> tuple[int, ...]:
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    @property
    def weight(self) -> np.ndarray:
        """The filters (see the class docstring for the shape); the array ``params["weight"]``."""
        return self.params["weight"]

    @weight.setter
    def weight(self, value) -> None:
        self._set_param("weight", value)

    @property
    def bias(self) -> np.ndarray | None:
        """The bias ``(out_channels,)`` (the same array as ``params["bias"]``), or None."""
        return self.params.get("bias")

    @bias.setter
    def bias(self, value) -> None:
        self._set_param("bias", value)

    def _conv_args(self):
        return self.stride, self.padding, self.dilation, self.groups, self.padding_mode

    def forward(self, x):
        """Convolve ``x`` and cache it for :meth:`backward`."""
        x = as_float_array(x, "x")
        y = self._ops[0](x, self.weight, self.bias, *self._conv_args())
        # A copy, so that a caller reusing its buffer cannot corrupt backward.
        self._cache = x.copy()
        return y

    def backward(self, grad_output):
        """Return the input gradient; add the parameter gradients into ``grads``."""
        x = self._saved()
        grad_output = as_float_array(grad_output, "grad_output")
        gx = self._ops[1](x.shape, self.weight, grad_output, *self._conv_args())
        if "bias" in self.params:  # both from one call: some algorithms read grad_output once
            gw, gb = self._ops[3](x, self.weight.shape, grad_output, *self._conv_args())
            self._accumulate("bias", gb)
        else:
            gw = self._ops[2](x, self.weight.shape, grad_output, *self._conv_args())
        self._accumulate("weight", gw)
        return gx

    def extra_repr(self) -> str:
        nd = self._nd
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", stride={self.stride}"
        if self.padding != (0,) * nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * nd:
            s += f", dilation={self.dilation}"
        if getattr(self, "output_padding", (0,) * nd) != (0,) * nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if "bias" not in self.params:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        if self.dtype != np.float32:
            s += f", dtype={self.dtype}"
        return s


_LAYER_DOC = """\
{nd}-d convolution layer (PyTorch's ``nn.Conv{nd}d``), forward and backward.

Parameters
----------
in_channels, out_channels : int
    Channel counts; both divisible by ``groups``.
kernel_size : int or tuple of {nd} ints
stride, padding, dilation, groups, padding_mode
    As in :func:`numconv.functional.conv{nd}d` (``padding`` also accepts
    per-side pairs, and ``"same"`` with any stride).
bias : bool, default True
    Whether to learn an additive bias.
dtype : {{float32, float64, float16}}, default float32
    The parameters' dtype.
seed : int, optional
    Seed of the default initialisation: weight and bias uniform in
    ``±1/sqrt(fan_in)`` with ``fan_in = in_channels / groups * prod(kernel_size)``,
    PyTorch's distribution (not its random stream).

Attributes
----------
weight : ndarray, shape (out_channels, in_channels / groups, {k})
bias : ndarray, shape (out_channels,), or None
params, grads : dict
    ``{{"weight": ..., "bias": ...}}``; ``backward`` adds into ``grads``.

Notes
-----
Shapes: input ``(N, C_in, {s})`` or unbatched ``(C_in, {s})``; output
``(N, C_out, {o})``, each ``out = floor((n + pad_before + pad_after -
dilation * (k - 1) - 1) / stride) + 1``.
``state_dict()`` uses PyTorch's keys and shapes, so a PyTorch layer's
``{{k: v.numpy() for k, v in m.state_dict().items()}}`` loads directly.

Examples
--------
>>> import numpy as np, numconv
>>> conv = numconv.Conv{nd}d(3, 16, 3, padding=1, seed=0)
>>> y = conv(np.ones((2, 3{ones}), dtype=np.float32))
>>> gx = conv.backward(np.ones_like(y))
>>> y.shape == gx.shape[:1] + (16,) + gx.shape[2:]
True
"""

_SHAPE_NAMES = {1: ("L", "kL", "L_out"), 2: ("H, W", "kH, kW", "H_out, W_out"),
                3: ("D, H, W", "kD, kH, kW", "D_out, H_out, W_out")}  # fmt: skip


def _layer_doc(nd: int) -> str:
    s, k, o = _SHAPE_NAMES[nd]
    return _LAYER_DOC.format(nd=nd, s=s, k=k, o=o, ones=", 8" * nd)


class Conv1d(_ConvNd):
    __doc__ = _layer_doc(1)
    _nd = 1
    _ops = (F.conv1d, F.conv1d_input_grad, F.conv1d_weight_grad, F.conv1d_param_grads)


class Conv2d(_ConvNd):
    __doc__ = _layer_doc(2)
    _nd = 2
    _ops = (F.conv2d, F.conv2d_input_grad, F.conv2d_weight_grad, F.conv2d_param_grads)


class Conv3d(_ConvNd):
    __doc__ = _layer_doc(3)
    _nd = 3
    _ops = (F.conv3d, F.conv3d_input_grad, F.conv3d_weight_grad, F.conv3d_param_grads)


class _ConvTransposeNd(_ConvNd):
    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups=1,
        bias=True,
        dilation=1,
        dtype=np.float32,
        seed=None,
    ):
        nd = self._nd
        if isinstance(padding, str):
            raise ValueError(
                f"padding must be an int or a tuple for a transposed conv; got {padding!r}"
            )
        op = ntuple(output_padding, nd, "output_padding", minimum=0)
        strides = ntuple(stride, nd, "stride", minimum=1)
        dilations = ntuple(dilation, nd, "dilation", minimum=1)
        if any(o >= s and o >= d for o, s, d in zip(op, strides, dilations, strict=True)):
            raise ValueError(
                f"output_padding must be smaller than stride or dilation in every dim;"
                f" got output_padding {op}, stride {strides}, dilation {dilations}"
            )
        self.output_padding = op
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, "zeros", dtype, seed)  # fmt: skip

    def _weight_shape(self) -> tuple[int, ...]:
        return (self.in_channels, self.out_channels // self.groups, *self.kernel_size)

    def _transpose_args(self, output_size):
        return (self.stride, self.padding, self.output_padding, self.groups, self.dilation,
                output_size)  # fmt: skip

    def forward(self, x, output_size=None):
        """Transposed-convolve ``x`` (to ``output_size`` if given) and cache it for backward."""
        x = as_float_array(x, "x")
        y = self._ops[0](x, self.weight, self.bias, *self._transpose_args(output_size))
        # backward must see the same output_size (it selects the output padding)
        self._cache = (x.copy(), None if output_size is None else tuple(output_size))
        return y

    def backward(self, grad_output):
        """Return the input gradient; add the parameter gradients into ``grads``."""
        x, output_size = self._saved()
        grad_output = as_float_array(grad_output, "grad_output")
        args = self._transpose_args(output_size)
        gx = self._ops[1](x.shape, self.weight, grad_output, *args)
        self._accumulate("weight", self._ops[2](x, self.weight.shape, grad_output, *args))
        if "bias" in self.params:
            batched = grad_output if x.ndim == self._nd + 2 else grad_output[None]
            self._accumulate("bias", F.conv_bias_grad(batched))
        return gx


_TRANSPOSE_LAYER_DOC = """\
{nd}-d transposed convolution layer (PyTorch's ``nn.ConvTranspose{nd}d``).

Parameters
----------
in_channels, out_channels : int
    Channel counts; both divisible by ``groups``.
kernel_size : int or tuple of {nd} ints
stride, padding, output_padding, groups, dilation
    As in :func:`numconv.functional.conv_transpose{nd}d` (``padding`` also
    accepts per-side pairs).
bias : bool, default True
dtype : {{float32, float64, float16}}, default float32
seed : int, optional
    Seed of the default initialisation: uniform in ``±1/sqrt(fan_in)`` with
    ``fan_in = out_channels / groups * prod(kernel_size)`` (PyTorch computes it
    from weight dim 1).

Attributes
----------
weight : ndarray, shape (in_channels, out_channels / groups, {k})
bias : ndarray, shape (out_channels,), or None
params, grads : dict

Notes
-----
``forward(x, output_size=None)``: ``output_size`` picks the output size within
``[min, min + stride - 1]`` per dim, overriding ``output_padding`` for that
call (and its backward), as PyTorch's does. ``state_dict()`` matches PyTorch's.

Examples
--------
>>> import numpy as np, numconv
>>> up = numconv.ConvTranspose{nd}d(4, 2, 3, stride=2, padding=1, output_padding=1, seed=0)
>>> y = up(np.ones((1, 4{ones}), dtype=np.float32))
>>> y.shape
(1, 2{doubled})
>>> up.backward(np.ones_like(y)).shape
(1, 4{ones})
"""


def _transpose_doc(nd: int) -> str:
    k = _SHAPE_NAMES[nd][1]
    return _TRANSPOSE_LAYER_DOC.format(nd=nd, k=k, ones=", 5" * nd, doubled=", 10" * nd)


class ConvTranspose1d(_ConvTransposeNd):
    __doc__ = _transpose_doc(1)
    _nd = 1
    _ops = (F.conv_transpose1d, F.conv_transpose1d_input_grad, F.conv_transpose1d_weight_grad)


class ConvTranspose2d(_ConvTransposeNd):
    __doc__ = _transpose_doc(2)
    _nd = 2
    _ops = (F.conv_transpose2d, F.conv_transpose2d_input_grad, F.conv_transpose2d_weight_grad)


class ConvTranspose3d(_ConvTransposeNd):
    __doc__ = _transpose_doc(3)
    _nd = 3
    _ops = (F.conv_transpose3d, F.conv_transpose3d_input_grad, F.conv_transpose3d_weight_grad)
