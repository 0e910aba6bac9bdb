"""Scratch kept between calls (numconv._workspace): reuse, threads, and callers' hygiene.

The hygiene tests are the ones that matter for results: a caller must not
rely on what a slot held before (the contents are poisoned with NaN here) and
must not hand a slot's memory back to the user (a second call must leave the
first call's result alone).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from helpers import assert_close

import numconv.functional as F
from numconv import _dispatch, _workspace


def test_a_slot_is_reused_and_grows_to_the_largest_request():
    _workspace.release()
    first = _workspace.scratch("test.slot", (10, 7), np.float32)
    assert first.shape == (10, 7) and first.dtype == np.float32 and first.flags.c_contiguous
    assert first.ctypes.data % 64 == 0
    smaller = _workspace.scratch("test.slot", (3,), np.float64)
    assert np.shares_memory(first, smaller)
    larger = _workspace.scratch("test.slot", (100, 100), np.float32)
    assert not np.shares_memory(first, larger)
    assert np.shares_memory(larger, _workspace.scratch("test.slot", (10, 7), np.float32))
    other = _workspace.scratch("test.other", (10, 7), np.float32)
    assert not np.shares_memory(larger, other)
    _workspace.release()


def test_zeroed_scratch_is_zero_after_a_dirty_use():
    _workspace.scratch("test.zeroed", (64,), np.float64).fill(np.nan)
    assert not _workspace.zeroed("test.zeroed", (64,), np.float64).any()


def test_threads_get_their_own_slots():
    mine = _workspace.scratch("test.thread", (1000,), np.float64)
    theirs = []
    worker = threading.Thread(
        target=lambda: theirs.append(_workspace.scratch("test.thread", (1000,), np.float64))
    )
    worker.start()
    worker.join()
    assert not np.shares_memory(mine, theirs[0])


def test_release_drops_the_slots_of_every_thread():
    before = _workspace.scratch("test.release", (1000,), np.float64)
    seen = []
    barrier = threading.Event()
    done = threading.Event()

    def worker():
        seen.append(_workspace.scratch("test.release", (1000,), np.float64))
        barrier.set()
        done.wait()
        seen.append(_workspace.scratch("test.release", (1000,), np.float64))

    thread = threading.Thread(target=worker)
    thread.start()
    barrier.wait()
    _workspace.release()  # from this thread, while the worker holds a slot
    done.set()
    thread.join()
    assert not np.shares_memory(before, _workspace.scratch("test.release", (1000,), np.float64))
    assert not np.shares_memory(seen[0], seen[1])


# The 2-d algorithms that take scratch slots (the 3-d Winograd's layers are below).
SCRATCH_USERS = ["winograd", "winograd4", "gemm", "planar_gemm"]

# Shapes that reach every scratch user: Winograd with tiles overhanging the
# output (odd sizes), with whole tiles, with a padding frame, in reflect mode,
# with groups; the split of Winograd's work by position (one image of 2×2),
# and one image, where the GEMMs' input gradients add per-part partial sums.
LAYERS = [
    ((2, 4, 9, 11), 6, dict(padding=1)),
    ((2, 4, 8, 8), 6, dict(padding=1)),
    ((1, 6, 7, 5), 4, dict(padding=(2, 1), padding_mode="reflect")),
    ((2, 8, 10, 9), 8, dict(padding=1, groups=4)),
    ((1, 3, 4, 4), 5, dict(padding=3)),
]

# The 3-d Winograd's slots (padded sources in both layouts, tiles, products,
# cut outputs): tiles overhanging the output, whole tiles with depth padding
# at both ends, and depth padding beyond the window that crops the gradient.
LAYERS_3D = [
    ((2, 3, 4, 9, 11), 4, dict(padding=1)),
    ((1, 4, 3, 8, 8), 2, dict(padding=(1, 1, 1))),
    ((2, 2, 5, 6, 7), 3, dict(padding=(3, 0, 1))),
]

CASES = [
    *((algorithm, *layer) for algorithm in SCRATCH_USERS for layer in LAYERS),
    *(("winograd3d", *layer) for layer in LAYERS_3D),
]


def _ops(x, w, b, gy, kw):
    nd = x.ndim - 2
    return (
        getattr(F, f"conv{nd}d")(x, w, b, **kw),
        getattr(F, f"conv{nd}d_input_grad")(x.shape, w, gy, **kw),
        getattr(F, f"conv{nd}d_weight_grad")(x, w.shape, gy, **kw),
    )


def _arrays(rng, shape, c_out, kw):
    x = rng.standard_normal(shape)
    kernel = (3,) * (len(shape) - 2)
    w = rng.standard_normal((c_out, shape[1] // kw.get("groups", 1), *kernel))
    b = rng.standard_normal(c_out)
    y = getattr(F, f"conv{len(kernel)}d")(x, w, b, **kw)
    return x, w, b, rng.standard_normal(y.shape)


@pytest.mark.parametrize("algorithm, shape, c_out, kw", CASES)
def test_results_do_not_depend_on_what_scratch_held(monkeypatch, rng, algorithm, shape, c_out,
                                                    kw):  # fmt: skip
    """Every slot handed out full of NaN: the results are unchanged."""
    x, w, b, gy = _arrays(rng, shape, c_out, kw)
    with _dispatch.forced("direct"):
        expected = _ops(x, w, b, gy, kw)
    scratch = _workspace.scratch

    def poisoned(name, shape, dtype):
        array = scratch(name, shape, dtype)
        array.fill(np.nan)
        return array

    monkeypatch.setattr(_workspace, "scratch", poisoned)
    with _dispatch.forced(algorithm):
        got = _ops(x, w, b, gy, kw)
    for g, e in zip(got, expected, strict=True):
        assert_close(g, e, np.float64)


@pytest.mark.parametrize("algorithm, shape, c_out, kw", CASES)
def test_results_are_not_scratch(rng, algorithm, shape, c_out, kw):
    """A second call on other data leaves the first call's results as they were."""
    first = _arrays(rng, shape, c_out, kw)
    second = _arrays(rng, shape, c_out, kw)
    with _dispatch.forced(algorithm):
        results = _ops(*first, kw)
        kept = [r.copy() for r in results]
        _ops(*second, kw)
    for r, k in zip(results, kept, strict=True):
        np.testing.assert_array_equal(r, k)


def test_the_public_release_frees_the_calling_threads_slots():
    import numconv

    before = _workspace.scratch("test.public", (1000,), np.float64)
    numconv.release_scratch()
    assert not np.shares_memory(before, _workspace.scratch("test.public", (1000,), np.float64))
