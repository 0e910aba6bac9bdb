"""Pooling layers: the functional ops behind the Layer API, checked against torch.nn."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import numconv
import numconv.functional as F

# (numconv class, torch.nn class or None, constructor args, input shape)
LAYERS = [
    ("MaxPool1d", (3, 2, 1), (2, 3, 11)),
    ("MaxPool2d", (3, 2, 1, 1, False, True), (2, 3, 8, 9)),
    ("MaxPool3d", ((2, 3, 2), 2), (1, 2, 5, 6, 7)),
    ("AvgPool1d", (3, 2, 1), (2, 3, 11)),
    ("AvgPool2d", (3, 2, 1, True, False), (2, 3, 8, 9)),
    ("AvgPool3d", (2, 1, 0, False, True, 3), (1, 2, 5, 6, 7)),
    ("LPPool1d", (2, 3, 2), (2, 3, 11)),
    ("LPPool2d", (1.5, 2), (2, 3, 8, 9)),
    ("LPPool3d", (3, 2, 1, True), (1, 2, 5, 6, 7)),
    ("AdaptiveAvgPool1d", (4,), (2, 3, 11)),
    ("AdaptiveAvgPool2d", ((3, None),), (2, 3, 8, 9)),
    ("AdaptiveAvgPool3d", (2,), (1, 2, 5, 6, 7)),
    ("AdaptiveMaxPool1d", (4,), (2, 3, 11)),
    ("AdaptiveMaxPool2d", ((3, 5),), (2, 3, 8, 9)),
    ("AdaptiveMaxPool3d", (2,), (1, 2, 5, 6, 7)),
]


@pytest.mark.parametrize(("name", "args", "shape"), LAYERS)
def test_matches_torch_module(torch, rng, name, args, shape):
    x = rng.uniform(0.1, 2.0, shape)  # positive, so LP pooling is defined everywhere
    layer = getattr(numconv, name)(*args)
    reference = getattr(torch.nn, name)(*args)
    assert repr(layer) == repr(reference)
    assert layer.params == {} and layer.grads == {} and layer.state_dict() == {}
    tx = torch.tensor(x, requires_grad=True)
    ty = reference(tx)
    y = layer(x)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12)
    gy = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(layer.backward(gy), tx.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_min_pool_layer_mirrors_max_pool(rng, nd):
    x = rng.standard_normal((2, 3) + (6,) * nd)
    layer = getattr(numconv, f"MinPool{nd}d")(3, 2, 1, return_indices=True)
    y, idx = layer(x)
    ref_y, ref_idx = getattr(F, f"max_pool{nd}d")(-x, 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(y, -ref_y)
    np.testing.assert_array_equal(idx, ref_idx)
    gy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(
        layer.backward(gy), getattr(F, f"max_pool{nd}d_backward")(gy, -x, 3, 2, 1)
    )
    assert (
        repr(layer)
        == f"MinPool{nd}d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)"
    )


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_unpool_layer_matches_torch(torch, rng, nd):
    x = rng.standard_normal((2, 3) + (7,) * nd)
    pool = getattr(numconv, f"MaxPool{nd}d")(2, return_indices=True)
    unpool = getattr(numconv, f"MaxUnpool{nd}d")(2)
    reference = getattr(torch.nn, f"MaxUnpool{nd}d")(2)
    assert repr(unpool) == repr(reference)
    y, idx = pool(x)
    ty = torch.tensor(y, requires_grad=True)
    out_ref = reference(ty, torch.tensor(idx), output_size=x.shape)
    out = unpool(y, idx, output_size=x.shape)
    np.testing.assert_array_equal(out, out_ref.detach().numpy())
    g = rng.standard_normal(out.shape)
    out_ref.backward(torch.tensor(g))
    np.testing.assert_array_equal(unpool.backward(g), ty.grad.numpy())


def test_issue_example():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 7))
    pool = numconv.AvgPool2d(2, count_include_pad=False)
    y = pool(x)
    gy = rng.standard_normal(y.shape)
    gx = pool.backward(gy)
    np.testing.assert_array_equal(y, F.avg_pool2d(x, 2, count_include_pad=False))
    np.testing.assert_array_equal(gx, F.avg_pool2d_backward(gy, x, 2, count_include_pad=False))


def test_backward_uses_the_forward_state_not_the_callers_buffer(rng):
    x = rng.uniform(0.5, 2.0, (1, 2, 6, 6))
    layers = [numconv.MaxPool2d(2), numconv.LPPool2d(2, 2), numconv.AdaptiveMaxPool2d(3)]
    expected = []
    for layer in layers:
        y = layer(x)
        expected.append(layer.backward(np.ones_like(y)))
    for layer, want in zip(layers, expected, strict=True):
        y = layer(x)
        x_saved = x.copy()
        x[...] = rng.uniform(0.5, 2.0, x.shape)  # the caller reuses its buffer
        np.testing.assert_array_equal(layer.backward(np.ones_like(y)), want)
        x[...] = x_saved


def test_return_indices_and_errors():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    _, idx = numconv.MaxPool2d(2, return_indices=True)(x)
    np.testing.assert_array_equal(idx[0, 0], [[5, 7], [13, 15]])
    with pytest.raises(RuntimeError, match="before forward"):
        numconv.AvgPool2d(2).backward(np.ones((1, 1, 2, 2)))
    with pytest.raises(TypeError, match="ceil_mode"):
        numconv.MaxPool2d(2, ceil_mode="yes")
    with pytest.raises(ValueError, match="kernel_size"):
        numconv.MaxUnpool2d(0)
    with pytest.raises(ValueError, match="at most half"):
        numconv.MaxPool2d(2, padding=2)(x)


@pytest.mark.parametrize("name", numconv.layers.pool.__all__)
def test_docstring_examples_run(name):
    cls = getattr(numconv, name)
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner()
    for test in finder.find(cls, name, globs={}):
        runner.run(test)
    assert runner.failures == 0 and runner.tries >= 4
