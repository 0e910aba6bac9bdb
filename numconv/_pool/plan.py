"""Validation and output-size maths for pooling, adaptive pooling and unpooling.

Every pooling op maps each ``(n, c)`` plane of its input to a plane of its
output independently, so a plan is the plane count plus the two spatial sizes
(lifted to three dims, as for convolution) and, for windowed ops, the window
parameters. Like :mod:`numconv._params`, this runs once at the boundary.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .._params import (
    caller_shape,
    check_bool,
    check_int,
    dim_names,
    lift,
    ntuple,
    split_input_shape,
)

_PLAN_CACHE_SIZE = 256
_SEQUENCES = (tuple, list)
_PLAIN = (int, str, type(None))


def _type_key(args) -> tuple:
    """``args`` with the type of every value and tuple item attached.

    Equal but differently typed arguments (``True`` for ``1``, ``2.0`` for ``2``)
    must not share a cached plan, since the planner rejects some of them. One
    level of nesting is enough: a nested sequence is itself invalid, errors are
    never cached, and its key cannot equal a valid one's (its type differs).
    """
    return tuple([
        (value.__class__, tuple(value), tuple(map(type, value)))
        if isinstance(value, _SEQUENCES)  # subclasses too (namedtuples)
        else (value.__class__, value)
        for value in args
    ])  # fmt: skip


def _is_plain(args) -> bool:
    """Whether every argument is an exact int, bool, str or None, or a tuple of int, str or None.

    Such arguments with their top-level types attached are a cache key: no two
    of them are equal unless they are the same values of the same types.
    """
    for value in args:
        kind = value.__class__
        if kind is tuple:
            for item in value:
                if item.__class__ not in _PLAIN:
                    return False
        elif kind not in _PLAIN and kind is not bool:
            return False
    return True


def _memoized(planner):
    """Cache a planner's result per (type-tagged) arguments.

    Planning costs a few microseconds of Python, as much as the whole kernel of
    a small pooling call (global average pooling of 8×512×7×7 runs in ~9 µs).
    Plans are frozen, so sharing one between calls is safe; arguments that
    cannot be hashed (arrays, say) are planned afresh. Errors are never cached.
    Plain arguments (the usual call) go to ``functools.lru_cache``, whose
    C-implemented ``typed`` key tells ``True`` from ``1`` at the top level
    (0.5 µs a call); others are type-tagged to every tuple item first (1.5 µs).
    """
    plain_planner = functools.lru_cache(maxsize=_PLAN_CACHE_SIZE, typed=True)(planner)
    tagged_cache = {}

    @functools.wraps(planner)
    def plan(*args, **kwargs):
        if _is_plain(args) and _is_plain(kwargs.values()):
            return plain_planner(*args, **kwargs)
        try:
            key = _type_key(args), tuple(sorted(kwargs.items()))
            return tagged_cache[key]
        except TypeError:  # unhashable arguments
            return planner(*args, **kwargs)
        except KeyError:
            pass
        result = planner(*args, **kwargs)
        if len(tagged_cache) >= _PLAN_CACHE_SIZE:
            tagged_cache.clear()  # shapes in one program are few; a bound keeps odd ones finite
        tagged_cache[key] = result
        return result

    return plan


def pool_output_size(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """``⌊(n + 2p − e + (ceil ? s − 1 : 0)) / s⌋ + 1``; with ceil_mode the last window
    must start inside the input or the left padding."""
    extent = d * (k - 1) + 1
    out = (n + 2 * p - extent + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def unpool_output_size(n: int, k: int, s: int, p: int) -> int:
    """The size a max pooling with these parameters maps back to: ``(n − 1)·s − 2p + k``."""
    return (n - 1) * s - 2 * p + k


@dataclass(frozen=True)
class PlaneMap:
    """``N·C`` independent planes of size ``spatial`` mapped to planes of size ``out``."""

    nd: int
    batched: bool
    batch: int
    channels: int
    spatial: tuple[int, int, int]
    out: tuple[int, int, int]

    # Cached: plans are shared between calls (see _memoized), and these are read
    # on every call; computing them each time cost 0.35 µs apiece.
    @functools.cached_property
    def planes(self) -> int:
        return self.batch * self.channels

    @functools.cached_property
    def input_shape(self) -> tuple[int, ...]:
        return caller_shape(self, self.channels, self.spatial)

    @functools.cached_property
    def output_shape(self) -> tuple[int, ...]:
        return caller_shape(self, self.channels, self.out)


@dataclass(frozen=True)
class PoolPlan(PlaneMap):
    """A windowed pooling (or unpooling) problem; window parameters lifted to 3 dims."""

    kernel: tuple[int, int, int]
    stride: tuple[int, int, int]
    padding: tuple[int, int, int]
    dilation: tuple[int, int, int]


def _split(nd: int, shape, name: str):
    """``(batched, batch, channels, spatial)`` of a pooling input, checked."""
    shape = tuple(shape)
    if len(shape) not in (nd + 1, nd + 2):
        raise ValueError(
            f"{name} must have shape (N, C, {dim_names(nd)}) or (C, {dim_names(nd)}) for"
            f" {nd}-d pooling; got shape {shape}"
        )
    batched, batch, channels, spatial = split_input_shape(shape, nd)
    if channels < 1 or min(spatial) < 1:
        raise ValueError(f"{name} must have no zero-size channel or spatial dim; got {shape}")
    return batched, batch, channels, spatial


def _windowed_plan(nd, split, out, kernel, stride, padding, dilation) -> PoolPlan:
    """A :class:`PoolPlan` from :func:`_split`'s result and validated per-dim values."""
    batched, batch, channels, spatial = split
    return PoolPlan(
        nd=nd,
        batched=batched,
        batch=batch,
        channels=channels,
        spatial=lift(spatial, 1),
        out=lift(out, 1),
        kernel=lift(kernel, 1),
        stride=lift(stride, 1),
        padding=lift(padding, 0),
        dilation=lift(dilation, 1),
    )


