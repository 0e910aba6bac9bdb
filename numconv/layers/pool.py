"""Pooling layers: max, min, average, LP, adaptive pooling and max unpooling.

Each layer holds its hyper-parameters, calls the matching function of
:mod:`numconv.functional` and caches only what the backward function needs:
the argmax indices for max/min pooling, the input shape for average pooling,
a copy of the input for LP pooling. Their ``params`` and ``grads`` are empty.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .._params import as_float_array, check_bool, ntuple
from .base import Layer


def _stand_in(x: np.ndarray) -> np.ndarray:
    """A zero-byte array with ``x``'s shape and dtype, for backward functions that
    read only those (so the layer need not keep the input alive)."""
    return np.broadcast_to(np.zeros((), dtype=x.dtype), x.shape)


class _PoolLayer(Layer):
    """Shared machinery: ``_kind`` names the functions, ``_args`` the hyper-parameters."""

    _nd: int
    _kind: str
    _args: tuple[str, ...]

    @property
    def _forward_function(self):
        return getattr(F, f"{self._kind}{self._nd}d")

    @property
    def _backward_function(self):
        return getattr(F, f"{self._kind}{self._nd}d_backward")

    def _hyper(self) -> dict:
        return {name: getattr(self, name) for name in self._args}

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={getattr(self, name)!r}" for name in self._args)


class _ExtremePool(_PoolLayer):
    _args = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):  # fmt: skip
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.dilation = dilation
        self.return_indices = check_bool(return_indices, "return_indices")
        self.ceil_mode = check_bool(ceil_mode, "ceil_mode")

    def forward(self, x):
        """Pool ``x``; returns ``(y, indices)`` if ``return_indices`` was set."""
        x = as_float_array(x, "x")
        y, indices = self._forward_function(x, **self._hyper(), return_indices=True)
        self._cache = (_stand_in(x), indices)
        return (y, indices.copy()) if self.return_indices else y

    def backward(self, grad_output):
        """Route each output's gradient to the element its window chose."""
        x, indices = self._saved()
        return self._backward_function(grad_output, x, **self._hyper(), indices=indices)


class _AvgPool(_PoolLayer):
    _kind = "avg_pool"
    _args = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
             "divisor_override")  # fmt: skip

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):  # fmt: skip
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        if self._nd == 1:  # PyTorch's AvgPool1d keeps 1-tuples (its repr shows them)
            self.kernel_size = ntuple(kernel_size, 1, "kernel_size", minimum=1)
            self.stride = ntuple(self.stride, 1, "stride", minimum=1)
            self.padding = ntuple(padding, 1, "padding", minimum=0)
        self.ceil_mode = check_bool(ceil_mode, "ceil_mode")
        self.count_include_pad = check_bool(count_include_pad, "count_include_pad")
        self.divisor_override = divisor_override

    def forward(self, x):
        """Average-pool ``x``."""
        x = as_float_array(x, "x")
        y = self._forward_function(x, **self._hyper())
        self._cache = _stand_in(x)
        return y

    def backward(self, grad_output):
        """Spread each window's gradient over the window."""
        return self._backward_function(grad_output, self._saved(), **self._hyper())

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size!r}, stride={self.stride!r}, padding={self.padding!r}"


class _LPPool(_PoolLayer):
    _kind = "lp_pool"
    _args = ("norm_type", "kernel_size", "stride", "ceil_mode")

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        super().__init__()
        self.norm_type = norm_type
        self.kernel_size = kernel_size
        self.stride = stride
        self.ceil_mode = check_bool(ceil_mode, "ceil_mode")

    def forward(self, x):
        """LP-pool ``x`` and keep a copy of it for :meth:`backward`."""
        x = as_float_array(x, "x")
        y = self._forward_function(x, **self._hyper())
        self._cache = x.copy()
        return y

    def backward(self, grad_output):
        return self._backward_function(grad_output, self._saved(), **self._hyper())


