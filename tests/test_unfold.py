"""unfold / fold against PyTorch (2-d), a naive im2col (1-d, 2-d, 3-d), adjointness, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numconv.functional as F


def naive_unfold(x, kernel, dilation, pads, stride):
    """im2col by loops over the zero-padded input; shares no code with the package."""
    n, c, *spatial = x.shape
    nd = len(spatial)
    padded = np.pad(x, ((0, 0), (0, 0), *pads))
    out = [
        (size + b + a - d * (k - 1) - 1) // s + 1
        for size, (b, a), k, d, s in zip(spatial, pads, kernel, dilation, stride, strict=True)
    ]
    cols = np.zeros((n, c * int(np.prod(kernel)), int(np.prod(out))))
    for ci in range(c):
        for j, offset in enumerate(itertools.product(*map(range, kernel))):
            for l_index, position in enumerate(itertools.product(*map(range, out))):
                at = tuple(p * s + o * d for p, s, o, d in
                           zip(position, stride, offset, dilation, strict=True))  # fmt: skip
                cols[:, ci * int(np.prod(kernel)) + j, l_index] = padded[(slice(None), ci, *at)]
    assert len(kernel) == nd
    return cols


CASES_2D = [
    dict(kernel_size=2),
    dict(kernel_size=3, dilation=2, padding=1, stride=2),
    dict(kernel_size=(2, 3), dilation=(1, 2), padding=(1, 0), stride=(2, 1)),
    dict(kernel_size=3, padding=1, stride=3),  # blocks that skip input columns
    dict(kernel_size=(1, 1)),
]


@pytest.mark.parametrize("kwargs", CASES_2D)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_2d_matches_torch(torch, rng, kwargs, dtype):
    x = rng.standard_normal((2, 3, 7, 8)).astype(dtype)
    cols = F.unfold(x, **kwargs)
    ref = torch.nn.functional.unfold(torch.tensor(x), **kwargs).numpy()
    assert cols.dtype == dtype
    np.testing.assert_array_equal(cols, ref)  # a copy of values: exact
    c = rng.standard_normal(cols.shape).astype(dtype)
    image = F.fold(c, (7, 8), **kwargs)
    ref_image = torch.nn.functional.fold(torch.tensor(c), (7, 8), **kwargs).numpy()
    np.testing.assert_allclose(image, ref_image, rtol=1e-6 if dtype == np.float32 else 1e-14)


def test_unbatched_2d_matches_torch(torch, rng):
    x = rng.standard_normal((3, 5, 6))
    cols = F.unfold(x, 2, padding=1)
    np.testing.assert_array_equal(cols, torch.nn.functional.unfold(torch.tensor(x), 2, padding=1))
    image = F.fold(cols, (5, 6), 2, padding=1)
    np.testing.assert_array_equal(image, torch.nn.functional.fold(torch.tensor(cols), (5, 6), 2,
                                                                  padding=1))  # fmt: skip


@given(
    nd=st.integers(1, 3),
    size=st.integers(2, 6),
    k=st.integers(1, 3),
    d=st.integers(1, 2),
    p=st.integers(0, 2),
    s=st.integers(1, 3),
)
def test_all_ranks_match_naive_and_fold_is_the_adjoint(nd, size, k, d, p, s):
    rng = np.random.default_rng(size + 10 * k)
    shape = (2, 2, *(size + i for i in range(nd)))
    if min(shape[2:]) + 2 * p < d * (k - 1) + 1:
        return  # no block fits; the error is tested below
    x = rng.standard_normal(shape)
    kernel = (k,) * nd
    cols = F.unfold(x, kernel, d, p, s)
    np.testing.assert_array_equal(cols, naive_unfold(x, kernel, (d,) * nd, ((p, p),) * nd,
                                                     (s,) * nd))  # fmt: skip
    c = rng.standard_normal(cols.shape)
    image = F.fold(c, shape[2:], kernel, d, p, s)
    assert np.isclose(np.vdot(cols, c), np.vdot(x, image), rtol=1e-12)


def test_per_side_padding(rng):
    x = rng.standard_normal((1, 2, 5))
    cols = F.unfold(x, (3,), padding=((2, 0),))
    np.testing.assert_array_equal(cols, naive_unfold(x, (3,), (1,), ((2, 0),), (1,)))


def test_fold_counts_overlaps():
    counts = F.fold(np.ones((1, 2 * 3, 4 * 4)), (5, 6), (2, 3))
    np.testing.assert_array_equal(counts[0, 0, 0], [1, 2, 3, 3, 2, 1])
    np.testing.assert_array_equal(counts[0, 0, :, 0], [1, 2, 2, 2, 1])


def test_rank_from_kernel_size_or_output_size(rng):
    x1 = rng.standard_normal((2, 3, 9))
    assert F.unfold(x1, (3,)).shape == (2, 9, 7)  # a 1-tuple: batched 1-d
    # an int, as PyTorch: a 3-d x is one unbatched 2-d image (2 channels of 3 × 9)
    assert F.unfold(x1, 3).shape == (2 * 9, 1 * 7)
    assert F.unfold(x1, 3, padding=1).shape == (2 * 9, 3 * 9)
    x3 = rng.standard_normal((1, 2, 4, 4, 4))
    assert F.unfold(x3, 2).shape == (1, 16, 27)  # int on a 5-d input: 3-d
    cols = F.unfold(x3, 2)
    assert F.fold(cols, (4, 4, 4), 2).shape == x3.shape  # rank from output_size
    assert F.fold(cols, 4, (2, 2, 2)).shape == x3.shape  # rank from kernel_size


def test_inputs_untouched_float16_and_empty_batch(rng):
    x = rng.standard_normal((2, 3, 5, 5))
    before = x.copy()
    cols = F.unfold(x, 2)
    np.testing.assert_array_equal(x, before)
    c_before = cols.copy()
    F.fold(cols, (5, 5), 2)
    np.testing.assert_array_equal(cols, c_before)
    half = F.unfold(x.astype(np.float16), 2)
    assert half.dtype == np.float16
    np.testing.assert_array_equal(half, cols.astype(np.float16))
    assert F.unfold(np.zeros((0, 3, 5, 5)), 2).shape == (0, 12, 16)
    assert F.fold(np.zeros((0, 12, 16)), (5, 5), 2).shape == (0, 3, 5, 5)
    readonly = x.copy()
    readonly.flags.writeable = False
    np.testing.assert_array_equal(F.unfold(readonly, 2), cols)


BAD_UNFOLD = [
    (dict(kernel_size=0), ValueError, "kernel_size"),
    (dict(kernel_size=6), ValueError, "kernel larger than padded input"),
    (dict(kernel_size=2, stride=0), ValueError, "stride"),
    (dict(kernel_size=2, padding="same"), ValueError, "padding"),
    (dict(kernel_size=2, dilation=1.0), TypeError, "dilation"),
    (dict(kernel_size=(2, 2, 2, 2)), ValueError, "1 to 3 spatial dims"),
    (dict(kernel_size=(2,)), ValueError, "x must have shape"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_UNFOLD)
def test_unfold_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        F.unfold(np.ones((1, 2, 5, 5)), **kwargs)


def test_fold_bad_arguments():
    cols = np.ones((1, 12, 16))
    with pytest.raises(ValueError, match="multiple of prod\\(kernel_size\\) = 9"):
        F.fold(cols, (5, 5), 3)
    with pytest.raises(ValueError, match="number of blocks"):
        F.fold(cols, (6, 5), 2)
    with pytest.raises(ValueError, match="cols must have shape"):
        F.fold(np.ones((1, 1, 12, 16)), (5, 5), 2)
    with pytest.raises(TypeError, match="cols must have dtype"):
        F.fold(cols.astype(int), (5, 5), 2)
    with pytest.raises(ValueError, match="output_size"):
        F.fold(cols, (5, -5), 2)


def test_fold_and_transposed_conv_do_not_depend_on_the_thread_count(rng):
    """Overlapping adds happen within one plane (fold) or in gather form (conv_transpose)."""
    import numba

    cols = rng.standard_normal((3, 4 * 9, 36))
    x = rng.standard_normal((3, 4, 5, 6))
    w = rng.standard_normal((4, 2, 3, 3))
    runs = []
    for threads in (1, 2):
        numba.set_num_threads(threads)
        try:
            runs.append([
                F.fold(cols, (6, 6), 3, 1, 1, 1),
                F.conv_transpose2d(x, w, stride=2, padding=1),
                F.conv_transpose2d_input_grad(x.shape, w, np.ones((3, 2, 9, 11)), stride=2,
                                              padding=1),
            ])  # fmt: skip
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for one, two in zip(*runs, strict=True):
        np.testing.assert_array_equal(one, two)
