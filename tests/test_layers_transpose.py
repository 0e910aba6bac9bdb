"""ConvTranspose{1,2,3}d, Unfold and Fold layers against their PyTorch counterparts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_close

import numconv

CONFIGS = [
    (1, dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, groups=2)),
    (1, dict(in_channels=3, out_channels=2, kernel_size=4, output_padding=1, stride=2,
             bias=False)),
    (2, dict(in_channels=3, out_channels=4, kernel_size=(3, 2), padding=(1, 0), dilation=(1, 2),
             output_padding=(0, 1))),
    (2, dict(in_channels=4, out_channels=4, kernel_size=3, stride=2, padding=1, output_padding=1,
             groups=4)),
    (3, dict(in_channels=2, out_channels=4, kernel_size=(2, 3, 3), stride=(1, 2, 2), padding=1)),
]  # fmt: skip


def torch_layer(torch, nd, cfg):
    return getattr(torch.nn, f"ConvTranspose{nd}d")(**cfg, dtype=torch.float64)


def layer_class(nd):
    return getattr(numconv, f"ConvTranspose{nd}d")


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize(("nd", "cfg"), CONFIGS)
def test_layer_matches_torch_layer(torch, rng, nd, cfg, batched):
    ref = torch_layer(torch, nd, cfg)
    layer = layer_class(nd)(**cfg, dtype=np.float64)
    layer.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    shape = (2, cfg["in_channels"], *(4, 5, 6)[3 - nd :])
    x = rng.standard_normal(shape if batched else shape[1:])
    tx = torch.tensor(x, requires_grad=True)
    ty = ref(tx)
    y = layer(x)
    assert_close(y, ty.detach().numpy())
    gy = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(gy))
    assert_close(layer.backward(gy), tx.grad.numpy())
    assert_close(layer.grads["weight"], ref.weight.grad.numpy())
    if ref.bias is not None:
        assert_close(layer.grads["bias"], ref.bias.grad.numpy())
    layer.backward(gy)  # accumulates
    assert_close(layer.grads["weight"], 2 * ref.weight.grad.numpy())


def test_forward_output_size_carries_into_backward(torch, rng):
    cfg = dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, padding=1)
    ref = torch_layer(torch, 2, cfg)
    layer = numconv.ConvTranspose2d(**cfg, dtype=np.float64)
    layer.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    x = rng.standard_normal((1, 2, 4, 5))
    tx = torch.tensor(x, requires_grad=True)
    ty = ref(tx, output_size=[8, 10])
    y = layer(x, output_size=(8, 10))
    assert y.shape == (1, 3, 8, 10)
    assert_close(y, ty.detach().numpy())
    gy = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(gy))
    assert_close(layer.backward(gy), tx.grad.numpy())
    assert_close(layer.grads["weight"], ref.weight.grad.numpy())


@pytest.mark.parametrize(("nd", "cfg"), CONFIGS)
def test_state_dict_and_repr_match_torch(torch, nd, cfg):
    ref = torch_layer(torch, nd, cfg)
    layer = layer_class(nd)(**cfg)
    ours, theirs = layer.state_dict(), ref.state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == tuple(theirs[k].shape) for k in ours)
    assert repr(layer) == repr(ref).replace(", dtype=torch.float64", "")


def test_init_bounds_use_weight_dim_one():
    # PyTorch: fan_in = weight.shape[1] * prod(k) = out_channels / groups * prod(k)
    layer = numconv.ConvTranspose2d(8, 6, 3, groups=2, seed=0)
    assert layer.weight.shape == (8, 3, 3, 3)
    assert layer.bias.shape == (6,)
    bound = 1 / math.sqrt(3 * 9)
    assert np.abs(layer.weight).max() <= bound
    assert np.abs(layer.weight).max() > 0.9 * bound


def test_bad_layer_arguments():
    with pytest.raises(ValueError, match="output_padding must be smaller"):
        numconv.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="padding"):
        numconv.ConvTranspose1d(2, 2, 3, padding="same")
    with pytest.raises(ValueError, match="groups=3 must divide"):
        numconv.ConvTranspose2d(4, 3, 3, groups=3)
    with pytest.raises(RuntimeError, match="before forward"):
        numconv.ConvTranspose2d(2, 2, 3).backward(np.ones((1, 2, 5, 5)))


@pytest.mark.parametrize(
    "kwargs",
    [dict(kernel_size=2), dict(kernel_size=(2, 3), dilation=(1, 2), padding=1, stride=(2, 1))],
)
def test_unfold_and_fold_layers_match_torch(torch, rng, kwargs):
    x = rng.standard_normal((2, 3, 6, 7))
    tx = torch.tensor(x, requires_grad=True)
    unfold, ref_unfold = numconv.Unfold(**kwargs), torch.nn.Unfold(**kwargs)
    assert repr(unfold) == repr(ref_unfold)
    cols, ref_cols = unfold(x), ref_unfold(tx)
    np.testing.assert_array_equal(cols, ref_cols.detach().numpy())
    g_cols = rng.standard_normal(cols.shape)
    ref_cols.backward(torch.tensor(g_cols))
    np.testing.assert_allclose(unfold.backward(g_cols), tx.grad.numpy(), rtol=1e-13)

    fold, ref_fold = numconv.Fold((6, 7), **kwargs), torch.nn.Fold((6, 7), **kwargs)
    assert repr(fold) == repr(ref_fold)
    tc = torch.tensor(g_cols, requires_grad=True)
    ref_image = ref_fold(tc)
    image = fold(g_cols)
    np.testing.assert_allclose(image, ref_image.detach().numpy(), rtol=1e-13)
    g_image = rng.standard_normal(image.shape)
    ref_image.backward(torch.tensor(g_image))
    np.testing.assert_array_equal(fold.backward(g_image), tc.grad.numpy())


def test_unfold_and_fold_layers_in_1d_and_3d(rng):
    x = rng.standard_normal((2, 3, 9))
    unfold = numconv.Unfold((3,), stride=2)
    cols = unfold(x)
    assert cols.shape == (2, 9, 4)
    assert unfold.backward(np.ones_like(cols)).shape == x.shape
    fold = numconv.Fold((4, 4, 4), 2, stride=2)
    image = fold(rng.standard_normal((1, 16, 8)))
    assert image.shape == (1, 2, 4, 4, 4)
    assert fold.backward(image).shape == (1, 16, 8)
    with pytest.raises(RuntimeError, match="before forward"):
        numconv.Fold(4, 2).backward(np.ones((1, 1, 4, 4)))
