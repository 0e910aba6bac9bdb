"""Max unpooling: the values of a max pooling put back where they came from."""

from __future__ import annotations

import numpy as np

from .. import _aligned
from .._params import as_float_array, result_dtypes
from ..kernels.pool import gather, scatter
from .common import (
    SHAPES,
    as_rows,
    check_grad_output,
    check_index_range,
    check_indices,
    finish,
    public,
)
from .plan import plan_unpool

_DOC = """\
{nd}-d max unpooling: the partial inverse of :func:`max_pool{nd}d`.

Every value of ``x`` is written at its index in a zero output; every other
output is 0. Of values that share an index the last one (in scan order) wins,
as in PyTorch.

Parameters
----------
x : array_like of float, shape (N, C, {s}) or (C, {s})
    The pooled values.
indices : array_like of int, same shape as ``x``
    Flat positions within each ``(n, c)`` output plane, e.g. from
    ``max_pool{nd}d(..., return_indices=True)`` in numconv or PyTorch.
kernel_size : int or tuple of {nd} ints
stride : int or tuple of {nd} ints, optional
    Defaults to ``kernel_size``.
padding : int or tuple of {nd} ints, default 0
output_size : tuple of ints, optional
    The spatial output size (or the whole output shape, whose last {nd} entries
    are used); each entry strictly within ``stride`` of the default size.

Returns
-------
ndarray, shape (N, C, {o}) or (C, {o})

Notes
-----
Default size per dim: ``(n - 1) * stride - 2 * padding + kernel_size``. The
admitted range ``(default - stride, default + stride)`` is PyTorch's; it contains
the input size of every pooling that produced ``x``, ceil_mode included.
"""

_BACKWARD_DOC = """\
Gradient of :func:`max_unpool{nd}d` with respect to ``x``: ``grad_output`` read at ``indices``.

Parameters
----------
grad_output : array_like of float
    Same shape as the forward output.
x : array_like of float
    The forward input (only its shape and dtype are used).
indices, kernel_size, stride, padding, output_size
    As in the forward call.

Returns
-------
ndarray, same shape as ``x``
"""


def _make(nd: int):
    def unpool(x, indices, kernel_size, stride=None, padding=0, output_size=None):
        x = as_float_array(x, "x")
        compute, result = result_dtypes(x)
        plan = plan_unpool(nd, x.shape, kernel_size, stride, padding, output_size)
        flat_indices = check_indices(indices, plan.input_shape, plan.planes)
        # Indices address the *output* plane: that is where the values go.
        plane_size = int(np.prod(plan.out))
        y = _aligned.empty((plan.planes, plane_size), dtype=compute)
        skipped = scatter(as_rows(x, plan.planes, compute), flat_indices, y, accumulate=False)
        check_index_range(skipped, indices, plane_size)
        return finish(y, plan.output_shape, result)

    def backward(grad_output, x, indices, kernel_size, stride=None, padding=0, output_size=None):
        x = as_float_array(x, "x")
        grad_output = as_float_array(grad_output, "grad_output")
        compute, result = result_dtypes(x, grad_output)
        plan = plan_unpool(nd, x.shape, kernel_size, stride, padding, output_size)
        check_grad_output(grad_output, plan)
        flat_indices = check_indices(indices, plan.input_shape, plan.planes)
        grad_input = _aligned.empty(flat_indices.shape, dtype=compute)
        skipped = gather(as_rows(grad_output, plan.planes, compute), flat_indices, grad_input)
        check_index_range(skipped, indices, int(np.prod(plan.out)))
        return finish(grad_input, plan.input_shape, result)

    s, o = SHAPES[nd]
    return (
        public(unpool, f"max_unpool{nd}d", _DOC.format(nd=nd, s=s, o=o)),
        public(backward, f"max_unpool{nd}d_backward", _BACKWARD_DOC.format(nd=nd)),
    )


max_unpool1d, max_unpool1d_backward = _make(1)
max_unpool2d, max_unpool2d_backward = _make(2)
max_unpool3d, max_unpool3d_backward = _make(3)

__all__ = [f"max_unpool{nd}d{suffix}" for nd in (1, 2, 3) for suffix in ("", "_backward")]
