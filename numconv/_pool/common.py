"""Helpers every pooling module shares: plane views, gradient checks, docstring pieces."""

from __future__ import annotations

import numpy as np

from .._params import check_grad_output, kernel_array

__all__ = [
    "SHAPES",
    "as_planes",
    "as_rows",
    "check_grad_output",
    "check_index_range",
    "check_indices",
    "finish",
    "public",
]

# Docstring shape notation per rank: (input dims, output dims).
SHAPES = {1: ("L", "L_out"), 2: ("H, W", "H_out, W_out"), 3: ("D, H, W", "D_out, H_out, W_out")}


def as_planes(a: np.ndarray, planes: int, spatial, dtype) -> np.ndarray:
    """``a`` as a writable C-contiguous ``(planes, D, H, W)`` array of ``dtype``."""
    return kernel_array(a, (planes, *spatial), dtype)


def as_rows(a: np.ndarray, planes: int, dtype) -> np.ndarray:
    """``a`` as a writable C-contiguous ``(planes, elements)`` array of ``dtype``."""
    return as_planes(a, planes, (a.size // max(planes, 1),), dtype)


def check_indices(indices, shape, planes: int, name: str = "indices"):
    """Check pooling indices' dtype and shape; return them as C-contiguous int64 ``(planes, -1)``.

    Their range (flat positions within one plane, PyTorch's format) is checked
    by the kernel that uses them, which reports what it skipped to
    :func:`check_index_range`.
    """
    indices = np.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array; got dtype {indices.dtype}")
    if indices.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}; got {indices.shape}")
    rows = indices.reshape(planes, indices.size // max(planes, 1))
    return np.ascontiguousarray(rows, dtype=np.int64)


def check_index_range(skipped: int, indices, plane_size: int, name: str = "indices") -> None:
    """Raise if an index kernel skipped indices outside ``[0, plane_size)``."""
    if skipped:
        low, high = np.min(indices), np.max(indices)
        raise ValueError(
            f"{name} must lie in [0, {plane_size}) (flat positions in one {plane_size}-element"
            f" plane); got values in [{low}, {high}]"
        )


def finish(planes_array: np.ndarray, shape, dtype) -> np.ndarray:
    """Reshape a kernel result to the caller's shape and cast to the result dtype."""
    result = planes_array.reshape(shape)
    # astype(copy=False) costs 0.3 µs even when it returns its input
    return result if result.dtype == dtype else result.astype(dtype)


def public(function, name: str, doc: str):
    """Name and document a generated public function as part of numconv.functional."""
    function.__name__ = function.__qualname__ = name
    function.__doc__ = doc
    function.__module__ = "numconv.functional"
    return function
