"""Conv layers against PyTorch's nn.Conv{1,2,3}d, plus the Layer protocol."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_close

import numconv

LAYERS = {1: numconv.Conv1d, 2: numconv.Conv2d, 3: numconv.Conv3d}

CONFIGS = [
    (1, dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, groups=2)),
    (1, dict(in_channels=3, out_channels=2, kernel_size=4, padding="same", bias=False)),
    (2, dict(in_channels=3, out_channels=4, kernel_size=(3, 2), padding=(1, 0), dilation=(1, 2))),
    (2, dict(in_channels=4, out_channels=4, kernel_size=3, padding=2, padding_mode="reflect",
             groups=4)),
    (2, dict(in_channels=2, out_channels=3, kernel_size=3, padding=1, padding_mode="circular")),
    (3, dict(in_channels=2, out_channels=4, kernel_size=(2, 3, 3), stride=(1, 2, 2), padding=1,
             padding_mode="replicate")),
]  # fmt: skip


def torch_layer(torch, nd, cfg):
    return getattr(torch.nn, f"Conv{nd}d")(**cfg, dtype=torch.float64)


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize(("nd", "cfg"), CONFIGS)
def test_layer_matches_torch_layer(torch, rng, nd, cfg, batched):
    ref = torch_layer(torch, nd, cfg)
    layer = LAYERS[nd](**cfg, dtype=np.float64)
    layer.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    shape = (2, cfg["in_channels"], *(7, 8, 9)[3 - nd :])
    x = rng.standard_normal(shape if batched else shape[1:])
    tx = torch.tensor(x, requires_grad=True)
    ty = ref(tx)
    y = layer(x)
    assert_close(y, ty.detach().numpy())
    gy = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(gy))
    gx = layer.backward(gy)
    assert_close(gx, tx.grad.numpy())
    assert_close(layer.grads["weight"], ref.weight.grad.numpy())
    if ref.bias is not None:
        assert_close(layer.grads["bias"], ref.bias.grad.numpy())
    # a second backward accumulates, as PyTorch's .grad does
    layer.backward(gy)
    assert_close(layer.grads["weight"], 2 * ref.weight.grad.numpy())
    layer.zero_grad()
    assert all(not g.any() for g in layer.grads.values())


@pytest.mark.parametrize(("nd", "cfg"), CONFIGS)
def test_state_dict_has_torch_keys_shapes_and_repr(torch, nd, cfg):
    ref = torch_layer(torch, nd, cfg)
    layer = LAYERS[nd](**cfg)
    ours, theirs = layer.state_dict(), ref.state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == tuple(theirs[k].shape) for k in ours)
    if cfg.get("padding") != "same":  # torch prints padding=same without quotes too
        assert repr(layer) == repr(ref).replace(", dtype=torch.float64", "")
    assert layer.params.keys() == layer.grads.keys()
    assert layer.weight is layer.params["weight"]
    assert (layer.bias is None) == ("bias" not in layer.params) == (ref.bias is None)


def test_default_init_follows_torch_bounds():
    layer = numconv.Conv2d(6, 32, (3, 5), groups=2, seed=1)
    bound = 1 / math.sqrt(3 * 3 * 5)
    for name in ("weight", "bias"):
        p = layer.params[name]
        assert p.dtype == np.float32
        assert np.abs(p).max() <= bound
    # uniform over the whole interval, not a narrower one (1440 draws)
    w = layer.weight
    assert w.min() < -0.9 * bound and w.max() > 0.9 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound


def test_seed_makes_init_reproducible():
    a, b, c = (numconv.Conv1d(3, 4, 3, seed=s) for s in (7, 7, 8))
    np.testing.assert_array_equal(a.weight, b.weight)
    np.testing.assert_array_equal(a.bias, b.bias)
    assert not np.array_equal(a.weight, c.weight)


def test_transposed_layer_fan_in_is_from_weight_dim_one():
    """PyTorch computes fan_in from weight.shape[1] · ∏k; for Conv that is C_in/groups."""
    layer = numconv.Conv2d(8, 2, 3, groups=2, seed=0)
    assert np.abs(layer.weight).max() <= 1 / math.sqrt(4 * 9)
    assert np.abs(layer.weight).max() > 0.9 / math.sqrt(4 * 9)


def test_load_state_dict_copies_into_the_same_arrays():
    layer = numconv.Conv2d(2, 3, 3)
    weight = layer.weight
    state = {"weight": np.ones((3, 2, 3, 3)), "bias": np.arange(3.0)}
    layer.load_state_dict(state)
    assert layer.weight is weight and layer.weight.dtype == np.float32
    np.testing.assert_array_equal(layer.bias, [0, 1, 2])
    state["weight"][...] = 5  # the layer holds a copy
    np.testing.assert_array_equal(layer.weight, 1)


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ({"weight": np.ones((3, 2, 3, 3))}, r"missing \['bias'\]"),
        ({"weight": np.ones((3, 2, 3, 3)), "bias": np.ones(3), "x": 1}, r"unexpected \['x'\]"),
        ({"weight": np.ones((3, 2, 3, 2)), "bias": np.ones(3)}, r"state_dict\['weight'\]"),
        ({"weight": np.ones((3, 2, 3, 3)), "bias": np.ones(4)}, r"state_dict\['bias'\]"),
    ],
)
def test_load_state_dict_rejects_mismatches(state, match):
    layer = numconv.Conv2d(2, 3, 3)
    before = layer.state_dict()
    with pytest.raises(ValueError, match=match):
        layer.load_state_dict(state)
    for k, v in layer.state_dict().items():  # nothing was half-loaded
        np.testing.assert_array_equal(v, before[k])


def test_weight_assignment_writes_in_place():
    layer = numconv.Conv1d(1, 1, 2, bias=False)
    weight = layer.weight
    layer.weight -= 1.0
    layer.weight = np.full((1, 1, 2), 3.0)
    assert layer.weight is weight
    np.testing.assert_array_equal(layer.params["weight"], 3.0)
    with pytest.raises(ValueError, match="weight must have shape"):
        layer.weight = np.ones(3)
    with pytest.raises(ValueError, match="no parameter 'bias'"):
        layer.bias = np.ones(1)


def test_forward_caches_a_copy_of_the_input(rng):
    layer = numconv.Conv1d(2, 2, 3, dtype=np.float64, seed=0)
    x = rng.standard_normal((1, 2, 6))
    gy = np.ones((1, 2, 4))
    layer(x)
    expected = layer.backward(gy), layer.grads["weight"].copy()
    layer.zero_grad()
    layer(x)
    x[...] = 0  # the caller reuses its buffer
    layer.backward(gy)
    np.testing.assert_array_equal(layer.grads["weight"], expected[1])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_layer_dtypes(rng, dtype):
    layer = numconv.Conv2d(2, 3, 3, dtype=dtype, seed=0)
    x = rng.standard_normal((1, 2, 5, 5)).astype(dtype)
    y = layer(x)
    assert y.dtype == dtype and layer.weight.dtype == dtype
    layer.backward(np.ones_like(y))
    assert layer.grads["weight"].dtype == dtype
