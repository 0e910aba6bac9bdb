"""Average pooling (regular and adaptive), forward and backward."""

from __future__ import annotations

import numpy as np

from .. import _aligned
from .._params import as_float_array, check_bool, check_int, result_dtypes
from ..kernels.pool import plane_mean, plane_mean_backward, window_mean, window_mean_backward
from .common import SHAPES, as_planes, as_rows, check_grad_output, finish, public
from .plan import PlaneMap, plan_adaptive, plan_pool
from .windows import Windows, adaptive_windows, average_divisor, counts, regular_windows


def window_means(plan: PlaneMap, windows: Windows, x: np.ndarray, divisor, dtype):
    """Each window's sum divided by its divisor, as ``(planes, *out)``."""
    y = _aligned.empty((plan.planes, *plan.out), dtype=dtype)
    x_planes = as_planes(x, plan.planes, plan.spatial, dtype)
    window_mean(x_planes, y, *windows.bounds_args, divisor, *windows.inner_w)
    return y


def window_means_backward(plan: PlaneMap, windows: Windows, grad_output, divisor, dtype):
    """Adjoint of :func:`window_means`, as ``(planes, *spatial)``."""
    grad_input = _aligned.empty((plan.planes, *plan.spatial), dtype=dtype)  # zeroed by the kernel
    gy = as_planes(grad_output, plan.planes, plan.out, dtype)
    window_mean_backward(gy, grad_input, *windows.bounds_args, divisor, *windows.inner_w)
    return grad_input


def _check_divisor_override(value):
    if value is None:
        return None
    value = check_int(value, "divisor_override")
    if value == 0:
        raise ValueError("divisor_override must be a nonzero int or None; got 0")
    return value


def _average_plan(nd, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                  divisor_override, dtype):  # fmt: skip
    plan = plan_pool(nd, x.shape, kernel_size, stride, padding, 1, ceil_mode)
    count_include_pad = check_bool(count_include_pad, "count_include_pad")
    divisor_override = _check_divisor_override(divisor_override)
    windows = regular_windows(plan)
    divisor = average_divisor(
        windows, plan.kernel, plan.padding, count_include_pad, divisor_override, dtype
    )
    return plan, windows, divisor


# --------------------------------------------------------------------------- public
_AVG_DOC = """\
{nd}-d average pooling.

Parameters
----------
x : array_like of float, shape (N, C, {s}) or (C, {s})
kernel_size : int or tuple of {nd} ints
stride : int or tuple of {nd} ints, optional
    Defaults to ``kernel_size``.
padding : int or tuple of {nd} ints, default 0
    Implicit zero padding on both sides; at most ``kernel_size // 2``.
ceil_mode : bool, default False
    Round the output size up; the last window must still start inside the
    input or the left padding.
count_include_pad : bool, default True
    Count padded positions in the divisor.
divisor_override : int, optional
    Divide every window's sum by this nonzero int instead{beyond}.

Returns
-------
ndarray, shape (N, C, {o}) or (C, {o})

Notes
-----
``out = floor((n + 2 * padding - k + (ceil_mode ? stride - 1 : 0)) / stride) + 1``
per dim, minus one if ceil_mode makes the last window start at or beyond
``n + padding``. The divisor of a window is ``divisor_override`` if given; else,
with ``count_include_pad``, the product over dims of
``min(start + k, n + padding) - start`` (``start`` in padded coordinates, so a
ceil-mode overhang past the right padding is not counted); else the number of
in-bounds elements. These are PyTorch's rules.
"""

_ADAPTIVE_DOC = """\
{nd}-d adaptive average pooling: a fixed output size whatever the input size.

Parameters
----------
x : array_like of float, shape (N, C, {s}) or (C, {s})
output_size : int or tuple of {nd} (int or None)
    ``None`` keeps that dim's input size.

Returns
-------
ndarray, shape (N, C, {o}) or (C, {o})

Notes
-----
Output bin ``i`` of ``out`` over an input dim of size ``n`` averages
``[floor(i * n / out), ceil((i + 1) * n / out))``; neighbouring bins may overlap.
"""

_BACKWARD_DOC = """\
Gradient of :func:`{name}` with respect to its input.

Each window's gradient is spread evenly (divided by the window's divisor) over
its in-bounds elements; overlapping windows add up.

Parameters
----------
grad_output : array_like of float
    Same shape as the forward output.
x : array_like of float
    The forward input (only its shape and dtype are used).
{args}
    As in the forward call.

Returns
-------
ndarray, same shape as ``x``
"""