@_memoized
def plan_pool(
    nd: int, input_shape, kernel_size, stride, padding, dilation, ceil_mode, *, name: str = "x"
) -> PoolPlan:
    """Validate a windowed pooling call's arguments and compute its output size."""
    split = _split(nd, input_shape, name)
    spatial = split[3]
    kernel = ntuple(kernel_size, nd, "kernel_size", minimum=1)
    stride = kernel if stride is None else ntuple(stride, nd, "stride", minimum=1)
    padding = ntuple(padding, nd, "padding", minimum=0)
    dilation = ntuple(dilation, nd, "dilation", minimum=1)
    ceil_mode = check_bool(ceil_mode, "ceil_mode")
    if any(p > k // 2 for p, k in zip(padding, kernel, strict=True)):
        raise ValueError(
            f"padding must be at most half the kernel size (p <= k // 2);"
            f" got padding {padding} for kernel_size {kernel}"
        )
    out = tuple(map(pool_output_size, spatial, kernel, stride, padding, dilation,
                    (ceil_mode,) * nd))  # fmt: skip
    if min(out) < 1:
        raise ValueError(
            f"pooling window larger than padded input: {name} spatial size {tuple(spatial)},"
            f" kernel_size {kernel}, padding {padding}, dilation {dilation} give output"
            f" size {out}"
        )
    return _windowed_plan(nd, split, out, kernel, stride, padding, dilation)


@_memoized
def plan_adaptive(nd: int, input_shape, output_size, *, name: str = "x") -> PlaneMap:
    """Validate an adaptive pooling call; ``None`` in ``output_size`` keeps that dim."""
    batched, batch, channels, spatial = _split(nd, input_shape, name)
    what = f"an int >= 1 or a tuple of {nd} ints >= 1 or None"
    items = tuple(output_size) if isinstance(output_size, tuple | list) else (output_size,) * nd
    if len(items) != nd:
        raise ValueError(f"output_size must be {what}; got {output_size!r}")
    out = []
    for item, n in zip(items, spatial, strict=True):
        if item is None:
            out.append(n)
            continue
        try:
            out.append(check_int(item, "output_size", minimum=1))
        except (TypeError, ValueError):
            error = TypeError if isinstance(item, float | str) else ValueError
            raise error(f"output_size must be {what}; got {output_size!r}") from None
    return PlaneMap(
        nd=nd,
        batched=batched,
        batch=batch,
        channels=channels,
        spatial=lift(spatial, 1),
        out=lift(out, 1),
    )


@_memoized
def plan_unpool(nd: int, input_shape, kernel_size, stride, padding, output_size) -> PoolPlan:
    """Validate a max-unpooling call; ``spatial`` is the pooled size, ``out`` the restored one.

    ``output_size`` may be the spatial size or a whole shape (its last ``nd``
    entries are used, as PyTorch does) and must lie strictly within one stride
    of the default size, which is PyTorch's rule: it admits the input size of
    every pooling whose output has this size, ceil_mode included.
    """
    split = _split(nd, input_shape, "x")
    spatial = split[3]
    kernel = ntuple(kernel_size, nd, "kernel_size", minimum=1)
    stride = kernel if stride is None else ntuple(stride, nd, "stride", minimum=1)
    padding = ntuple(padding, nd, "padding", minimum=0)
    default = tuple(map(unpool_output_size, spatial, kernel, stride, padding))
    if min(default) < 1:
        raise ValueError(
            f"max_unpool output size {default} is not positive for x spatial size"
            f" {tuple(spatial)}, kernel_size {kernel}, stride {stride}, padding {padding}"
        )
    if output_size is None:
        out = default
    else:
        if not isinstance(output_size, tuple | list) or len(output_size) not in (
            nd, len(input_shape)
        ):  # fmt: skip
            raise ValueError(
                f"output_size must be a tuple of {nd} ints (or the whole output shape);"
                f" got {output_size!r}"
            )
        out = ntuple(tuple(output_size)[-nd:], nd, "output_size", minimum=1)
        for size, base, s in zip(out, default, stride, strict=True):
            if not base - s < size < base + s:
                raise ValueError(
                    f"output_size {out} is not valid for x spatial size {tuple(spatial)}:"
                    f" each entry must lie strictly between default - stride and default"
                    f" + stride, with default {default} and stride {stride}"
                )
    return _windowed_plan(nd, split, out, kernel, stride, padding, (1,) * nd)
