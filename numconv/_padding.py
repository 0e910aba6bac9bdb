"""Padding modes and their adjoints, on the channels-last layout the kernels use
(and zero padding of channel-first arrays, plane by plane).

Every mode is described by one map per spatial axis: padded position ``j`` reads
input position ``source[j]`` (or nothing, ``-1``, for zero padding). The forward
pad gathers through the maps and the gradient scatters back through the same
maps, so the two are exact adjoints by construction: gradient mass that lands
in the padding folds back onto the input positions it was read from.
"""

from __future__ import annotations

import math

import numpy as np

from . import _aligned
from ._params import kernel_array
from .kernels.padding import pad_narrow_planes, pad_planes
from .kernels.simd import VECTOR_BYTES

# Layout of the arrays here: (N, D, H, W, C); the spatial axes are 1, 2, 3.
_SPATIAL_AXES = (1, 2, 3)


def source_indices(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """Input index read by each padded position along one axis (``-1``: a zero)."""
    i = np.arange(-before, n + after)
    if mode == "zeros":
        return np.where((i >= 0) & (i < n), i, -1)
    if mode == "reflect":  # edge not repeated; validated: pads < n
        i = np.abs(i)
        return np.where(i >= n, 2 * (n - 1) - i, i)
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    if mode == "circular":  # validated: pads <= n
        return np.mod(i, n)
    raise AssertionError(mode)  # unreachable: the mode is validated upstream


def extended_map(source: np.ndarray, size: int) -> np.ndarray:
    """A padding map cut, or extended with zeros (``-1``), to ``size`` entries.

    For kernels that read a fixed number of padded positions per axis, some
    past the padded input's end (phase grids, whole tasks of rows).
    """
    out = np.full(size, -1, dtype=np.int64)
    out[: min(size, len(source))] = source[:size]
    return out


def _pad_spatial(a: np.ndarray, axes, pads, mode: str, dtype) -> np.ndarray:
    """``a`` padded along its three spatial ``axes`` in ``mode``, as a fresh C-contiguous copy."""
    if mode == "zeros":
        shape, interior = list(a.shape), [slice(None)] * a.ndim
        for axis, (b, after) in zip(axes, pads, strict=True):
            interior[axis] = slice(b, b + a.shape[axis])
            shape[axis] += b + after
        out = _aligned.zeros(shape, dtype=dtype)
        out[tuple(interior)] = a
        return out
    for axis, (b, after) in zip(axes, pads, strict=True):
        if b or after:
            a = np.take(a, source_indices(a.shape[axis], b, after, mode), axis=axis)
    return np.ascontiguousarray(a, dtype=dtype)


def pad_channels_last(x5: np.ndarray, pads, mode: str, dtype) -> np.ndarray:
    """``(N, C, D, H, W)`` -> padded, C-contiguous ``(N, Dp, Hp, Wp, C)`` of ``dtype``.

    The layout change and the padding happen in one copy.
    """
    return _pad_spatial(x5.transpose(0, 2, 3, 4, 1), _SPATIAL_AXES, pads, mode, dtype)


def pad_channels_first(x5: np.ndarray, pads, mode: str, dtype) -> np.ndarray:
    """``(N, C, D, H, W)`` -> padded, C-contiguous ``(N, C, Dp, Hp, Wp)`` of ``dtype``."""
    if mode != "zeros":
        return _pad_spatial(x5, (2, 3, 4), pads, mode, dtype)
    # One pass, each value written once: np.zeros and a strided copy wrote
    # the padded array twice (docs/performance.md §27).
    shape = (*x5.shape[:2], *(n + b + a for n, (b, a) in zip(x5.shape[2:], pads, strict=True)))
    out = _aligned.empty(shape, dtype=dtype)
    place_planes(x5, out, (0, pads[0][0], pads[1][0], pads[2][0]), dtype)
    return out


def place_planes(a5: np.ndarray, dst: np.ndarray, offsets, dtype) -> None:
    """``dst`` = ``a5``'s planes shifted by ``offsets``, zeros wherever ``a5`` has no value.

    ``offsets`` are the shifts along ``dst``'s axes 1 to 4, as
    :func:`~numconv.kernels.padding.pad_planes` takes them (a negative one
    crops); ``dst`` is C-contiguous and of ``dtype``. Runs on the calling
    thread: the copy is bound by the L3 and memory, and two threads gained
    nothing (0.23 against 0.23 ms on 8×64×56², docs/performance.md §26).
    """
    if not (a5.dtype == dtype and a5.flags.writeable):
        a5 = kernel_array(a5, a5.shape, dtype)
    height, width = dst.shape[-2:]
    if (
        width <= VECTOR_BYTES // dst.itemsize
        and offsets[0] == offsets[1] == 0
        and a5.shape[:3] == dst.shape[:3]
        and a5.flags.c_contiguous
    ):  # rows of a few values: one masked copy each, 6x faster
        planes = math.prod(a5.shape[:3])
        pad_narrow_planes(
            a5.reshape(planes, *a5.shape[3:]), dst.reshape(planes, height, width), *offsets[2:]
        )
        return
    # A strided view (a transposed or sliced array) is read in place, a
    # second kernel signature: copying it first cost more than the padding
    # (1.47 against 1.13 ms on video3d's 2×32×16×56² depth slices).
    pad_planes(a5, dst, *offsets)


def pad_adjoint_channels_last(gxp: np.ndarray, spatial, pads, mode: str) -> np.ndarray:
    """Adjoint of :func:`pad_channels_last`: ``(N, Dp, Hp, Wp, C)`` -> ``(N, C, D, H, W)``."""
    g = gxp
    for axis, s, (b, a) in zip(_SPATIAL_AXES, spatial, pads, strict=True):
        if not (b or a):
            continue
        interior = [slice(None)] * g.ndim
        interior[axis] = slice(b, b + s)
        if mode == "zeros":
            g = g[tuple(interior)]
            continue
        out = np.array(g[tuple(interior)])  # own copy, so adding into it is safe
        src = source_indices(s, b, a, mode)
        pad_positions = np.r_[0:b, b + s : b + s + a]
        # add.at accumulates repeated targets (e.g. circular pads wider than half n)
        np.add.at(
            np.moveaxis(out, axis, 0),
            src[pad_positions],
            np.moveaxis(g, axis, 0)[pad_positions],
        )
        g = out
    return g.transpose(0, 4, 1, 2, 3)