def _make(nd: int):
    def pool(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
             divisor_override=None):  # fmt: skip
        x = as_float_array(x, "x")
        compute, result = result_dtypes(x)
        plan, windows, divisor = _average_plan(
            nd, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
            divisor_override, compute,
        )  # fmt: skip
        return finish(window_means(plan, windows, x, divisor, compute), plan.output_shape, result)

    def backward(grad_output, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):  # fmt: skip
        x = as_float_array(x, "x")
        grad_output = as_float_array(grad_output, "grad_output")
        compute, result = result_dtypes(x, grad_output)
        plan, windows, divisor = _average_plan(
            nd, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
            divisor_override, compute,
        )  # fmt: skip
        check_grad_output(grad_output, plan)
        grad_input = window_means_backward(plan, windows, grad_output, divisor, compute)
        return finish(grad_input, plan.input_shape, result)

    s, o = SHAPES[nd]
    name = f"avg_pool{nd}d"
    beyond = " (PyTorch offers this for 2-d and 3-d only)" if nd == 1 else ""
    args = "kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override"
    return (
        public(pool, name, _AVG_DOC.format(nd=nd, s=s, o=o, beyond=beyond)),
        public(backward, f"{name}_backward", _BACKWARD_DOC.format(name=name, args=args)),
    )


def _global_mean(plan: PlaneMap, x, dtype):
    # One value a plane, stored one at a time: no vector stores to align, and
    # _aligned.empty's extra microsecond was a tenth of global_avg_7's call.
    y = np.empty(plan.planes, dtype=dtype)
    plane_mean(as_rows(x, plan.planes, dtype), y)
    return y


def _global_mean_backward(plan: PlaneMap, grad_output, dtype):
    # Rows of a few dozen values start off a line whatever the base: no gain from
    # aligning it, only _aligned.empty's extra microsecond on a ~10 µs call.
    grad_input = np.empty((plan.planes, int(np.prod(plan.spatial))), dtype=dtype)
    plane_mean_backward(as_planes(grad_output, plan.planes, (), dtype), grad_input)
    return grad_input


def _make_adaptive(nd: int):
    def pool(x, output_size):
        x = as_float_array(x, "x")
        compute, result = result_dtypes(x)
        plan = plan_adaptive(nd, x.shape, output_size)
        if plan.out == (1, 1, 1):  # global average pooling: one mean per plane
            return finish(_global_mean(plan, x, compute), plan.output_shape, result)
        windows = adaptive_windows(plan)
        divisor = counts(windows, compute)
        return finish(window_means(plan, windows, x, divisor, compute), plan.output_shape, result)

    def backward(grad_output, x, output_size):
        x = as_float_array(x, "x")
        grad_output = as_float_array(grad_output, "grad_output")
        compute, result = result_dtypes(x, grad_output)
        plan = plan_adaptive(nd, x.shape, output_size)
        check_grad_output(grad_output, plan)
        if plan.out == (1, 1, 1):
            grad_input = _global_mean_backward(plan, grad_output, compute)
            return finish(grad_input, plan.input_shape, result)
        windows = adaptive_windows(plan)
        divisor = counts(windows, compute)
        grad_input = window_means_backward(plan, windows, grad_output, divisor, compute)
        return finish(grad_input, plan.input_shape, result)

    s, o = SHAPES[nd]
    name = f"adaptive_avg_pool{nd}d"
    return (
        public(pool, name, _ADAPTIVE_DOC.format(nd=nd, s=s, o=o)),
        public(backward, f"{name}_backward", _BACKWARD_DOC.format(name=name, args="output_size")),
    )


avg_pool1d, avg_pool1d_backward = _make(1)
avg_pool2d, avg_pool2d_backward = _make(2)
avg_pool3d, avg_pool3d_backward = _make(3)
adaptive_avg_pool1d, adaptive_avg_pool1d_backward = _make_adaptive(1)
adaptive_avg_pool2d, adaptive_avg_pool2d_backward = _make_adaptive(2)
adaptive_avg_pool3d, adaptive_avg_pool3d_backward = _make_adaptive(3)

__all__ = [
    f"{kind}_pool{nd}d{suffix}"
    for kind in ("avg", "adaptive_avg")
    for nd in (1, 2, 3)
    for suffix in ("", "_backward")
]
