"""Max and min pooling, forward and backward (re-exported by :mod:`numconv.functional`)."""

from __future__ import annotations

import numpy as np

from ._params import PoolPlan, as_float_array, plan_pool, result_dtypes
from .kernels.pool import max_pool_forward, scatter_by_index


def _planes(a: np.ndarray, plan: PoolPlan, dtype, negate: bool = False) -> np.ndarray:
    """``a`` as writable C-contiguous ``(N·C, D, H, W)`` in ``dtype`` (negated if asked).

    A view of a read-only caller array would compile a second kernel signature,
    so read-only inputs are copied.
    """
    planes = a.reshape(plan.planes, *plan.spatial)
    if negate:
        return np.negative(planes, dtype=dtype)
    if planes.dtype == dtype and planes.flags.c_contiguous and planes.flags.writeable:
        return planes
    return np.array(planes, dtype=dtype, order="C")


def _argmax(plan: PoolPlan, x: np.ndarray, dtype, negate: bool):
    """Window extrema and their flat in-plane indices, as ``(planes, OD, OH, OW)``."""
    y = np.empty((plan.planes, *plan.out), dtype=dtype)
    indices = np.empty((plan.planes, *plan.out), dtype=np.int64)
    if plan.planes:
        max_pool_forward(
            _planes(x, plan, dtype, negate), y, indices,
            *plan.kernel, *plan.stride, *plan.padding, *plan.dilation,
        )  # fmt: skip
    return (np.negative(y) if negate else y), indices


