"""Shared test helpers: tolerances and the PyTorch oracle."""

from __future__ import annotations

import numpy as np
from naive import expand_padding

# SEMANTICS.md "Accuracy": relative (norm) error against a float64 reference.
RTOL = {np.float64: 1e-12, np.float32: 1e-5, np.float16: 2e-3}


def assert_close(actual, expected, dtype=np.float64):
    """Relative error in the Frobenius norm within the dtype's tolerance."""
    actual = np.asarray(actual)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(np.linalg.norm(expected), 1e-300)
    err = np.linalg.norm(actual.astype(np.float64) - expected) / scale
    assert err <= RTOL[np.dtype(dtype).type], f"relative error {err:.3g} for {np.dtype(dtype)}"


TORCH_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate",
                  "circular": "circular"}  # fmt: skip


def torch_conv_grads(torch, x, w, b, gy_seed, stride, padding, dilation, groups, mode):
    """PyTorch float64 autograd: (y, gx, gw, gb, gy) for batched ``x``.

    Padding is applied with ``torch.nn.functional.pad`` from per-side pairs
    computed by the naive module, so per-side and strided-"same" padding (which
    torch's conv does not take) are checked too.
    """
    nd = x.ndim - 2
    conv = getattr(torch.nn.functional, f"conv{nd}d")
    stride_t = (stride,) * nd if isinstance(stride, int) else tuple(stride)
    dil_t = (dilation,) * nd if isinstance(dilation, int) else tuple(dilation)
    pads = expand_padding(padding, x.shape[2:], w.shape[2:], stride_t, dil_t)
    tx = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    tw = torch.tensor(np.asarray(w, dtype=np.float64), requires_grad=True)
    tb = None if b is None else torch.tensor(np.asarray(b, dtype=np.float64), requires_grad=True)
    flat = tuple(v for pair in reversed(pads) for v in pair)  # torch: last dim first
    xp = torch.nn.functional.pad(tx, flat, mode=TORCH_PAD_MODE[mode]) if any(flat) else tx
    ty = conv(xp, tw, tb, stride_t, 0, dil_t, groups)
    gy = np.random.default_rng(gy_seed).standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(gy))
    gb = None if b is None else tb.grad.numpy()
    return ty.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), gb, gy


# torch.manual_seed(42); torch.randint(0, 10, (6, 6)): the seeds' pooling example.
SEED_6X6 = np.array(
    [
        [2, 7, 6, 4, 6, 5],
        [0, 4, 0, 3, 8, 4],
        [0, 4, 1, 2, 5, 5],
        [7, 6, 9, 6, 3, 1],
        [9, 3, 1, 9, 7, 9],
        [2, 0, 5, 9, 3, 4],
    ],
    dtype=np.float64,
)


def torch_with_grad(torch, function, x, *args, gy_seed=1, **kwargs):
    """Run ``function(tensor(x), *args, **kwargs)`` in float64 autograd.

    Returns the output (the first one if the function returns a tuple), every
    output as NumPy, the random ``grad_output`` used and the input gradient.
    """
    tx = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    outputs = function(tx, *args, **kwargs)
    y = outputs[0] if isinstance(outputs, tuple) else outputs
    gy = np.random.default_rng(gy_seed).standard_normal(tuple(y.shape))
    y.backward(torch.tensor(gy))
    as_numpy = tuple(o.detach().numpy() for o in outputs) if isinstance(outputs, tuple) else (
        y.detach().numpy(),
    )  # fmt: skip
    return as_numpy, gy, tx.grad.numpy()
