"""The timed operations: one zero-argument callable per (case, op), for numconv and PyTorch.

Both sides get the same arrays. PyTorch runs its ATen kernels directly where it
has them, so no autograd bookkeeping lands in its time; where it has none (LP
pooling, max unpooling's backward), the backward goes through autograd on a
graph built once, which is what a PyTorch user runs. PyTorch has no min
pooling: its stand-in is ``-max_pool(-x)``, the way its users write it.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .suite import PoolCase, TransposeCase, UnfoldCase

# fwd: forward; dx: input gradient (a pooling's backward, fold for unfold);
# dw: weight and bias gradients (convolution and its transpose only).
OPS = ("fwd", "dx", "dw")


def applies(case, op: str) -> bool:
    """Whether ``op`` exists for ``case`` (pooling and unfold have no weight gradient)."""
    return op in OPS and not (isinstance(case, (PoolCase, UnfoldCase)) and op == "dw")


def numconv_op(case, op: str, *arrays):
    """A zero-argument callable running ``op`` on ``case.arrays()``."""
    if isinstance(case, PoolCase):
        return _numconv_pool(case, op, *arrays)
    if isinstance(case, TransposeCase):
        return _numconv_transpose(case, op, *arrays)
    if isinstance(case, UnfoldCase):
        return _numconv_unfold(case, op, *arrays)
    return _numconv_conv(case, op, *arrays)


def torch_op(torch, case, op: str, *arrays):
    """The same op in PyTorch, or None where PyTorch has no counterpart (3-d unfold)."""
    if isinstance(case, PoolCase):
        return _torch_pool(torch, case, op, *arrays)
    if isinstance(case, TransposeCase):
        return _torch_transpose(torch, case, op, *arrays)
    if isinstance(case, UnfoldCase):
        return _torch_unfold(torch, case, op, *arrays)
    return _torch_conv(torch, case, op, *arrays)


# --- convolution -------------------------------------------------------------


def _numconv_conv(case, op, x, w, b, gy):
    nd, kw = case.nd, case.kwargs
    if op == "fwd":
        f = getattr(F, f"conv{nd}d")
        return lambda: f(x, w, b, **kw)
    if op == "dx":
        f = getattr(F, f"conv{nd}d_input_grad")
        return lambda: f(x.shape, w, gy, **kw)
    f = getattr(F, f"conv{nd}d_param_grads")  # weight and bias, as a layer's backward takes them
    return lambda: f(x, w.shape, gy, **kw)


def _conv_lists(case):
    nd = case.nd
    return [case.stride] * nd, [case.padding] * nd, [case.dilation] * nd


def _gradient_mask(op):
    """convolution_backward's output mask: (input, weight, bias)."""
    return [True, False, False] if op == "dx" else [False, True, True]


def _torch_conv(torch, case, op, x, w, b, gy):
    tx, tw, tb, tgy = (torch.from_numpy(a) for a in (x, w, b, gy))
    stride, padding, dilation = _conv_lists(case)
    if op == "fwd":
        conv = getattr(torch.nn.functional, f"conv{case.nd}d")
        return lambda: conv(tx, tw, tb, stride, padding, dilation, case.groups)
    backward, mask = torch.ops.aten.convolution_backward, _gradient_mask(op)
    return lambda: backward(
        tgy, tx, tw, [case.out_channels], stride, padding, dilation,
        False, [0] * case.nd, case.groups, mask,
    )  # fmt: skip


# --- transposed convolution: maps gy-shaped inputs to x-shaped outputs -------


def _numconv_transpose(case, op, x, w, b, gy):
    nd, kw, size = case.nd, case.kwargs, case.spatial
    if op == "fwd":
        f = getattr(F, f"conv_transpose{nd}d")
        bias = _transpose_bias(case, x)
        return lambda: f(gy, w, bias, **kw, output_size=size)
    if op == "dx":
        f = getattr(F, f"conv_transpose{nd}d_input_grad")
        return lambda: f(gy.shape, w, x, **kw, output_size=size)
    f = getattr(F, f"conv_transpose{nd}d_weight_grad")
    return lambda: (f(gy, w.shape, x, **kw, output_size=size), F.conv_bias_grad(x))


def _transpose_bias(case, x):
    """A bias for the transposed layer, whose output channels are the case's inputs."""
    return np.linspace(-1, 1, case.in_channels).astype(x.dtype)


def _torch_transpose(torch, case, op, x, w, b, gy):
    tx, tw, tgy = (torch.from_numpy(a) for a in (x, w, gy))
    stride, padding, dilation = _conv_lists(case)
    output_padding = list(case.output_padding)
    if op == "fwd":
        conv = getattr(torch.nn.functional, f"conv_transpose{case.nd}d")
        tb = torch.from_numpy(_transpose_bias(case, x))
        return lambda: conv(tgy, tw, tb, stride, padding, output_padding, case.groups, dilation)
    backward, mask = torch.ops.aten.convolution_backward, _gradient_mask(op)
    return lambda: backward(
        tx, tgy, tw, [case.in_channels], stride, padding, dilation,
        True, output_padding, case.groups, mask,
    )  # fmt: skip


# --- unfold / fold -----------------------------------------------------------


def _unfold_args(case):
    return (case.kernel,) * case.nd, case.dilation, case.padding, case.stride