def _extreme_pool(nd, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                  negate):  # fmt: skip
    x = as_float_array(x, "x")
    if not isinstance(return_indices, bool | np.bool_):
        raise TypeError(f"return_indices must be True or False; got {return_indices!r}")
    plan = plan_pool(nd, x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    compute, result = result_dtypes(x)
    y, indices = _argmax(plan, x, compute, negate)
    y = y.reshape(plan.output_shape).astype(result, copy=False)
    return (y, indices.reshape(plan.output_shape)) if return_indices else y


def check_indices(indices, plan: PoolPlan, name: str = "indices") -> np.ndarray:
    """Validate pooling indices (shape, integer dtype, in-plane range) for a kernel."""
    indices = np.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array; got dtype {indices.dtype}")
    if indices.shape != plan.output_shape:
        raise ValueError(f"{name} must have shape {plan.output_shape}; got {indices.shape}")
    plane_size = int(np.prod(plan.spatial))
    if indices.size and (indices.min() < 0 or indices.max() >= plane_size):
        raise ValueError(
            f"{name} must lie in [0, {plane_size}) (flat positions in one input plane);"
            f" got values in [{indices.min()}, {indices.max()}]"
        )
    return np.ascontiguousarray(
        indices.reshape(plan.planes, int(np.prod(plan.out))), dtype=np.int64
    )


def _extreme_pool_backward(nd, grad_output, x, kernel_size, stride, padding, dilation,
                           ceil_mode, indices, negate):  # fmt: skip
    x = as_float_array(x, "x")
    grad_output = as_float_array(grad_output, "grad_output")
    plan = plan_pool(nd, x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    if grad_output.shape != plan.output_shape:
        raise ValueError(
            f"grad_output must have the forward output's shape {plan.output_shape};"
            f" got {grad_output.shape}"
        )
    compute, result = result_dtypes(x, grad_output)
    if indices is None:
        flat_indices = _argmax(plan, x, compute, negate)[1].reshape(
            plan.planes, int(np.prod(plan.out))
        )
    else:
        flat_indices = check_indices(indices, plan)
    grad_input = np.zeros((plan.planes, int(np.prod(plan.spatial))), dtype=compute)
    if plan.planes:
        gy = np.array(grad_output.reshape(plan.planes, -1), dtype=compute, order="C")
        scatter_by_index(gy, flat_indices, grad_input)
    return grad_input.reshape(plan.input_shape).astype(result, copy=False)


# --------------------------------------------------------------------------- public
_POOL_DOC = """\
{nd}-d {kind} pooling{beyond}.

Parameters
----------
x : array_like of float, shape (N, C, {s}) or (C, {s})
kernel_size : int or tuple of {nd} ints
stride : int or tuple of {nd} ints, optional
    Defaults to ``kernel_size``.
padding : int or tuple of {nd} ints, default 0
    Implicit {pad} padding on both sides; at most ``kernel_size // 2``.
dilation : int or tuple of {nd} ints, default 1
ceil_mode : bool, default False
    Round the output size up; the last window must still start inside the
    input or the left padding.
return_indices : bool, default False
    Also return, for every output, the flat index of the chosen element within
    its unpadded ``(n, c)`` plane (int64; PyTorch's format).

Returns
-------
y : ndarray, shape (N, C, {o}) or (C, {o})
indices : ndarray of int64, same shape as ``y`` (if ``return_indices``)

Notes
-----
Per dim, with ``e = dilation * (k - 1) + 1``:
``out = floor((n + 2 * padding - e + (ceil_mode ? stride - 1 : 0)) / stride) + 1``,
minus one if ceil_mode makes the last window start at or beyond ``n + padding``.
Ties go to the first {ext} element in scan order; a window holding NaN gives NaN.
"""

_BACKWARD_DOC = """\
Gradient of :func:`{kind}_pool{nd}d` with respect to its input.

Each output's gradient goes to the element its window chose; overlapping
windows add up.

Parameters
----------
grad_output : array_like of float
    Same shape as the forward output.
x : array_like of float
    The forward input.
kernel_size, stride, padding, dilation, ceil_mode
    As in the forward call.
indices : array_like of int, optional
    The forward's ``return_indices`` output; saves recomputing the windows.

Returns
-------
ndarray, same shape as ``x``
"""

_SHAPES = {1: ("L", "L_out"), 2: ("H, W", "H_out, W_out"), 3: ("D, H, W", "D_out, H_out, W_out")}


def _make(nd: int, negate: bool):
    kind = "min" if negate else "max"

    def pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
             return_indices=False):  # fmt: skip
        return _extreme_pool(nd, x, kernel_size, stride, padding, dilation, ceil_mode,
                             return_indices, negate)  # fmt: skip

    def backward(grad_output, x, kernel_size, stride=None, padding=0, dilation=1,
                 ceil_mode=False, indices=None):  # fmt: skip
        return _extreme_pool_backward(nd, grad_output, x, kernel_size, stride, padding,
                                      dilation, ceil_mode, indices, negate)  # fmt: skip

    s, o = _SHAPES[nd]
    pool.__name__ = pool.__qualname__ = f"{kind}_pool{nd}d"
    backward.__name__ = backward.__qualname__ = f"{kind}_pool{nd}d_backward"
    pool.__doc__ = _POOL_DOC.format(
        nd=nd, kind=kind, s=s, o=o,
        beyond=" (beyond PyTorch: ``min_pool(x) = -max_pool(-x)``)" if negate else "",
        pad="+∞" if negate else "−∞", ext="minimal" if negate else "maximal",
    )  # fmt: skip
    backward.__doc__ = _BACKWARD_DOC.format(nd=nd, kind=kind)
    pool.__module__ = backward.__module__ = "numconv.functional"
    return pool, backward


max_pool1d, max_pool1d_backward = _make(1, negate=False)
max_pool2d, max_pool2d_backward = _make(2, negate=False)
max_pool3d, max_pool3d_backward = _make(3, negate=False)
min_pool1d, min_pool1d_backward = _make(1, negate=True)
min_pool2d, min_pool2d_backward = _make(2, negate=True)
min_pool3d, min_pool3d_backward = _make(3, negate=True)

__all__ = [
    f"{kind}_pool{nd}d{suffix}"
    for kind in ("max", "min")
    for nd in (1, 2, 3)
    for suffix in ("", "_backward")
]