class _AdaptiveAvgPool(_PoolLayer):
    _kind = "adaptive_avg_pool"
    _args = ("output_size",)

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        """Average ``x`` over adaptive bins."""
        x = as_float_array(x, "x")
        y = self._forward_function(x, self.output_size)
        self._cache = _stand_in(x)
        return y

    def backward(self, grad_output):
        return self._backward_function(grad_output, self._saved(), self.output_size)


class _AdaptiveMaxPool(_PoolLayer):
    _kind = "adaptive_max_pool"
    _args = ("output_size",)

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size = output_size
        self.return_indices = check_bool(return_indices, "return_indices")

    def forward(self, x):
        """Max over adaptive bins; returns ``(y, indices)`` if ``return_indices`` was set."""
        x = as_float_array(x, "x")
        y, indices = self._forward_function(x, self.output_size, return_indices=True)
        self._cache = (_stand_in(x), indices)
        return (y, indices.copy()) if self.return_indices else y

    def backward(self, grad_output):
        x, indices = self._saved()
        return self._backward_function(grad_output, x, self.output_size, indices=indices)


class _MaxUnpool(_PoolLayer):
    _kind = "max_unpool"
    _args = ("kernel_size", "stride", "padding")

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        # Stored as tuples, as PyTorch's MaxUnpool does (its repr shows them).
        nd = self._nd
        self.kernel_size = ntuple(kernel_size, nd, "kernel_size", minimum=1)
        self.stride = self.kernel_size if stride is None else ntuple(stride, nd, "stride", 1)
        self.padding = ntuple(padding, nd, "padding", minimum=0)

    def forward(self, x, indices, output_size=None):
        """Scatter ``x`` to ``indices`` in a zero output; ``output_size`` as the function's."""
        x = as_float_array(x, "x")
        y = self._forward_function(x, indices, **self._hyper(), output_size=output_size)
        self._cache = (_stand_in(x), np.array(indices), output_size)
        return y

    def backward(self, grad_output):
        """Read ``grad_output`` at the indices of the forward call."""
        x, indices, output_size = self._saved()
        return self._backward_function(grad_output, x, indices, **self._hyper(),
                                       output_size=output_size)  # fmt: skip


# --------------------------------------------------------------------------- public classes
_DOCS = {
    "max_pool": "{nd}-d max pooling layer (PyTorch's ``nn.MaxPool{nd}d``).",
    "min_pool": "{nd}-d min pooling layer (beyond PyTorch: the mirror of ``MaxPool{nd}d``).",
    "avg_pool": "{nd}-d average pooling layer (PyTorch's ``nn.AvgPool{nd}d``).",
    "lp_pool": "{nd}-d power-average pooling layer (PyTorch's ``nn.LPPool{nd}d``).",
    "adaptive_avg_pool": "{nd}-d adaptive average pooling layer (``nn.AdaptiveAvgPool{nd}d``).",
    "adaptive_max_pool": "{nd}-d adaptive max pooling layer (``nn.AdaptiveMaxPool{nd}d``).",
    "max_unpool": "{nd}-d max unpooling layer (PyTorch's ``nn.MaxUnpool{nd}d``).",
}

_DOC_BODY = """

Parameters are those of :func:`numconv.functional.{function}`, in PyTorch's order:
``{signature}``. ``forward`` (also ``layer(...)``) caches what
``backward(grad_output)`` needs; ``backward`` returns the input gradient.
``params`` and ``grads`` are empty.

Examples
--------
>>> import numpy as np, numconv
>>> x = np.arange({size}, dtype=np.float32).reshape(1, 1{spatial})
{example}
"""

_SIGNATURES = {
    _ExtremePool: "kernel_size, stride=None, padding=0, dilation=1, return_indices=False,"
    " ceil_mode=False",
    _AvgPool: "kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,"
    " divisor_override=None",
    _LPPool: "norm_type, kernel_size, stride=None, ceil_mode=False",
    _AdaptiveAvgPool: "output_size",
    _AdaptiveMaxPool: "output_size, return_indices=False",
    _MaxUnpool: "kernel_size, stride=None, padding=0``; ``forward(x, indices, output_size=None)",
}

