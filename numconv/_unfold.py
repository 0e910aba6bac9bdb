"""unfold (im2col) and fold (col2im) for 1, 2 and 3 spatial dims.

``unfold`` lays out every sliding block of an image as a column; ``fold`` adds
columns back into an image and is unfold's adjoint, so each is the other's
gradient. Row ``c·∏k + kernel position`` and column ``output position`` (both in
C order) follow PyTorch's layout, which only has the 2-d case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _aligned
from ._params import (
    KERNEL_RANK,
    as_float_array,
    caller_shape,
    check_shape_arg,
    conv_output_size,
    kernel_array,
    lift,
    normalize_padding,
    ntuple,
    result_dtypes,
)
from .kernels.unfold import fold_planes, unfold_planes

__all__ = ["fold", "unfold"]


@dataclass(frozen=True)
class BlockPlan:
    """Sliding blocks over ``channels`` planes of size ``spatial``, lifted to three dims."""

    nd: int
    batched: bool
    batch: int
    channels: int
    spatial: tuple[int, int, int]
    kernel: tuple[int, int, int]
    stride: tuple[int, int, int]
    pads: tuple[tuple[int, int], ...]
    dilation: tuple[int, int, int]
    out: tuple[int, int, int]

    @property
    def image_shape(self) -> tuple[int, ...]:
        return caller_shape(self, self.channels, self.spatial)

    @property
    def columns_shape(self) -> tuple[int, ...]:
        shape = (self.channels * math.prod(self.kernel), math.prod(self.out))
        return (self.batch, *shape) if self.batched else shape

    @property
    def kernel_args(self) -> tuple[int, ...]:
        before = tuple(b for b, _ in self.pads)
        return (*self.kernel, *self.stride, *before, *self.dilation, *self.out)


def _rank(kernel_size, output_size=None, ndim: int | None = None) -> int:
    """The number of spatial dims: from a tuple argument, else PyTorch's 2-d."""
    for value in (output_size, kernel_size):
        if isinstance(value, tuple | list):
            if not 1 <= len(value) <= 3:
                raise ValueError(f"expected 1 to 3 spatial dims; got {value!r}")
            return len(value)
    return 3 if ndim == 5 else 2


def _plan(nd, batched, batch, channels, spatial, kernel_size, dilation, padding, stride,
          image_name):  # fmt: skip
    kernel = ntuple(kernel_size, nd, "kernel_size", minimum=1)
    dilation = ntuple(dilation, nd, "dilation", minimum=1)
    stride = ntuple(stride, nd, "stride", minimum=1)
    if isinstance(padding, str):
        raise ValueError(f"padding must be an int or a tuple; got {padding!r}")
    pads = normalize_padding(padding, nd)
    if channels < 1 or min(spatial) < 1:
        raise ValueError(f"{image_name} must have no zero-size channel or spatial dim")
    out = tuple(map(conv_output_size, spatial, *zip(*pads, strict=True), kernel, stride, dilation))
    if min(out) < 1:
        raise ValueError(
            f"kernel larger than padded input: {image_name} spatial size {tuple(spatial)},"
            f" padding {pads}, kernel_size {kernel}, dilation {dilation} give {out} blocks"
        )
    return BlockPlan(
        nd=nd, batched=batched, batch=batch, channels=channels, spatial=lift(spatial, 1),
        kernel=lift(kernel, 1), stride=lift(stride, 1), pads=lift(pads, (0, 0)),
        dilation=lift(dilation, 1), out=lift(out, 1),
    )  # fmt: skip


def plan_unfold(x_shape, kernel_size, dilation, padding, stride) -> BlockPlan:
    nd = _rank(kernel_size, ndim=len(x_shape))
    if len(x_shape) not in (nd + 1, nd + 2):
        raise ValueError(
            f"x must have shape (N, C, *spatial) or (C, *spatial) with {nd} spatial dims"
            f" (the length of kernel_size; an int kernel_size means 2-d, or 3-d for a 5-d x);"
            f" got shape {tuple(x_shape)}"
        )
    batched = len(x_shape) == nd + 2
    batch, channels, *spatial = x_shape if batched else (1, *x_shape)
    return _plan(nd, batched, batch, channels, spatial, kernel_size, dilation, padding, stride,
                 "x")  # fmt: skip


