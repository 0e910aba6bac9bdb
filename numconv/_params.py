"""Argument normalisation, validation, output-size maths and the dtype policy.

Everything here is pure Python on shapes and small ints. The public functions
call into this module once, at the boundary; nothing below ``functional``
validates again, because the Numba kernels run without bounds checks and rely
on every fact established here.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from . import _aligned

# Internally every op runs in three spatial dimensions; 1-d and 2-d problems
# get size-1 leading spatial dims, so one kernel family serves all ranks.
KERNEL_RANK = 3

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


# --------------------------------------------------------------------------- dtypes
def as_float_array(value, name: str) -> np.ndarray:
    """Return ``value`` as an ndarray of a supported float dtype (no copy if possible)."""
    arr = np.asarray(value)
    if arr.dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"{name} must have dtype float16, float32 or float64; got {arr.dtype}"
            " (convert with .astype(np.float32) or .astype(np.float64))"
        )
    return arr


def result_dtypes(*arrays: np.ndarray) -> tuple[np.dtype, np.dtype]:
    """Return ``(compute dtype, result dtype)`` for float arrays, NumPy promotion rules.

    float16 has no native kernels: it computes in float32 and is cast back.
    """
    result = arrays[0].dtype if len(arrays) == 1 else np.result_type(*arrays)
    compute = np.dtype(np.float32) if result == np.float16 else result
    return compute, result


def kernel_array(a: np.ndarray, shape, dtype) -> np.ndarray:
    """``a`` reshaped to ``shape`` as a writable C-contiguous array of ``dtype``.

    No copy when ``a`` already is one. Read-only caller arrays are copied: a
    read-only view would compile a second kernel signature, and kernels never
    write their inputs anyway.
    """
    view = a.reshape(shape)
    flags = view.flags  # one flags object: each .flags access builds a new one
    if view.dtype == dtype and flags.c_contiguous and flags.writeable:
        return view
    return _aligned.copy(view, dtype)


def to_caller(a: np.ndarray, shape, dtype) -> np.ndarray:
    """A result back in the caller's rank, C-contiguous, in the result dtype."""
    return np.ascontiguousarray(a.reshape(shape), dtype=dtype)


def check_grad_output(grad_output: np.ndarray, plan) -> None:
    """``grad_output`` must have exactly the forward output's shape (``plan.output_shape``)."""
    if grad_output.shape != plan.output_shape:
        raise ValueError(
            f"grad_output must have the forward output's shape {plan.output_shape};"
            f" got {grad_output.shape}"
        )


def check_dtype(dtype, name: str = "dtype") -> np.dtype:
    """Validate a layer's parameter dtype."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be float16, float32 or float64; got {dtype!r}") from None
    if dt not in _FLOAT_DTYPES:
        raise TypeError(f"{name} must be float16, float32 or float64; got {dt}")
    return dt


# --------------------------------------------------------------------------- ints
def _is_int(value) -> bool:
    if type(value) is int:  # the usual case first: the ABC check below costs ~0.4 µs a call
        return True
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def check_int(value, name: str, minimum: int | None = None) -> int:
    """Return ``value`` as a Python int, or raise naming ``name``."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an int; got {value!r} of type {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return value