def _numconv_unfold(case, op, x, w, b, gy):
    args = _unfold_args(case)
    if op == "fwd":
        return lambda: F.unfold(x, *args)
    cols = F.unfold(x, *args)
    return lambda: F.fold(cols, case.spatial, *args)


def _torch_unfold(torch, case, op, x, w, b, gy):
    if case.nd != 2:  # PyTorch's unfold and fold are 2-d only
        return None
    tx, args = torch.from_numpy(x), _unfold_args(case)
    if op == "fwd":
        return lambda: torch.nn.functional.unfold(tx, *args)
    cols = torch.nn.functional.unfold(tx, *args)
    return lambda: torch.nn.functional.fold(cols, case.spatial, *args)


# --- pooling -----------------------------------------------------------------


def _numconv_pool(case, op, x, gy):
    nd, kw = case.nd, case.kwargs
    if case.kind == "unpool":
        y, indices = getattr(F, f"max_pool{nd}d")(x, **kw, return_indices=True)
        unpool = getattr(F, f"max_unpool{nd}d")
        backward = getattr(F, f"max_unpool{nd}d_backward")
        if op == "fwd":
            return lambda: unpool(y, indices, **kw, output_size=case.spatial)
        return lambda: backward(gy, y, indices, **kw, output_size=case.spatial)
    name = f"{case.kind}_pool{nd}d"
    forward, backward = getattr(F, name), getattr(F, f"{name}_backward")
    if op == "fwd":
        return lambda: forward(x, **kw)
    if case.kind in ("max", "min", "adaptive_max"):  # from the forward's indices, as layers do
        _, indices = forward(x, **kw, return_indices=True)
        return lambda: backward(gy, x, **kw, indices=indices)
    return lambda: backward(gy, x, **kw)


def _torch_pool(torch, case, op, x, gy):
    tx, tgy = torch.from_numpy(x), torch.from_numpy(gy)
    if case.kind in ("max", "min"):
        return _torch_extreme_pool(torch, case, op, tx, tgy)
    if case.adaptive:
        return _torch_adaptive_pool(torch, case, op, tx, tgy)
    nd, kw, functional = case.nd, case.kwargs, torch.nn.functional
    if case.kind == "avg":
        k, s, p = ([kw[key]] * nd for key in ("kernel_size", "stride", "padding"))
        if op == "fwd":
            forward = getattr(torch.ops.aten, f"avg_pool{nd}d")
            return lambda: forward(tx, k, s, p, False, True, None)
        backward = getattr(torch.ops.aten, f"avg_pool{nd}d_backward")
        return lambda: backward(tgy, tx, k, s, p, False, True, None)
    if case.kind == "lp":
        pool = getattr(functional, f"lp_pool{nd}d")
        return _forward_or_autograd(torch, op, lambda t: pool(t, **kw), tx, tgy)
    # unpool: of PyTorch's own max pooling of x (the same indices as numconv's)
    y, indices = getattr(functional, f"max_pool{nd}d")(tx, **kw, return_indices=True)
    unpool = getattr(functional, f"max_unpool{nd}d")
    return _forward_or_autograd(
        torch, op, lambda t: unpool(t, indices, **kw, output_size=case.spatial), y, tgy
    )


def _forward_or_autograd(torch, op, f, tx, tgy):
    """``f(tx)``, or its backward through autograd on a graph built once."""
    if op == "fwd":
        return lambda: f(tx)
    leaf = tx.clone().requires_grad_()
    y = f(leaf)
    return lambda: torch.autograd.grad(y, leaf, tgy, retain_graph=True)


def _torch_extreme_pool(torch, case, op, tx, tgy):
    nd, kw, aten = case.nd, case.kwargs, torch.ops.aten
    k, s, p = ([kw[key]] * nd for key in ("kernel_size", "stride", "padding"))
    forward = getattr(aten, f"max_pool{nd}d_with_indices")
    backward = getattr(aten, f"max_pool{nd}d_with_indices_backward")
    args = (k, s, p, [1] * nd, False)
    if case.kind == "max":
        if op == "fwd":
            return lambda: forward(tx, *args)
        _, indices = forward(tx, *args)
        return lambda: backward(tgy, tx, *args, indices)
    # min pooling as -max_pool(-x): the negations are part of the cost
    if op == "fwd":
        return lambda: torch.neg(forward(torch.neg(tx), *args)[0])
    negated = torch.neg(tx)
    _, indices = forward(negated, *args)
    return lambda: torch.neg(backward(torch.neg(tgy), negated, *args, indices))


def _torch_adaptive_pool(torch, case, op, tx, tgy):
    nd, aten, size = case.nd, torch.ops.aten, [case.output_size] * case.nd
    if case.kind == "adaptive_avg":
        if op == "fwd":
            forward = getattr(torch.nn.functional, f"adaptive_avg_pool{nd}d")
            return lambda: forward(tx, size)
        backward = getattr(aten, f"_adaptive_avg_pool{nd}d_backward")
        return lambda: backward(tgy, tx)
    forward = getattr(aten, f"adaptive_max_pool{nd}d")
    if op == "fwd":
        return lambda: forward(tx, size)
    _, indices = forward(tx, size)
    backward = getattr(aten, f"adaptive_max_pool{nd}d_backward")
    return lambda: backward(tgy, tx, indices)
