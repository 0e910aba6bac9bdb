"""The register blocks and the vector intrinsics under them, against NumPy sums."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from numba import njit

from numconv.kernels import simd
from numconv.kernels.register_blocks import TILE_VECTORS, sum_outputs


@njit
def _sum_outputs(source, offsets, weights, bias, out, start, first, outputs, length):
    spill = np.full((out.shape[0], TILE_VECTORS * simd.lanes(out)), np.nan, dtype=out.dtype)
    sum_outputs(source, offsets, weights, bias, out, start, spill, first, outputs, length)


def _lanes(dtype) -> int:
    return simd.VECTOR_BYTES // np.dtype(dtype).itemsize


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("outputs", [1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 19])
@pytest.mark.parametrize("length", [1, 17, 64, 100])
def test_sum_outputs_matches_numpy(dtype, outputs, length):
    """Every block size (8 × 3 with 32 registers, 4 × 3 with 16, then 4, 2, 1 × 4, and their
    mixes) sums its rows and leaves the others alone.

    Lengths below, at and past one pass; the last pass goes through the spill rows.
    """
    rng = np.random.default_rng(outputs * 1000 + length)
    taps, tile = 11, TILE_VECTORS * _lanes(dtype)
    source = rng.standard_normal(500 + tile).astype(dtype)
    offsets = rng.integers(0, 500 - length, taps).astype(np.int64)
    weights = rng.standard_normal((taps, outputs)).astype(dtype)
    first = 3
    bias = rng.standard_normal(first + outputs + 2).astype(dtype)
    start = 5
    out = np.full((first + outputs + 2, start + length + 3), 7.0, dtype=dtype)
    _sum_outputs(source, offsets, weights, bias, out, start, first, outputs, length)

    runs = np.stack([source[o : o + length] for o in offsets]).astype(np.float64)
    expected = bias[first : first + outputs, None] + weights.astype(np.float64).T @ runs
    tolerance = 1e-5 if dtype == np.float32 else 1e-13
    rows = out[first : first + outputs]
    np.testing.assert_allclose(rows[:, start : start + length], expected, rtol=tolerance,
                               atol=tolerance)  # fmt: skip
    # Exactly those positions: not one before or after, nor in other rows.
    assert (rows[:, :start] == 7).all() and (rows[:, start + length :] == 7).all()
    assert (out[:first] == 7).all() and (out[first + outputs :] == 7).all()


def test_sum_outputs_sums_in_tap_order():
    """One rounding per tap, in tap order: the result of a sequential float32 FMA chain."""
    source = np.array([1e8, 1.0, -1e8, 0.0] * 40, dtype=np.float32)
    offsets = np.array([0, 1, 2], dtype=np.int64)  # runs start at 1e8, 1, -1e8
    weights = np.ones((3, 1), dtype=np.float32)
    out = np.zeros((1, 64), dtype=np.float32)
    _sum_outputs(source, offsets, weights, np.zeros(1, np.float32), out, 0, 0, 1, 1)
    assert out[0, 0] == np.float32(np.float32(1e8) + np.float32(1.0)) - np.float32(1e8)


@njit
def _vector_roundtrip(a, b, scale):
    acc = simd.splat(a.dtype.type(1))
    acc = simd.fma(acc, simd.load(a, 1), scale)
    simd.store(b, 2, acc)
    return simd.lanes(a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vector_intrinsics(dtype):
    lanes = _lanes(dtype)
    a = np.arange(lanes + 2, dtype=dtype)
    b = np.zeros(lanes + 4, dtype=dtype)
    assert _vector_roundtrip(a, b, dtype(3)) == lanes
    expected = np.zeros_like(b)
    expected[2 : 2 + lanes] = 1 + 3 * a[1 : 1 + lanes]
    np.testing.assert_array_equal(b, expected)


@njit
def _load_first(a):
    return simd.load(a, 0)


@njit
def _fma_mixed(a, s):
    return simd.fma(simd.load(a, 0), simd.load(a, 0), s)


@njit
def _copy_flat(a, b, index):
    simd.store(b, index, simd.load(a, index))


def test_vector_intrinsics_address_c_contiguous_arrays_flat():
    """A 2-d array is addressed by flat index, across its rows."""
    lanes = _lanes(np.float32)
    a = np.arange(4 * lanes, dtype=np.float32).reshape(4, lanes)
    b = np.zeros_like(a)
    _copy_flat(a, b, lanes // 2)  # half of row 0, half of row 1
    expected = np.zeros(4 * lanes, np.float32)
    expected[lanes // 2 : lanes // 2 + lanes] = np.arange(lanes // 2, lanes // 2 + lanes)
    np.testing.assert_array_equal(b.ravel(), expected)


def test_vector_intrinsics_reject_what_they_cannot_address():
    """Only C-contiguous float arrays, and operands of one dtype: a compile-time error."""
    errors = (TypeError, numba.core.errors.TypingError)
    with pytest.raises(errors, match="C-contiguous float array"):
        _load_first(np.zeros(32, np.float32)[::2])
    with pytest.raises(errors, match="C-contiguous float array"):
        _load_first(np.zeros(32, np.int32))
    with pytest.raises(errors, match="one dtype"):
        _fma_mixed(np.zeros(16, np.float32), 1.0)


@njit
def _masked_roundtrip(a, b, index, lo, hi, at, count):
    simd.masked_store(b, at, simd.masked_load(a, index, lo, hi), count, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "index, lo, hi, count",
    [(0, 0, 100, 100), (-3, 3, 10, 12), (5, 0, 4, 2), (-40, 40, 45, 100), (44, -5, 100, 0)],
)
def test_masked_load_and_store_touch_only_their_lanes(dtype, index, lo, hi, count):
    """Lanes out of range load zeros, unread (so ``index`` may lie before the array and
    the vector past its end), and only the first ``count`` lanes are stored."""
    lanes = _lanes(dtype)
    a = np.arange(1, 61, dtype=dtype)
    b = np.full(40, -1.0, dtype=dtype)
    at = 40 - lanes  # the vector ends at the array's end
    _masked_roundtrip(a, b, index, lo, hi, at, count)
    loaded = np.array(
        [a[index + j] if lo <= j < hi else 0 for j in range(lanes)], dtype=dtype
    )  # fmt: skip
    expected = np.full(40, -1.0, dtype=dtype)
    stored = min(count, lanes)
    expected[at : at + stored] = loaded[:stored]
    np.testing.assert_array_equal(b, expected)


@njit
def _store_counted(a, b, at, count, step_two):
    v = simd.load(a, 0)
    if step_two:
        simd.masked_store(b, at, v, count, 2)
    else:
        simd.masked_store(b, at, v, count, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("step", [1, 2])
@pytest.mark.parametrize("count", range(-1, 19))
def test_masked_store_writes_exactly_its_lanes_at_every_count(dtype, step, count):
    """Every count from none to more than a vector, at both steps: lanes ``j < count``
    with ``j % step == 0`` written, nothing else (on AVX2 these are plain stores of
    sub-vectors chosen by the count, not a masked store)."""
    lanes = _lanes(dtype)
    a = np.arange(1, lanes + 1, dtype=dtype)
    b = np.full(3 * lanes, -1.0, dtype=dtype)
    _store_counted(a, b, lanes, count, step == 2)
    expected = np.full(3 * lanes, -1.0, dtype=dtype)
    written = np.arange(lanes)
    written = written[(written < count) & (written % step == 0)]
    expected[lanes + written] = a[written]
    np.testing.assert_array_equal(b, expected)


@njit
def _strided_copies(a, b, high_count):
    lanes = simd.lanes(a)
    evens = simd.even_lanes(simd.load(a, 0), simd.load(a, lanes))
    simd.store(b, 0, evens)
    simd.masked_store(b, lanes, simd.spread_low(evens), 2 * lanes, 2)
    simd.masked_store(b, 2 * lanes, simd.spread_high(evens), high_count, 2)
    simd.masked_store(b, 3 * lanes, simd.zero(b), 3, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_even_lanes_and_spreads_are_stride_two_gathers_and_scatters(dtype):
    """even_lanes picks every other value; the spreads put them back every other lane,
    and a step-2 store leaves the odd positions as they were."""
    lanes = _lanes(dtype)
    a = np.arange(1, 2 * lanes + 1, dtype=dtype)
    b = np.full(4 * lanes, -1.0, dtype=dtype)
    high_count = min(5, lanes - 1)  # an odd count: the last value has no odd neighbour
    _strided_copies(a, b, high_count)
    expected = np.full(4 * lanes, -1.0, dtype=dtype)
    evens = a[0::2]
    expected[:lanes] = evens
    expected[lanes : 2 * lanes : 2] = evens[: lanes // 2]
    high = (high_count + 1) // 2
    expected[2 * lanes : 2 * lanes + high_count : 2] = evens[lanes // 2 : lanes // 2 + high]
    expected[3 * lanes : 3 * lanes + 3] = 0
    np.testing.assert_array_equal(b, expected)


@njit
def _store_with_step(b, step):
    simd.masked_store(b, 0, simd.zero(b), 4, step)


def test_masked_store_takes_only_literal_steps_one_and_two():
    errors = (TypeError, numba.core.errors.TypingError)
    with pytest.raises(errors, match="literal 1 or 2"):
        _store_with_step(np.zeros(32, np.float32), 3)


@njit
def _masked_with_narrow_indices(a, b):
    lo, hi, count = np.int32(1), np.int32(3), np.int16(2)
    simd.masked_store(b, 0, simd.masked_load(a, 0, lo, hi), count, 1)


def test_masked_intrinsics_take_any_integer_type():
    a = np.arange(1, 33, dtype=np.float32)
    b = np.full(32, -1.0, dtype=np.float32)
    _masked_with_narrow_indices(a, b)
    np.testing.assert_array_equal(b[:3], [0, 2, -1])


@njit
def _interleaved_roundtrip(a, b, index, field):
    fields = simd.load_interleaved(a, index, 9)
    # Reverse the fields, so that a mix-up of field and lane order shows.
    simd.store_interleaved(b, index, fields[::-1])
    simd.store(field, 0, fields[2])


@njit
def _three_fields(a, b):
    first, second, third = simd.load_interleaved(a, 0, 3)
    simd.store_interleaved(b, 0, (third, first, second))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_interleaved_loads_and_stores_move_whole_records(dtype):
    """``lanes`` records of 9 values: load_interleaved gives field t of every record as one
    vector, store_interleaved writes them back record by record, touching nothing else."""
    lanes = _lanes(dtype)
    a = np.arange(1, 9 * lanes + 3, dtype=dtype)
    b = np.full_like(a, -1.0)
    field = np.empty(lanes, dtype)
    _interleaved_roundtrip(a, b, 2, field)
    records = a[2 : 2 + 9 * lanes].reshape(lanes, 9)
    np.testing.assert_array_equal(field, records[:, 2])
    expected = np.full_like(a, -1.0)
    expected[2 : 2 + 9 * lanes] = records[:, ::-1].ravel()
    np.testing.assert_array_equal(b, expected)
    c = np.arange(3 * lanes, dtype=dtype)
    d = np.zeros_like(c)
    _three_fields(c, d)
    np.testing.assert_array_equal(d.reshape(lanes, 3), c.reshape(lanes, 3)[:, [2, 0, 1]])


@njit
def _interleaved_count(a, count):
    return simd.load_interleaved(a, 0, count)


def test_interleaved_load_takes_a_literal_field_count():
    errors = (TypeError, numba.core.errors.TypingError)
    with pytest.raises(errors, match="literal"):
        _interleaved_count(np.zeros(160, np.float32), np.int64(9) + np.int64(0) * 0)