def check_bool(value, name: str) -> bool:
    """Return ``value`` as a Python bool, or raise ``TypeError`` naming ``name``."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def ntuple(value, n: int, name: str, minimum: int) -> tuple[int, ...]:
    """Broadcast an int, or check a sequence of ``n`` ints; all must be ``>= minimum``."""
    what = f"an int >= {minimum} or a tuple of {n} such ints"
    if _is_int(value):
        items = (value,) * n
    elif isinstance(value, tuple | list | np.ndarray):
        items = tuple(value)
        if not all(map(_is_int, items)):
            raise TypeError(f"{name} must be {what}; got {value!r}")
        if len(items) != n:
            raise ValueError(f"{name} must be {what}; got {value!r}")
    else:
        raise TypeError(f"{name} must be {what}; got {value!r}")
    if any(v < minimum for v in items):
        raise ValueError(f"{name} must be {what}; got {value!r}")
    return tuple(int(v) for v in items)


def check_padding_mode(mode) -> str:
    if not isinstance(mode, str) or mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}; got {mode!r}")
    return mode


# --------------------------------------------------------------------------- padding
def _same_padding(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow's "same" rule; equals PyTorch's when ``s == 1``."""
    extent = d * (k - 1) + 1
    out = -(-n // s)
    total = max((out - 1) * s + extent - n, 0)
    return total // 2, total - total // 2


def normalize_padding(padding, n: int, name: str = "padding"):
    """Check a padding argument without knowing the input size.

    Returns ``"same"`` or a tuple of ``n`` ``(before, after)`` pairs.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            return "same"
        raise ValueError(f"{name} must be an int, a tuple, 'valid' or 'same'; got {padding!r}")
    what = (
        f"an int >= 0, 'valid', 'same', or a tuple of {n} entries each an int >= 0"
        " or a (before, after) pair of ints >= 0"
    )
    if _is_int(padding):
        entries = (padding,) * n
    elif isinstance(padding, tuple | list):
        entries = tuple(padding)
        if len(entries) != n:
            raise ValueError(f"{name} must be {what}; got {padding!r}")
    else:
        raise TypeError(f"{name} must be {what}; got {padding!r}")
    pairs = []
    for entry in entries:
        if _is_int(entry):
            pair = (entry, entry)
        elif isinstance(entry, tuple | list) and len(entry) == 2 and all(map(_is_int, entry)):
            pair = tuple(entry)
        else:
            raise TypeError(f"{name} must be {what}; got {padding!r}")
        if pair[0] < 0 or pair[1] < 0:
            raise ValueError(f"{name} must be {what}; got {padding!r}")
        pairs.append((int(pair[0]), int(pair[1])))
    return tuple(pairs)


def resolve_padding(padding, spatial, kernel, stride, dilation) -> tuple[tuple[int, int], ...]:
    """Per-side pads for a conv call, resolving ``"same"`` against the input size."""
    pads = normalize_padding(padding, len(spatial))
    if pads == "same":
        pads = tuple(map(_same_padding, spatial, kernel, stride, dilation))
    return pads


# --------------------------------------------------------------------------- shapes
def conv_output_size(n: int, before: int, after: int, k: int, s: int, d: int) -> int:
    """``⌊(n + pb + pa − e) / s⌋ + 1`` with ``e = d·(k − 1) + 1``; may be < 1."""
    return (n + before + after - (d * (k - 1) + 1)) // s + 1


def check_shape_arg(shape, name: str, ndims: tuple[int, ...]) -> tuple[int, ...]:
    """Validate a shape argument (tuple of ints >= 0 with an allowed length)."""
    if not isinstance(shape, tuple | list) or not all(_is_int(v) for v in shape):
        raise TypeError(f"{name} must be a tuple of ints; got {shape!r}")
    if len(shape) not in ndims:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndims))} entries; got {shape!r}")
    if any(v < 0 for v in shape):
        raise ValueError(f"{name} must not have negative entries; got {shape!r}")
    return tuple(int(v) for v in shape)


def lift(values, fill):
    """Prefix per-dim values so that they cover ``KERNEL_RANK`` spatial dims."""
    return (fill,) * (KERNEL_RANK - len(values)) + tuple(values)


def split_input_shape(shape, nd: int) -> tuple[bool, int, int, list[int]]:
    """``(batched, batch, channels, spatial)`` of a caller's ``(N, C, *s)`` or ``(C, *s)``."""
    batched = len(shape) == nd + 2
    channels, *spatial = shape[1:] if batched else shape
    return batched, (shape[0] if batched else 1), channels, spatial


def caller_shape(plan, channels: int, dims3) -> tuple[int, ...]:
    """Undo the lifting: ``(N, channels, *dims)`` (or unbatched) in the caller's rank."""
    shape = (channels, *dims3[KERNEL_RANK - plan.nd :])
    return (plan.batch, *shape) if plan.batched else shape


@dataclass(frozen=True)
class ConvPlan:
    """A validated convolution problem, lifted to three spatial dims.

    ``spatial``, ``kernel``, ``stride``, ``dilation``, ``pads`` and ``out`` always
    have three entries; 1-d and 2-d problems have size-1 leading dims.
    """

    nd: int  # the caller's number of spatial dims
    batched: bool
    batch: int
    in_channels: int
    out_channels: int
    groups: int
    spatial: tuple[int, int, int]
    kernel: tuple[int, int, int]
    stride: tuple[int, int, int]
    dilation: tuple[int, int, int]
    pads: tuple[tuple[int, int], ...]
    out: tuple[int, int, int]
    padding_mode: str

    @property
    def padded(self) -> tuple[int, int, int]:
        return tuple(n + b + a for n, (b, a) in zip(self.spatial, self.pads, strict=True))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The caller's input shape (unbatched if the call was)."""
        return caller_shape(self, self.in_channels, self.spatial)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The caller's output shape (unbatched if the call was)."""
        return caller_shape(self, self.out_channels, self.out)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        k = self.kernel[KERNEL_RANK - self.nd :]
        return (self.out_channels, self.in_channels // self.groups, *k)

    # The arrays as the algorithms take them: a batch dim and three spatial dims.
    @property
    def input5(self) -> tuple[int, ...]:
        return (self.batch, self.in_channels, *self.spatial)

    @property
    def output5(self) -> tuple[int, ...]:
        return (self.batch, self.out_channels, *self.out)

    @property
    def weight5(self) -> tuple[int, ...]:
        return (self.out_channels, self.in_channels // self.groups, *self.kernel)

    @property
    def flops(self) -> int:
        """Multiply-adds times two of the direct algorithm."""
        per_out = (self.in_channels // self.groups) * math.prod(self.kernel)
        return 2 * self.batch * self.out_channels * per_out * math.prod(self.out)


def plan_conv(
    nd: int,
    input_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    stride,
    padding,
    dilation,
    groups,
    padding_mode,
    *,
    input_name: str = "x",
    weight_name: str = "weight",
) -> ConvPlan:
    """Validate a convolution's arguments and compute its sizes."""
    if len(input_shape) not in (nd + 1, nd + 2):
        raise ValueError(
            f"{input_name} must have shape (N, C, {dim_names(nd)}) or (C, {dim_names(nd)}) for a"
            f" {nd}-d convolution; got shape {tuple(input_shape)}"
        )
    if len(weight_shape) != nd + 2:
        raise ValueError(
            f"{weight_name} must have shape (C_out, C_in/groups, {dim_names(nd, 'k')});"
            f" got shape {tuple(weight_shape)}"
        )
    batched, batch, in_channels, spatial = split_input_shape(input_shape, nd)
    out_channels, group_in, *kernel = weight_shape
    groups = check_int(groups, "groups", minimum=1)
    stride = ntuple(stride, nd, "stride", minimum=1)
    dilation = ntuple(dilation, nd, "dilation", minimum=1)
    padding_mode = check_padding_mode(padding_mode)
    if min(kernel) < 1 or out_channels < 1 or group_in < 1:
        raise ValueError(
            f"{weight_name} must have no zero-size dimension; got shape {tuple(weight_shape)}"
        )
    if in_channels < 1:
        raise ValueError(f"{input_name} must have at least one channel; got shape {input_shape}")
    if out_channels % groups:
        raise ValueError(
            f"groups={groups} must divide the output channels"
            f" ({weight_name}.shape[0]={out_channels})"
        )
    if in_channels != group_in * groups:
        raise ValueError(
            f"{input_name} has {in_channels} channels but {weight_name}.shape[1] * groups ="
            f" {group_in} * {groups} = {group_in * groups}"
        )
    pads = resolve_padding(padding, spatial, kernel, stride, dilation)
    _check_pads_for_mode(pads, spatial, padding_mode)
    out = tuple(map(conv_output_size, spatial, *zip(*pads, strict=True), kernel, stride, dilation))
    if min(out) < 1:
        raise ValueError(
            f"kernel larger than padded input: {input_name} spatial size {tuple(spatial)},"
            f" padding {pads}, dilated kernel extent"
            f" {tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))}"
            f" give output size {out}"
        )
    return ConvPlan(
        nd=nd,
        batched=batched,
        batch=batch,
        in_channels=in_channels,
        out_channels=out_channels,
        groups=groups,
        spatial=lift(spatial, 1),
        kernel=lift(kernel, 1),
        stride=lift(stride, 1),
        dilation=lift(dilation, 1),
        pads=lift(pads, (0, 0)),
        out=lift(out, 1),
        padding_mode=padding_mode,
    )


def _check_pads_for_mode(pads, spatial, mode: str) -> None:
    for axis, ((before, after), n) in enumerate(zip(pads, spatial, strict=True)):
        if mode == "reflect" and max(before, after) >= n:
            raise ValueError(
                f"padding_mode='reflect' needs padding < input size in every dim;"
                f" spatial dim {axis} has size {n} and padding {(before, after)}"
            )
        if mode == "circular" and max(before, after) > n:
            raise ValueError(
                f"padding_mode='circular' needs padding <= input size in every dim;"
                f" spatial dim {axis} has size {n} and padding {(before, after)}"
            )


def dim_names(nd: int, prefix: str = "") -> str:
    names = ("D", "H", "W")[KERNEL_RANK - nd :]
    return ", ".join(prefix + n for n in names) if prefix else ", ".join(names)
