"""Max and min pooling (regular and adaptive), forward and backward.

Min pooling is max pooling of ``−x`` negated, so both share one kernel and the
same tie and NaN rules.
"""

from __future__ import annotations

import numpy as np

from .. import _aligned
from .._params import as_float_array, check_bool, result_dtypes
from ..kernels.pool import scatter, window_max
from .common import (
    SHAPES,
    as_planes,
    as_rows,
    check_grad_output,
    check_index_range,
    check_indices,
    finish,
    public,
)
from .plan import PlaneMap, plan_adaptive, plan_pool
from .windows import Windows, adaptive_windows, regular_windows


def extremes(plan: PlaneMap, windows: Windows, x: np.ndarray, dtype, negate: bool):
    """Window maxima (minima if ``negate``) and their flat in-plane indices, by plane."""
    planes = np.negative(x.reshape(plan.planes, *plan.spatial), dtype=dtype) if negate else (
        as_planes(x, plan.planes, plan.spatial, dtype)
    )  # fmt: skip
    y = _aligned.empty((plan.planes, *plan.out), dtype=dtype)
    indices = _aligned.empty((plan.planes, *plan.out), dtype=np.int64)
    window_max(planes, y, indices, *windows.kernel_args())
    return (np.negative(y, out=y) if negate else y), indices


def route_to_indices(plan: PlaneMap, grad_output: np.ndarray, indices, dtype, result,
                     trusted: bool = False):  # fmt: skip
    """Input gradient: each output's gradient added at its index.

    Caller-supplied ``indices`` are validated; ``trusted`` ones (made by
    :func:`extremes` in this call) are used as they are.
    """
    plane_size = int(np.prod(plan.spatial))
    if trusted:
        flat_indices = indices.reshape(plan.planes, int(np.prod(plan.out)))
    else:
        flat_indices = check_indices(indices, plan.output_shape, plan.planes)
    grad_input = _aligned.empty((plan.planes, plane_size), dtype=dtype)
    rows = as_rows(grad_output, plan.planes, dtype)
    skipped = scatter(rows, flat_indices, grad_input, accumulate=True)
    if not trusted:
        check_index_range(skipped, indices, plane_size)
    return finish(grad_input, plan.input_shape, result)


def _forward(plan, windows, x, return_indices, negate):
    return_indices = check_bool(return_indices, "return_indices")
    compute, result = result_dtypes(x)
    y, indices = extremes(plan, windows, x, compute, negate)
    y = finish(y, plan.output_shape, result)
    return (y, indices.reshape(plan.output_shape)) if return_indices else y


def _backward(plan, windows, grad_output, x, indices, negate):
    check_grad_output(grad_output, plan)
    compute, result = result_dtypes(x, grad_output)
    if indices is None:
        indices = extremes(plan, windows, x, compute, negate)[1]
        return route_to_indices(plan, grad_output, indices, compute, result, trusted=True)
    return route_to_indices(plan, grad_output, indices, compute, result)


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
Gradient of :func:`{name}` with respect to its input.

Each output's gradient goes to the element its window chose; overlapping
windows add up.

Parameters
----------
grad_output : array_like of float
    Same shape as the forward output.
x : array_like of float
    The forward input.
{args}
    As in the forward call.
indices : array_like of int, optional
    The forward's ``return_indices`` output; saves recomputing the windows.

Returns
-------
ndarray, same shape as ``x``
"""

_ADAPTIVE_DOC = """\
{nd}-d adaptive max pooling: a fixed output size whatever the input size.

Parameters
----------
x : array_like of float, shape (N, C, {s}) or (C, {s})
output_size : int or tuple of {nd} (int or None)
    ``None`` keeps that dim's input size.
return_indices : bool, default False
    Also return the flat in-plane index of every maximum (int64; PyTorch's format).

Returns
-------
y : ndarray, shape (N, C, {o}) or (C, {o})
indices : ndarray of int64, same shape as ``y`` (if ``return_indices``)

Notes
-----
Output bin ``i`` of ``out`` over an input dim of size ``n`` covers
``[floor(i * n / out), ceil((i + 1) * n / out))``; neighbouring bins may overlap.
Ties go to the first maximal element in scan order; NaN propagates.
"""


def _make(nd: int, negate: bool):
    kind = "min" if negate else "max"

    def pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
             return_indices=False):  # fmt: skip
        x = as_float_array(x, "x")
        plan = plan_pool(nd, x.shape, kernel_size, stride, padding, dilation, ceil_mode)
        return _forward(plan, regular_windows(plan), x, return_indices, negate)

    def backward(grad_output, x, kernel_size, stride=None, padding=0, dilation=1,
                 ceil_mode=False, indices=None):  # fmt: skip
        x = as_float_array(x, "x")
        grad_output = as_float_array(grad_output, "grad_output")
        plan = plan_pool(nd, x.shape, kernel_size, stride, padding, dilation, ceil_mode)
        return _backward(plan, regular_windows(plan), grad_output, x, indices, negate)

    s, o = SHAPES[nd]
    name = f"{kind}_pool{nd}d"
    doc = _POOL_DOC.format(
        nd=nd, kind=kind, s=s, o=o,
        beyond=" (beyond PyTorch: ``min_pool(x) = -max_pool(-x)``)" if negate else "",
        pad="+∞" if negate else "−∞", ext="minimal" if negate else "maximal",
    )  # fmt: skip
    args = "kernel_size, stride, padding, dilation, ceil_mode"
    return (
        public(pool, name, doc),
        public(backward, f"{name}_backward", _BACKWARD_DOC.format(name=name, args=args)),
    )


def _make_adaptive(nd: int):
    def pool(x, output_size, return_indices=False):
        x = as_float_array(x, "x")
        plan = plan_adaptive(nd, x.shape, output_size)
        return _forward(plan, adaptive_windows(plan), x, return_indices, negate=False)

    def backward(grad_output, x, output_size, indices=None):
        x = as_float_array(x, "x")
        grad_output = as_float_array(grad_output, "grad_output")
        plan = plan_adaptive(nd, x.shape, output_size)
        return _backward(plan, adaptive_windows(plan), grad_output, x, indices, negate=False)

    s, o = SHAPES[nd]
    name = f"adaptive_max_pool{nd}d"
    return (
        public(pool, name, _ADAPTIVE_DOC.format(nd=nd, s=s, o=o)),
        public(backward, f"{name}_backward", _BACKWARD_DOC.format(name=name, args="output_size")),
    )


max_pool1d, max_pool1d_backward = _make(1, negate=False)
max_pool2d, max_pool2d_backward = _make(2, negate=False)
max_pool3d, max_pool3d_backward = _make(3, negate=False)
min_pool1d, min_pool1d_backward = _make(1, negate=True)
min_pool2d, min_pool2d_backward = _make(2, negate=True)
min_pool3d, min_pool3d_backward = _make(3, negate=True)
adaptive_max_pool1d, adaptive_max_pool1d_backward = _make_adaptive(1)
adaptive_max_pool2d, adaptive_max_pool2d_backward = _make_adaptive(2)
adaptive_max_pool3d, adaptive_max_pool3d_backward = _make_adaptive(3)

__all__ = [
    f"{kind}_pool{nd}d{suffix}"
    for kind in ("max", "min", "adaptive_max")
    for nd in (1, 2, 3)
    for suffix in ("", "_backward")
]
