"""The thread crews that run the BLAS-family algorithms' parts (numconv._workers)."""

import multiprocessing
import sys
import threading
import time
import types

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import numconv.functional as F
from numconv import _workers


@pytest.mark.parametrize("failing", [0, 1])
def test_run_parts_raises_a_part_error_after_every_part_finished(failing):
    """The calling thread runs part 0, a worker part 1; either failing reaches the caller."""
    finished = []

    def task(part):
        if part == failing:
            raise RuntimeError(f"part {part}")
        time.sleep(0.05)
        finished.append(part)
        return part

    with pytest.raises(RuntimeError, match=f"part {failing}"):
        _workers.run_parts(task, [0, 1])
    assert finished == [1 - failing]  # the other part ran to its end
    assert _workers.run_parts(lambda part: part * 2, [0, 1, 2]) == [0, 2, 4]


def test_the_first_error_in_part_order_wins():
    def task(part):
        time.sleep(0.02 * (3 - part))  # the last part fails first
        if part:
            raise ValueError(f"part {part}")

    with pytest.raises(ValueError, match="part 1"):
        _workers.run_parts(task, [0, 1, 2])


def test_parts_run_on_distinct_threads_and_the_caller_runs_the_first():
    threads = _workers.run_parts(lambda part: threading.get_ident(), [0, 1, 2])
    assert threads[0] == threading.get_ident()
    assert len(set(threads)) == 3


def test_concurrent_calls_never_share_a_worker():
    """Python threads calling at once get crews of their own: no worker runs two parts at once."""
    running, overlaps, lock = set(), [], threading.Lock()

    def task(part):
        me = threading.get_ident()
        with lock:
            if me in running:
                overlaps.append(me)
            running.add(me)
        time.sleep(0.01)
        with lock:
            running.discard(me)
        return part * 10

    results = {}

    def caller(index):
        results[index] = [_workers.run_parts(task, [index, index + 1]) for _ in range(5)]

    callers = [threading.Thread(target=caller, args=(i,)) for i in range(4)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join(timeout=60)
    assert not overlaps
    assert results == {i: [[10 * i, 10 * i + 10]] * 5 for i in range(4)}


def test_a_part_may_run_parts_itself():
    def outer(part):
        return sum(_workers.run_parts(lambda inner: part * inner, [1, 2]))

    assert _workers.run_parts(outer, [1, 10]) == [3, 30]


def _blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_blas_runs_single_threaded_in_the_parts_and_is_restored_after():
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        inside = _workers.run_parts(lambda part: _blas_threads(), [0, 1])
        assert inside == [[1] * len(before)] * 2
        assert _blas_threads() == before
        with pytest.raises(RuntimeError):
            _workers.run_parts(_raise_runtime, [0, 1])
        assert _blas_threads() == before


def test_parts_without_blas_leave_its_threads_alone():
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        inside = _workers.run_parts(lambda part: _blas_threads(), [0, 1], blas=False)
        assert inside == [before] * 2
        assert _blas_threads() == before


def _raise_runtime(part):
    raise RuntimeError(part)


def _convolve_in_child(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 8, 12, 12)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    return float(F.conv2d(x, w, padding=1).sum())


def test_a_forked_child_runs_parts_on_crews_of_its_own():
    """The parent's crews are threads the child does not have: using them would hang.

    The child's convolution takes the Winograd path (serial kernels on
    ``run_parts``). Parallel Numba kernels are not tried in the child: with
    GNU OpenMP, Numba terminates a forked child that runs one after its
    parent did, whatever numconv does (the README says to use ``spawn``).
    """
    expected = _convolve_in_child(0)  # the parent now holds idle crews
    _workers.run_parts(lambda part: part, [0, 1])
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        assert pool.apply_async(_convolve_in_child, (0,)).get(timeout=120) == expected
        assert pool.apply_async(_workers.run_parts, (abs, [-1, -2])).get(timeout=60) == [1, 2]


def test_blas_loaded_after_the_first_call_is_limited_too(monkeypatch):
    """The libraries are searched again once an import has happened since the last search."""
    searches = []

    class _Library:
        def __init__(self):
            self.threads = 2

        def get_num_threads(self):
            return self.threads

        def set_num_threads(self, threads):
            self.threads = threads

    libraries = [_Library()]

    class _Controller:
        def select(self, user_api):
            searches.append(user_api)
            return types.SimpleNamespace(lib_controllers=list(libraries))

    monkeypatch.setattr(_workers, "ThreadpoolController", _Controller)
    monkeypatch.setattr(_workers, "_modules_at_search", -1)
    _workers.run_parts(lambda part: None, [0, 1])
    _workers.run_parts(lambda part: None, [0, 1])
    assert searches == ["blas"]  # no import in between: found once
    late = _Library()
    libraries.append(late)
    monkeypatch.setitem(sys.modules, "numconv_test_late_blas", types.ModuleType("late"))
    seen = _workers.run_parts(lambda part: late.get_num_threads(), [0, 1])
    assert searches == ["blas", "blas"]
    assert seen == [1, 1] and late.threads == 2
