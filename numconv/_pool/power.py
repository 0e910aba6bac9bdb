"""LP (power-average) pooling, forward and backward.

Computed exactly as PyTorch composes it, so results agree in every corner:
``t = avg_pool(x ** p) · K`` with ``K`` the kernel volume and PyTorch's default
divisor (the in-bounds count; no padding), then ``sign(t) · relu(|t|) ** (1/p)``.
``t`` is the window sum of ``x ** p`` except for a ceil-mode window hanging past
the input, whose sum PyTorch scales by ``K / count``; numconv does the same.
The window sums run in the average-pooling kernels; the powers are elementwise.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._params import as_float_array, result_dtypes
from .average import window_means, window_means_backward
from .common import SHAPES, check_grad_output, finish, public
from .extreme import extremes, route_to_indices
from .plan import plan_pool
from .windows import counts, regular_windows


def _check_norm_type(norm_type) -> float:
    if not isinstance(norm_type, numbers.Real) or isinstance(norm_type, bool | np.bool_):
        raise TypeError(f"norm_type must be a positive real number or inf; got {norm_type!r}")
    if not norm_type > 0:  # also rejects NaN
        raise ValueError(f"norm_type must be a positive real number or inf; got {norm_type!r}")
    return float(norm_type)


def _setup(nd, x, norm_type, kernel_size, stride, ceil_mode, dtype):
    p = _check_norm_type(norm_type)
    plan = plan_pool(nd, x.shape, kernel_size, stride, 0, 1, ceil_mode)
    windows = regular_windows(plan)
    # Dividing by count / K is PyTorch's "average, then multiply by K".
    divisor = counts(windows, dtype) / dtype.type(np.prod(plan.kernel))
    return p, plan, windows, divisor


def _power_sums(plan, windows, x, p, divisor, dtype):
    powers = np.power(x.reshape(plan.planes, *plan.spatial), dtype.type(p), dtype=dtype)
    return window_means(plan, windows, powers, divisor, dtype)


_DOC = """\
{nd}-d power-average (LP) pooling: ``(sum over the window of x ** p) ** (1 / p)``.

Parameters
----------
x : array_like of float, shape (N, C, {s}) or (C, {s})
norm_type : float
    The power ``p``: positive, or ``inf`` for max pooling of ``|x|`` (as in
    PyTorch). ``p = 1`` is sum pooling.
kernel_size : int or tuple of {nd} ints
stride : int or tuple of {nd} ints, optional
    Defaults to ``kernel_size``.
ceil_mode : bool, default False
    Round the output size up; the last window must still start inside the input.

Returns
-------
ndarray, shape (N, C, {o}) or (C, {o})

Notes
-----
As PyTorch: the window sum ``S`` gives ``sign(S) * relu(|S|) ** (1 / p)``, so a
negative sum gives NaN unless ``1 / p`` is an integer. A ceil-mode window that
hangs past the input has its sum scaled by ``K / count`` (kernel volume over the
elements present), because PyTorch computes ``avg_pool(x ** p) * K``. No padding.
``out = floor((n - k + (ceil_mode ? stride - 1 : 0)) / stride) + 1`` per dim.
"""

_BACKWARD_DOC = """\
Gradient of :func:`lp_pool{nd}d` with respect to its input.

Parameters
----------
grad_output : array_like of float
    Same shape as the forward output.
x : array_like of float
    The forward input.
norm_type, kernel_size, stride, ceil_mode
    As in the forward call.

Returns
-------
ndarray, same shape as ``x``

Notes
-----
Where a window's sum is exactly 0 its gradient is 0 (PyTorch's rule; the
derivative of ``S ** (1 / p)`` is unbounded there). For ``norm_type=inf`` the
gradient goes to each window's largest ``|x|``, times ``sign(x)``.
"""


def _make(nd: int):
    def pool(x, norm_type, kernel_size, stride=None, ceil_mode=False):
        x = as_float_array(x, "x")
        compute, result = result_dtypes(x)
        p, plan, windows, divisor = _setup(nd, x, norm_type, kernel_size, stride, ceil_mode,
                                           compute)  # fmt: skip
        if p == math.inf:
            y, _ = extremes(plan, windows, np.abs(x), compute, negate=False)
            return finish(y, plan.output_shape, result)
        sums = _power_sums(plan, windows, x, p, divisor, compute)
        with np.errstate(invalid="ignore"):  # negative sums give NaN, as in PyTorch
            y = np.power(sums, compute.type(1 / p), out=sums)
        return finish(y, plan.output_shape, result)

    def backward(grad_output, x, norm_type, kernel_size, stride=None, ceil_mode=False):
        x = as_float_array(x, "x")
        grad_output = as_float_array(grad_output, "grad_output")
        compute, result = result_dtypes(x, grad_output)
        p, plan, windows, divisor = _setup(nd, x, norm_type, kernel_size, stride, ceil_mode,
                                           compute)  # fmt: skip
        check_grad_output(grad_output, plan)
        if p == math.inf:  # max pooling of |x|: route to the argmax, times sign(x)
            _, indices = extremes(plan, windows, np.abs(x), compute, negate=False)
            grad_abs = route_to_indices(plan, grad_output, indices, compute, compute, trusted=True)
            return (grad_abs * np.sign(x, dtype=compute)).astype(result, copy=False)
        sums = _power_sums(plan, windows, x, p, divisor, compute)
        gy = grad_output.reshape(plan.planes, *plan.out).astype(compute, copy=False)
        with np.errstate(invalid="ignore", divide="ignore"):
            grad_sums = gy * compute.type(1 / p) * np.power(sums, compute.type(1 / p - 1))
            grad_sums[sums == 0] = 0
            grad_powers = window_means_backward(plan, windows, grad_sums, divisor, compute)
            xc = x.reshape(plan.planes, *plan.spatial).astype(compute, copy=False)
            grad_input = grad_powers * compute.type(p) * np.power(xc, compute.type(p - 1))
        return finish(grad_input, plan.input_shape, result)

    s, o = SHAPES[nd]
    return (
        public(pool, f"lp_pool{nd}d", _DOC.format(nd=nd, s=s, o=o)),
        public(backward, f"lp_pool{nd}d_backward", _BACKWARD_DOC.format(nd=nd)),
    )


lp_pool1d, lp_pool1d_backward = _make(1)
lp_pool2d, lp_pool2d_backward = _make(2)
lp_pool3d, lp_pool3d_backward = _make(3)

__all__ = [f"lp_pool{nd}d{suffix}" for nd in (1, 2, 3) for suffix in ("", "_backward")]
