"""Adaptive max pooling and max unpooling against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import torch_with_grad
from hypothesis import given
from hypothesis import strategies as st
from naive import adaptive_pool

import numconv.functional as F

ADAPTIVE = [
    (1, (2, 3, 10), 4),
    (1, (1, 2, 5), 7),  # more bins than elements: bins repeat elements
    (2, (2, 3, 9, 8), (3, 5)),
    (2, (1, 2, 7, 7), 1),
    (2, (1, 2, 6, 9), (None, 4)),
    (3, (1, 2, 5, 6, 7), (2, 3, None)),
    (3, (2, 1, 4, 4, 4), 3),
]


def _resolved(spatial, output_size):
    items = output_size if isinstance(output_size, tuple) else (output_size,) * len(spatial)
    return tuple(n if o is None else o for n, o in zip(spatial, items, strict=True))


def check_adaptive_max(torch, x, nd, output_size):
    function = getattr(torch.nn.functional, f"adaptive_max_pool{nd}d")
    sizes = _resolved(x.shape[-nd:], output_size)
    (ref_y, ref_idx), gy, ref_gx = torch_with_grad(torch, function, x, sizes, return_indices=True)
    y, idx = getattr(F, f"adaptive_max_pool{nd}d")(x, output_size, return_indices=True)
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_array_equal(idx, ref_idx)
    backward = getattr(F, f"adaptive_max_pool{nd}d_backward")
    gx = backward(gy, x, output_size)
    np.testing.assert_allclose(gx, ref_gx, rtol=1e-12)
    np.testing.assert_array_equal(backward(gy, x, output_size, indices=idx), gx)


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize(("nd", "shape", "output_size"), ADAPTIVE)
def test_adaptive_max_matches_torch(torch, rng, nd, shape, output_size, ties):
    x = rng.integers(0, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    check_adaptive_max(torch, x, nd, output_size)
    sizes = _resolved(shape[2:], output_size)
    np.testing.assert_array_equal(
        getattr(F, f"adaptive_max_pool{nd}d")(x, output_size), adaptive_pool(x, sizes, np.max)
    )


def test_adaptive_max_nan_like_torch(torch, rng):
    x = rng.standard_normal((1, 2, 7, 6))
    x[0, 0, 1, 2] = x[0, 1, 6, 5] = np.nan
    check_adaptive_max(torch, x, 2, (3, 4))


@given(spatial=st.lists(st.integers(1, 9), min_size=1, max_size=3), data=st.data())
def test_adaptive_max_random_sizes_match_torch(torch, spatial, data):
    nd = len(spatial)
    output_size = tuple(data.draw(st.integers(1, 10)) for _ in spatial)
    x = np.random.default_rng(nd).integers(0, 4, (2, 2, *spatial)).astype(np.float64)
    check_adaptive_max(torch, x, nd, output_size)


# --------------------------------------------------------------------------- unpooling
def check_unpool(torch, x, nd, pool_kw, output_size=None):
    """Pool with PyTorch, then unpool its values and indices in both libraries."""
    tx = torch.tensor(x)
    pooled, indices = getattr(torch.nn.functional, f"max_pool{nd}d")(
        tx, return_indices=True, **pool_kw
    )
    unpool_kw = {k: v for k, v in pool_kw.items() if k in ("kernel_size", "stride", "padding")}
    function = getattr(torch.nn.functional, f"max_unpool{nd}d")
    (ref_y,), gy, ref_gx = torch_with_grad(
        torch, function, pooled.numpy(), indices, output_size=output_size, **unpool_kw
    )
    y = getattr(F, f"max_unpool{nd}d")(pooled.numpy(), indices.numpy(), output_size=output_size,
                                       **unpool_kw)  # fmt: skip
    np.testing.assert_array_equal(y, ref_y)
    backward = getattr(F, f"max_unpool{nd}d_backward")
    gx = backward(gy, pooled.numpy(), indices.numpy(), output_size=output_size, **unpool_kw)
    np.testing.assert_array_equal(gx, ref_gx)


UNPOOL = [
    (1, (2, 3, 11), dict(kernel_size=3, stride=2, padding=1), None),
    (1, (2, 2, 10), dict(kernel_size=2), (10,)),
    (2, (2, 3, 8, 8), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (8, 8)),
    (2, (1, 2, 7, 9), dict(kernel_size=2, stride=2), (7, 9)),
    (2, (1, 2, 8, 8), dict(kernel_size=3, stride=1, padding=1), None),  # repeated indices
    (2, (2, 2, 6, 6), dict(kernel_size=2), (2, 2, 7, 7)),  # a whole shape, larger than default
    (3, (1, 2, 5, 6, 7), dict(kernel_size=2, stride=2), (5, 6, 7)),
    (3, (2, 1, 4, 5, 6), dict(kernel_size=(2, 3, 2), stride=(1, 2, 2), padding=(1, 1, 0)), None),
]


@pytest.mark.parametrize(("nd", "shape", "pool_kw", "output_size"), UNPOOL)
def test_unpool_matches_torch(torch, rng, nd, shape, pool_kw, output_size):
    check_unpool(torch, rng.integers(0, 4, shape).astype(np.float64), nd, pool_kw, output_size)


def test_issue_example_round_trip(rng):
    x = rng.uniform(0.1, 1.0, (2, 3, 8, 8))  # positive: re-pooling sees zeros as smaller
    y, idx = F.max_pool2d(x, 3, stride=2, padding=1, dilation=1, ceil_mode=True,
                          return_indices=True)  # fmt: skip
    x_up = F.max_unpool2d(y, idx, 3, stride=2, padding=1, output_size=x.shape[-2:])
    assert x_up.shape == x.shape
    kept = x_up != 0
    np.testing.assert_array_equal(x_up[kept], x[kept])
    for plane_up, plane_idx in zip(x_up.reshape(6, -1), idx.reshape(6, -1), strict=True):
        np.testing.assert_array_equal(np.flatnonzero(plane_up), np.unique(plane_idx))
    np.testing.assert_array_equal(F.max_pool2d(x_up, 3, stride=2, padding=1, ceil_mode=True), y)


def test_unpool_float32_unbatched_and_empty(rng):
    x = rng.standard_normal((3, 4, 4)).astype(np.float32)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    up = F.max_unpool2d(y, idx, 2)
    assert up.dtype == np.float32 and up.shape == (3, 4, 4)
    assert F.max_unpool1d(np.zeros((0, 2, 3)), np.zeros((0, 2, 3), int), 2).shape == (0, 2, 6)


def _one_bad_index(shape, bad):
    """Valid 2×2-pooling indices into a (2·h, 2·w) plane, but one, deep inside the array."""
    h, w = shape[-2:]
    rows, cols = np.meshgrid(np.arange(h) * 2, np.arange(w) * 2, indexing="ij")
    indices = np.broadcast_to(rows * 2 * w + cols, shape).copy()
    indices[-1, 1, -1, 0] = bad
    return indices


BAD = [
    (lambda: F.max_unpool2d(np.ones((1, 1, 2, 2)), np.full((1, 1, 2, 2), 16), 2),
     ValueError, r"\[0, 16\)"),
    (lambda: F.max_unpool2d(np.ones((1, 1, 2, 2)), np.zeros((1, 1, 2, 3), int), 2),
     ValueError, "indices must have shape"),
    (lambda: F.max_unpool2d(np.ones((1, 1, 2, 2)), np.zeros((1, 1, 2, 2)), 2),
     TypeError, "integer array"),
    (lambda: F.max_unpool2d(np.ones((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), int), 2,
                            output_size=(6, 4)), ValueError, "output_size"),
    (lambda: F.max_unpool2d(np.ones((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), int), 2,
                            output_size=(2, 4)), ValueError, "strictly between"),
    (lambda: F.max_unpool2d(np.ones((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), int), 2,
                            output_size=4), ValueError, "output_size must be a tuple"),
    (lambda: F.max_unpool1d(np.ones((1, 1, 1)), np.zeros((1, 1, 1), int), 1, padding=1),
     ValueError, "not positive"),
    (lambda: F.max_unpool2d_backward(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)),
                                     np.zeros((1, 1, 2, 2), int), 2), ValueError, "grad_output"),
    (lambda: F.max_unpool2d(np.ones((2, 3, 2, 2)), _one_bad_index((2, 3, 2, 2), 16), 2),
     ValueError, r"indices must lie in \[0, 16\)"),
    (lambda: F.max_unpool2d(np.ones((2, 3, 2, 2)), _one_bad_index((2, 3, 2, 2), -1), 2),
     ValueError, "indices must lie in"),
    (lambda: F.max_unpool2d_backward(np.ones((2, 3, 4, 4)), np.ones((2, 3, 2, 2)),
                                     _one_bad_index((2, 3, 2, 2), 16), 2),
     ValueError, r"indices must lie in \[0, 16\)"),
    (lambda: F.max_unpool2d_backward(np.ones((2, 3, 4, 4)), np.ones((2, 3, 2, 2)),
                                     _one_bad_index((2, 3, 2, 2), -5), 2),
     ValueError, r"got values in \[-5, "),
    (lambda: F.adaptive_max_pool2d(np.ones((1, 1, 4, 4)), 2, return_indices="yes"), TypeError,
     "return_indices"),
    (lambda: F.adaptive_max_pool2d_backward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 4, 4)), 2,
                                            indices=np.full((1, 1, 2, 2), 16)), ValueError,
     "must lie in"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "match"), BAD)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