def plan_fold(cols_shape, output_size, kernel_size, dilation, padding, stride) -> BlockPlan:
    nd = _rank(kernel_size, output_size)
    if isinstance(output_size, np.ndarray):
        output_size = tuple(output_size.tolist())
    if isinstance(output_size, tuple | list):
        spatial = check_shape_arg(output_size, "output_size", (nd,))
    else:
        spatial = ntuple(output_size, nd, "output_size", minimum=1)
    if len(cols_shape) not in (2, 3):
        raise ValueError(
            f"cols must have shape (N, C * prod(kernel_size), L) or (C * prod(kernel_size), L);"
            f" got shape {tuple(cols_shape)}"
        )
    batched = len(cols_shape) == 3
    batch, rows, blocks = cols_shape if batched else (1, *cols_shape)
    kernel = ntuple(kernel_size, nd, "kernel_size", minimum=1)
    if rows == 0 or rows % math.prod(kernel):
        raise ValueError(
            f"cols.shape[{int(batched)}] = {rows} must be a positive multiple of"
            f" prod(kernel_size) = {math.prod(kernel)}"
        )
    plan = _plan(nd, batched, batch, rows // math.prod(kernel), spatial, kernel, dilation,
                 padding, stride, "output_size")  # fmt: skip
    if blocks != math.prod(plan.out):
        raise ValueError(
            f"cols.shape[-1] = {blocks} must be the number of blocks,"
            f" {' × '.join(map(str, plan.out[KERNEL_RANK - nd :]))} = {math.prod(plan.out)},"
            f" for output_size {tuple(spatial)} and these kernel_size, dilation, padding, stride"
        )
    return plan


def unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    """Extract sliding blocks as columns (im2col), for 1, 2 or 3 spatial dims.

    Parameters
    ----------
    x : array_like of float, shape (N, C, *spatial) or (C, *spatial)
    kernel_size : int or tuple of ints
        The block size. Its length sets the number of spatial dims (1 to 3,
        beyond PyTorch's 2); an int means 2-d (as PyTorch), or 3-d for a 5-d ``x``.
    dilation : int or tuple of ints, default 1
    padding : int or tuple, default 0
        Zero padding on both sides of each dim; a tuple entry may be a
        ``(before, after)`` pair (beyond PyTorch).
    stride : int or tuple of ints, default 1

    Returns
    -------
    ndarray, shape (N, C * prod(kernel_size), L) or (C * prod(kernel_size), L)
        Row ``c * prod(kernel_size) + j`` holds channel ``c`` under kernel
        position ``j`` (C order); column ``l`` is block ``l`` (C order over the
        ``out = floor((n + pads - dilation * (k - 1) - 1) / stride) + 1`` blocks per dim).

    Notes
    -----
    :func:`fold` is the adjoint of ``unfold``, hence its gradient:
    ``grad_x = fold(grad_cols, x.shape[-nd:], kernel_size, dilation, padding, stride)``.

    Examples
    --------
    >>> import numpy as np, numconv.functional as F
    >>> F.unfold(np.arange(16.0).reshape(1, 1, 4, 4), 2, stride=2)[0, 0]
    array([ 0.,  2.,  8., 10.])
    """
    x = as_float_array(x, "x")
    plan = plan_unfold(x.shape, kernel_size, dilation, padding, stride)
    compute, result = result_dtypes(x)
    planes = plan.batch * plan.channels
    cols = _aligned.empty((planes, math.prod(plan.kernel), math.prod(plan.out)), dtype=compute)
    if planes:
        unfold_planes(kernel_array(x, (planes, *plan.spatial), compute), cols, *plan.kernel_args)
    return cols.reshape(plan.columns_shape).astype(result, copy=False)


def fold(cols, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Add columns of sliding blocks back into an image (col2im), for 1, 2 or 3 dims.

    Parameters
    ----------
    cols : array_like of float, shape (N, C * prod(kernel_size), L) or (C * prod(kernel_size), L)
        Columns in :func:`unfold`'s layout.
    output_size : int or tuple of ints
        The image's spatial size. A tuple's length sets the number of spatial
        dims (1 to 3); else that of ``kernel_size``; two ints mean 2-d.
    kernel_size, dilation, padding, stride
        As in :func:`unfold`.

    Returns
    -------
    ndarray, shape (N, C, *output_size) or (C, *output_size)
        Every column entry added at the image position it came from; entries
        that came from the padding are dropped; overlapping blocks add up.

    Notes
    -----
    ``fold`` is the adjoint of :func:`unfold`:
    ``<unfold(x), c> == <x, fold(c)>``, so each is the other's gradient.

    Examples
    --------
    >>> import numpy as np, numconv.functional as F
    >>> F.fold(np.ones((1, 4, 9)), (4, 4), 2)[0, 0]  # how many blocks cover each pixel
    array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]])
    """
    cols = as_float_array(cols, "cols")
    plan = plan_fold(cols.shape, output_size, kernel_size, dilation, padding, stride)
    compute, result = result_dtypes(cols)
    planes = plan.batch * plan.channels
    image = _aligned.empty((planes, *plan.spatial), dtype=compute)  # zeroed by the kernel
    if planes:
        columns = kernel_array(cols, (planes, math.prod(plan.kernel), math.prod(plan.out)), compute)
        fold_planes(columns, image, *plan.kernel_args)
    return image.reshape(plan.image_shape).astype(result, copy=False)
