"""Convolution forward and gradients against PyTorch float64 autograd."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from helpers import assert_close, torch_conv_grads
from hypothesis import assume, given
from hypothesis import strategies as st

import numconv.functional as F

MODES = ["zeros", "reflect", "replicate", "circular"]

# Every test here runs once per algorithm of the dispatch (where it applies).
pytestmark = pytest.mark.usefixtures("each_algorithm")


def run_numconv(x, w, b, gy, stride, padding, dilation, groups, mode):
    nd = w.ndim - 2
    args = (stride, padding, dilation, groups, mode)
    y = getattr(F, f"conv{nd}d")(x, w, b, *args)
    gx = getattr(F, f"conv{nd}d_input_grad")(x.shape, w, gy, *args)
    gw = getattr(F, f"conv{nd}d_weight_grad")(x, w.shape, gy, *args)
    gb = F.conv_bias_grad(gy)
    # The weight and bias in one call: the same weight, the bias from the same
    # pass where the algorithm fuses it (the tap sums)
    gw_fused, gb_fused = getattr(F, f"conv{nd}d_param_grads")(x, w.shape, gy, *args)
    np.testing.assert_array_equal(gw_fused, gw)
    assert gb_fused.dtype == gb.dtype
    assert_close(gb_fused, gb, gb.dtype)
    return y, gx, gw, gb_fused


def check_against_torch(torch, rng, shape, c_out, kernel, stride, padding, dilation, groups,
                        mode, bias=True, dtype=np.float64):  # fmt: skip
    _n, c_in, *_spatial = shape
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups, *kernel)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype) if bias else None
    ref = torch_conv_grads(torch, x, w, b, 7, stride, padding, dilation, groups, mode)
    gy = ref[4].astype(dtype)
    got = run_numconv(x, w, b, gy, stride, padding, dilation, groups, mode)
    for name, g, r in zip(("y", "gx", "gw"), got[:3], ref[:3]):
        assert g.dtype == dtype, name
        assert_close(g, r, dtype)
    if bias:
        assert_close(got[3], ref[3], dtype)


# One case per row: (input shape, C_out, kernel, stride, padding, dilation, groups).
CASES = [
    ((2, 3, 11), 4, (3,), 1, 1, 1, 1),
    ((1, 4, 17), 6, (5,), 3, (2,), 2, 2),
    ((2, 3, 13), 3, (4,), 2, "same", 1, 3),  # strided "same" (beyond PyTorch)
    ((2, 2, 9), 4, (3,), 1, ((2, 0),), 1, 1),  # per-side padding (beyond)
    ((2, 3, 8, 9), 5, (3, 3), 1, 1, 1, 1),
    ((1, 4, 10, 7), 4, (3, 2), (2, 1), (1, 0), (1, 2), 2),
    ((2, 6, 9, 9), 6, (3, 3), 2, 1, 1, 6),  # depthwise
    ((2, 6, 10, 12), 6, (3, 3), 2, 1, 1, 6),  # depthwise, even width: split planes
    ((1, 4, 9, 14), 4, (5, 5), (1, 2), 2, 1, 4),  # depthwise 5×5, split planes
    ((2, 2, 12, 11), 3, (5, 4), (3, 2), "same", (2, 1), 1),
    ((1, 3, 7, 8), 2, (2, 3), 1, "same", 1, 1),  # even kernel: extra pad after
    ((2, 4, 6, 7), 4, (1, 1), 1, "valid", 1, 2),
    ((1, 2, 9, 10), 3, (3, 3), 2, ((0, 2), (1, 0)), 1, 1),
    ((2, 2, 5, 6, 7), 4, (2, 3, 2), (1, 2, 1), (1, 0, 1), (2, 1, 1), 2),
    ((1, 3, 6, 6, 6), 3, (3, 3, 3), 2, "same", 1, 3),
    ((1, 1, 4, 5, 6), 2, (1, 2, 3), 1, ((1, 0), (0, 2), 1), 1, 1),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{len(c[0]) - 2}d-{c}")
def test_matches_torch(torch, rng, case, mode):
    shape, c_out, kernel, stride, padding, dilation, groups = case
    check_against_torch(torch, rng, shape, c_out, kernel, stride, padding, dilation, groups, mode)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_dtypes_and_bias(torch, rng, nd, dtype, bias):
    shape = (2, 4, *(6, 7, 8)[3 - nd :])
    check_against_torch(torch, rng, shape, 6, (3,) * nd, 2, 1, 1, 2, "zeros", bias, dtype)


@pytest.mark.parametrize("mode", MODES)
def test_float32_larger_problem(torch, rng, mode):
    """Enough accumulation depth (C·k² = 288) for float32 rounding to show."""
    check_against_torch(torch, rng, (2, 32, 14, 14), 16, (3, 3), 1, 2, 2, 1, mode, dtype=np.float32)


@st.composite
def conv_configs(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    spatial = tuple(draw(st.integers(1, 9)) for _ in range(nd))
    mode = draw(st.sampled_from(MODES))
    form = draw(st.sampled_from(["int", "tuple", "pairs", "valid", "same"]))
    if form == "int":
        padding = draw(st.integers(0, 3))
        pairs = [(padding, padding)] * nd
    elif form == "tuple":
        padding = tuple(draw(st.integers(0, 3)) for _ in range(nd))
        pairs = [(p, p) for p in padding]
    elif form == "pairs":
        padding = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(nd))
        pairs = list(padding)
    else:
        padding, pairs = form, None
    if pairs is not None:  # the string forms are resolved (and checked) by the library
        for (before, after), n, k, d in zip(pairs, spatial, kernel, dilation):
            assume(n + before + after >= d * (k - 1) + 1)
            assume(mode != "reflect" or max(before, after) < n)
            assume(mode != "circular" or max(before, after) <= n)
    else:
        from naive import expand_padding

        resolved = expand_padding(padding, spatial, kernel, stride, dilation)
        for (before, after), n in zip(resolved, spatial):
            assume(mode != "reflect" or max(before, after) < n)
            assume(mode != "circular" or max(before, after) <= n)
        if form == "valid":
            assume(all(n >= d * (k - 1) + 1 for n, k, d in zip(spatial, kernel, dilation)))
    batch = draw(st.integers(1, 2))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    bias = draw(st.booleans())
    return (
        (batch, c_in, *spatial),
        c_out,
        kernel,
        stride,
        padding,
        dilation,
        groups,
        mode,
        bias,
        dtype,
    )


@given(config=conv_configs(), seed=st.integers(0, 2**16))
def test_random_configurations_match_torch(torch, config, seed):
    check_against_torch(torch, np.random.default_rng(seed), *config)


@pytest.mark.slow
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_exhaustive_small_sweep(torch, rng, nd):
    """Every combination of mode, stride, dilation, groups and padding form on one shape."""
    spatial = (7, 6, 5)[3 - nd :]
    paddings = [1, "same", tuple((2, 0) if i % 2 else (0, 1) for i in range(nd))]
    for mode, stride, dilation, groups, padding in itertools.product(
        MODES, (1, 2), (1, 2), (1, 2), paddings
    ):
        check_against_torch(
            torch, rng, (2, 4, *spatial), 6, (3,) * nd, stride, padding, dilation, groups, mode
        )
