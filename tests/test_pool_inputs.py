"""Every pooling function with every kind of input: dtypes, array-likes, read-only, untouched."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import numconv.functional as F

# (forward name, forward args after x, backward extra args before the shared ones)
OPS = [
    ("max_pool2d", (3, 2, 1)),
    ("min_pool2d", (3, 2, 1)),
    ("avg_pool2d", (3, 2, 1)),
    ("lp_pool2d", (2, 3, 2)),
    ("adaptive_avg_pool2d", ((3, 4),)),
    ("adaptive_avg_pool2d", (1,)),  # the global-mean kernels
    ("adaptive_max_pool2d", ((3, 4),)),
]


def _input(rng, shape=(2, 3, 9, 8)):
    return rng.uniform(0.5, 2.0, shape)  # positive: LP pooling defined everywhere


@pytest.mark.parametrize(("name", "args"), OPS)
def test_float16_computes_in_float32(rng, name, args):
    x = _input(rng).astype(np.float16)
    forward, backward = getattr(F, name), getattr(F, f"{name}_backward")
    y = forward(x, *args)
    assert y.dtype == np.float16
    np.testing.assert_allclose(y, forward(x.astype(np.float32), *args), rtol=1e-3)
    gy = np.ones_like(y)
    gx = backward(gy, x, *args)
    assert gx.dtype == np.float16 and gx.shape == x.shape
    np.testing.assert_allclose(gx, backward(gy.astype(np.float32), x.astype(np.float32), *args),
                               rtol=2e-3)  # fmt: skip


@pytest.mark.parametrize(("name", "args"), OPS)
def test_array_likes_read_only_and_untouched(rng, name, args):
    x = _input(rng)
    forward, backward = getattr(F, name), getattr(F, f"{name}_backward")
    expected = forward(x, *args)
    np.testing.assert_array_equal(forward(x.tolist(), *args), expected)
    np.testing.assert_array_equal(forward(np.asfortranarray(x), *args), expected)
    np.testing.assert_array_equal(forward(x[..., ::-1].copy()[..., ::-1], *args), expected)
    gy = rng.standard_normal(expected.shape)
    saved_x, saved_gy = x.copy(), gy.copy()
    x.flags.writeable = False
    gy.flags.writeable = False
    np.testing.assert_array_equal(forward(x, *args), expected)
    gx = backward(gy, x, *args)
    np.testing.assert_array_equal(backward(gy.tolist(), x.tolist(), *args), gx)
    np.testing.assert_array_equal(x, saved_x)
    np.testing.assert_array_equal(gy, saved_gy)


@pytest.mark.parametrize(("name", "args"), OPS)
def test_unbatched_and_empty_batch(rng, name, args):
    x = _input(rng)
    forward, backward = getattr(F, name), getattr(F, f"{name}_backward")
    np.testing.assert_array_equal(forward(x[0], *args), forward(x, *args)[0])
    empty = np.zeros((0, *x.shape[1:]))
    y = forward(empty, *args)
    assert y.shape[0] == 0
    assert backward(np.zeros(y.shape), empty, *args).shape == empty.shape


def test_mixed_dtypes_promote(rng):
    x = _input(rng).astype(np.float32)
    y = F.avg_pool2d(x, 2)
    gx = F.avg_pool2d_backward(y.astype(np.float64), x, 2)
    assert gx.dtype == np.float64


def test_unpool_inputs(rng):
    x = _input(rng)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    up = F.max_unpool2d(y, idx, 2)
    np.testing.assert_array_equal(F.max_unpool2d(y.tolist(), idx.tolist(), 2), up)
    np.testing.assert_array_equal(F.max_unpool2d(y[0], idx[0], 2), up[0])
    up16 = F.max_unpool2d(y.astype(np.float16), idx.astype(np.int32), 2)
    assert up16.dtype == np.float16
    np.testing.assert_allclose(up16, up, rtol=1e-3)


@pytest.mark.parametrize(
    ("valid", "invalid", "error"),
    [
        (lambda x: F.avg_pool2d(x, 2), lambda x: F.avg_pool2d(x, True), TypeError),
        (lambda x: F.avg_pool2d(x, (2, 2)), lambda x: F.avg_pool2d(x, (2, True)), TypeError),
        (
            lambda x: F.max_pool2d(x, 2, ceil_mode=True),
            lambda x: F.max_pool2d(x, 2, ceil_mode=1),
            TypeError,
        ),
        (
            lambda x: F.adaptive_avg_pool2d(x, (1, 1)),
            lambda x: F.adaptive_avg_pool2d(x, (True, 1)),
            ValueError,
        ),
        (lambda x: F.avg_pool2d(x, 2), lambda x: F.avg_pool2d(x, 2.0), TypeError),
    ],
)
def test_cached_plans_never_admit_equal_but_invalid_arguments(rng, valid, invalid, error):
    # Plans are memoised per argument values; True == 1 and 2.0 == 2 in Python,
    # so the cache key must carry types or a valid call would let these through.
    x = _input(rng, (1, 2, 6, 6))
    valid(x)
    with pytest.raises(error):
        invalid(x)


def test_plans_accept_lists_and_numpy_ints_as_ints(rng):
    x = _input(rng, (1, 2, 6, 6))
    expected = F.avg_pool2d(x, (2, 3))
    np.testing.assert_array_equal(F.avg_pool2d(x, [2, 3]), expected)
    np.testing.assert_array_equal(F.avg_pool2d(x, (np.int64(2), np.int32(3))), expected)


def test_cached_plans_tell_tuple_subclasses_apart_by_their_items(rng):
    # A tuple subclass takes the type-tagged path, which must still see a bool item.
    size = collections.namedtuple("size", "h w")
    x = _input(rng, (1, 2, 6, 6))
    F.adaptive_avg_pool2d(x, size(1, 1))
    with pytest.raises(ValueError):
        F.adaptive_avg_pool2d(x, size(True, 1))
