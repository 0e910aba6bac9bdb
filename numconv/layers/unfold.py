"""``Unfold`` and ``Fold`` layers: im2col and col2im, each the other's gradient."""

from __future__ import annotations

from .. import functional as F
from .._params import as_float_array
from .base import Layer

__all__ = ["Fold", "Unfold"]


class _Blocks(Layer):
    """Shared arguments; their full validation happens at call time, when the rank is known."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def _block_args(self):
        return self.kernel_size, self.dilation, self.padding, self.stride

    def _block_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, dilation={self.dilation},"
            f" padding={self.padding}, stride={self.stride}"
        )


class Unfold(_Blocks):
    """Extract sliding blocks as columns (PyTorch's ``nn.Unfold``; also 1-d and 3-d).

    Parameters
    ----------
    kernel_size, dilation, padding, stride
        As in :func:`numconv.functional.unfold`; a tuple ``kernel_size`` sets the
        number of spatial dims.

    Notes
    -----
    ``backward`` folds the column gradient back into the input's shape.

    Examples
    --------
    >>> import numpy as np, numconv
    >>> unfold = numconv.Unfold(2, stride=2)
    >>> cols = unfold(np.ones((1, 3, 4, 6)))
    >>> cols.shape, unfold.backward(np.ones_like(cols)).shape
    ((1, 12, 6), (1, 3, 4, 6))
    """

    def forward(self, x):
        x = as_float_array(x, "x")
        cols = F.unfold(x, *self._block_args())
        self._cache = (x.shape, cols.ndim)
        return cols

    def backward(self, grad_output):
        shape, cols_ndim = self._saved()
        grad_output = as_float_array(grad_output, "grad_output")
        nd = len(shape) - cols_ndim + 1  # cols have 2 dims + batch, images nd + 1 + batch
        return F.fold(grad_output, shape[-nd:], *self._block_args())

    def extra_repr(self) -> str:
        return self._block_repr()


class Fold(_Blocks):
    """Add columns of sliding blocks back into an image (PyTorch's ``nn.Fold``; also 1-d, 3-d).

    Parameters
    ----------
    output_size : int or tuple of ints
        The image's spatial size.
    kernel_size, dilation, padding, stride
        As in :func:`numconv.functional.fold`.

    Notes
    -----
    ``backward`` unfolds the image gradient into columns.

    Examples
    --------
    >>> import numpy as np, numconv
    >>> fold = numconv.Fold((4, 6), 2, stride=2)
    >>> image = fold(np.ones((1, 12, 6)))
    >>> image.shape, fold.backward(np.ones_like(image)).shape
    ((1, 3, 4, 6), (1, 12, 6))
    """

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__(kernel_size, dilation, padding, stride)
        self.output_size = output_size

    def forward(self, cols):
        cols = as_float_array(cols, "cols")
        image = F.fold(cols, self.output_size, *self._block_args())
        self._cache = cols.shape
        return image

    def backward(self, grad_output):
        self._saved()  # only to check that forward ran
        grad_output = as_float_array(grad_output, "grad_output")
        return F.unfold(grad_output, *self._unfold_args())

    def _unfold_args(self):
        # unfold infers the rank from kernel_size; fold may have it from output_size.
        kernel = self.kernel_size
        if not isinstance(kernel, tuple | list) and isinstance(self.output_size, tuple | list):
            kernel = (kernel,) * len(self.output_size)
        return kernel, self.dilation, self.padding, self.stride

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, {self._block_repr()}"
