"""Average and adaptive average pooling against PyTorch and the naive reference."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import SEED_6X6, assert_close, torch_with_grad
from hypothesis import given
from hypothesis import strategies as st
from naive import adaptive_pool, avg_pool

import numconv.functional as F


def test_seed_example():
    expected = [[3.25, 3.25, 5.75], [4.25, 4.5, 3.5], [3.5, 6, 5.75]]
    np.testing.assert_array_equal(F.avg_pool2d(SEED_6X6[None, None], 2)[0, 0], expected)


def _lifted(nd, kw):
    """Torch arguments for a (nd ≥ 2)-d call; 1-d becomes 2-d with a size-1 height.

    PyTorch's avg_pool1d has no divisor_override, so 1-d is checked through 2-d.
    """
    if nd > 1:
        return kw
    lifted = dict(kw)
    for key in ("kernel_size", "stride", "padding"):
        if key in kw and kw[key] is not None:
            value = kw[key] if isinstance(kw[key], int) else kw[key][0]
            lifted[key] = (1, value) if key != "padding" else (0, value)
    return lifted


def torch_avg(torch, x, nd, kw):
    function = getattr(torch.nn.functional, f"avg_pool{max(nd, 2)}d")
    x_t = x[:, :, None] if nd == 1 else x
    (y,), gy, gx = torch_with_grad(torch, function, x_t, **_lifted(nd, kw))
    squeeze = (lambda a: a[:, :, 0]) if nd == 1 else (lambda a: a)
    return squeeze(y), squeeze(gy), squeeze(gx)


def check_avg(torch, x, nd, **kw):
    y = getattr(F, f"avg_pool{nd}d")(x, **kw)
    ref_y, gy, ref_gx = torch_avg(torch, x, nd, kw)
    assert y.dtype == x.dtype
    assert_close(y, ref_y, x.dtype)
    gx = getattr(F, f"avg_pool{nd}d_backward")(gy.astype(x.dtype), x, **kw)
    assert gx.dtype == x.dtype
    assert_close(gx, ref_gx, x.dtype)


CASES = [
    (1, (2, 3, 11), dict(kernel_size=3, stride=2, padding=1)),
    (1, (2, 2, 10), dict(kernel_size=4, stride=3, padding=2, ceil_mode=True)),
    (1, (1, 2, 9), dict(kernel_size=3, stride=2, divisor_override=2)),
    (2, (2, 3, 9, 8), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (2, (1, 2, 7, 9), dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1))),
    (2, (2, 2, 6, 6), dict(kernel_size=2)),
    (2, (1, 2, 8, 8), dict(kernel_size=3, stride=1, padding=1)),  # heavy overlap
    # a negative divisor override, with a ceil-mode overhang
    (2, (1, 2, 7, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                           divisor_override=-3)),
    (3, (1, 2, 5, 6, 7), dict(kernel_size=(2, 3, 2), stride=2, padding=(1, 1, 0), ceil_mode=True)),
    (3, (2, 1, 4, 5, 6), dict(kernel_size=2, stride=1)),
]  # fmt: skip


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize(("nd", "shape", "kw"), CASES)
def test_matches_torch(torch, rng, nd, shape, kw, count_include_pad):
    check_avg(torch, rng.standard_normal(shape), nd, count_include_pad=count_include_pad, **kw)


@pytest.mark.parametrize(("nd", "shape", "kw"), CASES)
def test_matches_naive_reference(rng, nd, shape, kw):
    x = rng.standard_normal(shape)
    kernel = (kw["kernel_size"],) * nd if isinstance(kw["kernel_size"], int) else kw["kernel_size"]
    stride = kw.get("stride", kernel)
    stride = (stride,) * nd if isinstance(stride, int) else stride
    padding = kw.get("padding", 0)
    padding = (padding,) * nd if isinstance(padding, int) else padding
    for include in (True, False):
        expected = avg_pool(x, kernel, stride, padding, kw.get("ceil_mode", False), include,
                            kw.get("divisor_override"))  # fmt: skip
        actual = getattr(F, f"avg_pool{nd}d")(x, **kw, count_include_pad=include)
        assert_close(actual, expected)


def test_backward_is_the_adjoint(rng):
    """⟨avg(x), g⟩ = ⟨x, avg_backward(g)⟩ — a torch-free check of the gradient."""
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    x = rng.standard_normal((2, 3, 9, 10))
    y = F.avg_pool2d(x, **kw)
    g = rng.standard_normal(y.shape)
    assert np.isclose(np.vdot(y, g), np.vdot(x, F.avg_pool2d_backward(g, x, **kw)), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_lower_precision_and_unbatched(torch, rng, dtype):
    x = rng.standard_normal((3, 10, 9))
    y = F.avg_pool2d(x.astype(dtype), 3, stride=2, padding=1)
    assert y.dtype == dtype
    assert_close(y, F.avg_pool2d(x, 3, stride=2, padding=1), dtype)
    check_avg(torch, rng.standard_normal((3, 10, 9)).astype(np.float32), 2, kernel_size=2)


def test_array_like_empty_batch_and_inputs_untouched(rng):
    assert F.avg_pool1d([[[1.0, 2.0, 3.0, 5.0]]], 2).tolist() == [[[1.5, 4.0]]]
    assert F.avg_pool2d(np.zeros((0, 3, 4, 4)), 2).shape == (0, 3, 2, 2)
    x = rng.standard_normal((2, 2, 6, 6))
    x.flags.writeable = False
    gy = rng.standard_normal((2, 2, 3, 3))
    saved = gy.copy()
    F.avg_pool2d(x, 2)
    F.avg_pool2d_backward(gy, x, 2)
    np.testing.assert_array_equal(gy, saved)


# --------------------------------------------------------------------------- adaptive
ADAPTIVE = [
    (1, (2, 3, 10), 4),
    (1, (1, 2, 5), 7),  # more bins than elements
    (2, (2, 3, 9, 8), (3, 5)),
    (2, (1, 2, 7, 7), 1),  # global average pooling
    (2, (1, 2, 6, 9), (None, 4)),
    (3, (1, 2, 5, 6, 7), (2, 3, None)),
    (3, (2, 1, 4, 4, 4), 3),
]


def _sizes(spatial, output_size):
    items = output_size if isinstance(output_size, tuple) else (output_size,) * len(spatial)
    return tuple(n if o is None else o for n, o in zip(spatial, items, strict=True))


@pytest.mark.parametrize(("nd", "shape", "output_size"), ADAPTIVE)
def test_adaptive_matches_torch_and_naive(torch, rng, nd, shape, output_size):
    x = rng.standard_normal(shape)
    function = getattr(torch.nn.functional, f"adaptive_avg_pool{nd}d")
    (ref_y,), gy, ref_gx = torch_with_grad(torch, function, x, output_size)
    y = getattr(F, f"adaptive_avg_pool{nd}d")(x, output_size)
    assert_close(y, ref_y)
    assert_close(y, adaptive_pool(x, _sizes(shape[2:], output_size), np.mean))
    gx = getattr(F, f"adaptive_avg_pool{nd}d_backward")(gy, x, output_size)
    assert_close(gx, ref_gx)


@st.composite
def avg_configs(draw):
    nd = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    spatial = tuple(draw(st.integers(k, 9)) for k in kernel)
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *spatial)
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=draw(st.booleans()),
              count_include_pad=draw(st.booleans()),
              divisor_override=draw(st.sampled_from([None, None, 1, 5])))  # fmt: skip
    return nd, shape, kw


@given(config=avg_configs(), seed=st.integers(0, 2**16))
def test_random_configurations_match_torch(torch, config, seed):
    nd, shape, kw = config
    check_avg(torch, np.random.default_rng(seed).standard_normal(shape), nd, **kw)


@given(
    spatial=st.lists(st.integers(1, 9), min_size=1, max_size=3),
    data=st.data(),
)
def test_random_adaptive_sizes_match_torch(torch, spatial, data):
    nd = len(spatial)
    output_size = tuple(data.draw(st.one_of(st.none(), st.integers(1, 10))) for _ in spatial)
    x = np.random.default_rng(nd).standard_normal((2, 2, *spatial))
    function = getattr(torch.nn.functional, f"adaptive_avg_pool{nd}d")
    (ref_y,), gy, ref_gx = torch_with_grad(torch, function, x, _sizes(spatial, output_size))
    assert_close(getattr(F, f"adaptive_avg_pool{nd}d")(x, output_size), ref_y)
    assert_close(getattr(F, f"adaptive_avg_pool{nd}d_backward")(gy, x, output_size), ref_gx)


BAD = [
    (lambda: F.avg_pool2d(np.zeros((1, 1, 6, 6)), 3, padding=2), ValueError, "at most half"),
    (lambda: F.avg_pool2d(np.zeros((1, 1, 2, 2)), 3), ValueError, "larger than"),
    (lambda: F.avg_pool2d(np.zeros((1, 1, 6, 6)), 2, divisor_override=0), ValueError,
     "divisor_override must be a nonzero"),
    (lambda: F.avg_pool1d(np.zeros((1, 1, 6)), 2, divisor_override=1.5), TypeError,
     "divisor_override must be an int"),
    (lambda: F.avg_pool2d(np.zeros((1, 1, 6, 6)), 2, count_include_pad=None), TypeError,
     "count_include_pad"),
    (lambda: F.avg_pool3d(np.zeros((1, 1, 0, 6, 6)), 2), ValueError, "zero-size"),
    (lambda: F.avg_pool2d(np.zeros((1, 1, 6, 6), np.int32), 2), TypeError, "x must have dtype"),
    (lambda: F.avg_pool2d_backward(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 6, 6)), 2),
     ValueError, "grad_output must have"),
    (lambda: F.adaptive_avg_pool2d(np.zeros((1, 1, 6, 6)), 0), ValueError, "output_size"),
    (lambda: F.adaptive_avg_pool2d(np.zeros((1, 1, 6, 6)), (2, 2, 2)), ValueError, "output_size"),
    (lambda: F.adaptive_avg_pool2d(np.zeros((1, 1, 6, 6)), 2.0), TypeError, "output_size"),
    (lambda: F.adaptive_avg_pool1d(np.zeros((1, 1, 0)), 2), ValueError, "zero-size"),
    (lambda: F.adaptive_avg_pool2d(np.zeros(6), 2), ValueError, "x must have shape"),
    (lambda: F.adaptive_avg_pool2d_backward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 6, 6)), 2),
     ValueError, "grad_output must have"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "match"), BAD)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