_POOL_EXAMPLE = """\
>>> layer = numconv.{name}({args})
>>> y = layer(x)
>>> layer.backward(np.ones_like(y)).shape == x.shape
True"""

_UNPOOL_EXAMPLE = """\
>>> y, indices = numconv.MaxPool{nd}d(2, return_indices=True)(x)
>>> layer = numconv.{name}(2)
>>> layer(y, indices).shape == x.shape
True
>>> layer.backward(np.ones(x.shape)).shape == y.shape
True"""

_EXAMPLE_ARGS = {_LPPool: "2, 2", _AdaptiveAvgPool: "1", _AdaptiveMaxPool: "1"}


def _layer(name: str, base: type, kind: str, nd: int) -> type:
    example = _UNPOOL_EXAMPLE if base is _MaxUnpool else _POOL_EXAMPLE
    doc = _DOCS[kind].format(nd=nd) + _DOC_BODY.format(
        function=f"{kind}{nd}d",
        signature=_SIGNATURES[base],
        example=example.format(name=name, nd=nd, args=_EXAMPLE_ARGS.get(base, "2")),
        size=4**nd,
        spatial=", 4" * nd,
    )
    cls = type(name, (base,), {"__doc__": doc, "_nd": nd, "_kind": kind})
    cls.__module__ = "numconv"
    return cls


MaxPool1d = _layer("MaxPool1d", _ExtremePool, "max_pool", 1)
MaxPool2d = _layer("MaxPool2d", _ExtremePool, "max_pool", 2)
MaxPool3d = _layer("MaxPool3d", _ExtremePool, "max_pool", 3)
MinPool1d = _layer("MinPool1d", _ExtremePool, "min_pool", 1)
MinPool2d = _layer("MinPool2d", _ExtremePool, "min_pool", 2)
MinPool3d = _layer("MinPool3d", _ExtremePool, "min_pool", 3)
AvgPool1d = _layer("AvgPool1d", _AvgPool, "avg_pool", 1)
AvgPool2d = _layer("AvgPool2d", _AvgPool, "avg_pool", 2)
AvgPool3d = _layer("AvgPool3d", _AvgPool, "avg_pool", 3)
LPPool1d = _layer("LPPool1d", _LPPool, "lp_pool", 1)
LPPool2d = _layer("LPPool2d", _LPPool, "lp_pool", 2)
LPPool3d = _layer("LPPool3d", _LPPool, "lp_pool", 3)
AdaptiveAvgPool1d = _layer("AdaptiveAvgPool1d", _AdaptiveAvgPool, "adaptive_avg_pool", 1)
AdaptiveAvgPool2d = _layer("AdaptiveAvgPool2d", _AdaptiveAvgPool, "adaptive_avg_pool", 2)
AdaptiveAvgPool3d = _layer("AdaptiveAvgPool3d", _AdaptiveAvgPool, "adaptive_avg_pool", 3)
AdaptiveMaxPool1d = _layer("AdaptiveMaxPool1d", _AdaptiveMaxPool, "adaptive_max_pool", 1)
AdaptiveMaxPool2d = _layer("AdaptiveMaxPool2d", _AdaptiveMaxPool, "adaptive_max_pool", 2)
AdaptiveMaxPool3d = _layer("AdaptiveMaxPool3d", _AdaptiveMaxPool, "adaptive_max_pool", 3)
MaxUnpool1d = _layer("MaxUnpool1d", _MaxUnpool, "max_unpool", 1)
MaxUnpool2d = _layer("MaxUnpool2d", _MaxUnpool, "max_unpool", 2)
MaxUnpool3d = _layer("MaxUnpool3d", _MaxUnpool, "max_unpool", 3)

_FAMILIES = ("MaxPool", "MinPool", "AvgPool", "LPPool", "AdaptiveAvgPool", "AdaptiveMaxPool",
             "MaxUnpool")  # fmt: skip
__all__ = [f"{family}{nd}d" for family in _FAMILIES for nd in (1, 2, 3)]
