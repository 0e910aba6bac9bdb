"""Run one call's parts on several threads: the caller runs the first, workers the rest.

The BLAS-family algorithms (GEMM, planar GEMM, pointwise, Winograd, tap sums,
…) split their work into one part per Numba thread and run each part's
serial, GIL-free kernels and single-threaded BLAS calls on its own thread.
:func:`run_parts` is that split's engine.

Why not ``concurrent.futures.ThreadPoolExecutor``: an empty two-part call
cost 60-75 µs through it (a future, a work queue and a condition per part)
and 30-55 µs here, where each worker waits on a plain lock and signals
another when its part is done (``docs/performance.md`` §28). Small
convolutions run in well under a millisecond, so this is paid for every call.

Crews: the workers of one call form a crew, taken from an idle list for the
call and put back after it. A call made while every crew of that size is busy
(another Python thread convolving at the same time) gets a new crew, so
parts never wait for another call's parts and a worker never runs two tasks
at once (its thread-local scratch, :mod:`numconv._workspace`, stays its own).
After ``os.fork`` the child forgets the parent's crews, whose threads it
does not have.

BLAS is held to one thread for the duration of the call (every part calls it
from its own thread; a threaded BLAS would fight Numba's and our threads for
two cores) and put back to what it was afterwards.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import threading

import numba
from threadpoolctl import ThreadpoolController


def split_range(total: int, count: int, align: int = 1) -> list[tuple[int, int]]:
    """``count`` contiguous row ranges covering ``[0, total)``, cut at multiples of ``align``."""
    units = -(-total // align)
    count = max(1, min(count, units))
    cuts = [min(total, (i * units // count) * align) for i in range(count + 1)]
    return [(lo, hi) for lo, hi in itertools.pairwise(cuts) if hi > lo]


def thread_parts(total: int) -> list[tuple[int, int]]:
    """:func:`split_range` of ``[0, total)`` into one part per Numba thread."""
    return split_range(total, numba.get_num_threads())


def run_parts(task, parts, blas: bool = True) -> list:
    """``[task(part) for part in parts]``, one thread per part, BLAS single-threaded.

    The calling thread runs ``parts[0]`` itself. Every part runs to its end
    before anything is raised; then the error of the first part (in part
    order) that failed is raised. ``blas=False`` declares that the task
    makes no BLAS calls, which skips holding BLAS to one thread (2.5 µs a
    call, with one library).
    """
    with _single_threaded_blas() if blas else contextlib.nullcontext():
        if len(parts) == 1:
            return [task(parts[0])]
        crew = _take_crew(len(parts) - 1)
        for worker, part in zip(crew, parts[1:], strict=True):
            worker.begin(task, part)
        try:
            outcomes = [(task(parts[0]), None)]
        except BaseException as error:  # re-raised below, once the workers are done
            outcomes = [(None, error)]
        # An interrupt while waiting here leaves the crew out of the idle list.
        outcomes += [worker.end() for worker in crew]
        _put_back(crew)
    for _, error in outcomes:
        if error is not None:
            raise error
    return [value for value, _ in outcomes]


class _Worker:
    """A daemon thread that runs one task at a time, started and awaited through two locks."""

    def __init__(self):
        self._go = threading.Lock()
        self._go.acquire()
        self._done = threading.Lock()
        self._done.acquire()
        self._job = None
        self._outcome = None
        threading.Thread(target=self._serve, name="numconv-worker", daemon=True).start()

    def _serve(self):
        while True:
            self._go.acquire()
            task, part = self._job
            self._job = None  # hold no reference to the call's arrays once it is done
            try:
                self._outcome = (task(part), None)
            except BaseException as error:
                self._outcome = (None, error)
            del task, part
            self._done.release()

    def begin(self, task, part) -> None:
        self._job = (task, part)
        self._go.release()

    def end(self) -> tuple:
        """Wait for the task; its ``(value, None)`` or ``(None, error)``."""
        self._done.acquire()
        outcome, self._outcome = self._outcome, None
        return outcome


_idle: dict[int, list[list[_Worker]]] = {}
_idle_lock = threading.Lock()


def _take_crew(size: int) -> list[_Worker]:
    with _idle_lock:
        crews = _idle.get(size)
        if crews:
            return crews.pop()
    return [_Worker() for _ in range(size)]


def _put_back(crew: list[_Worker]) -> None:
    with _idle_lock:
        _idle.setdefault(len(crew), []).append(crew)


def _forget_crews() -> None:
    """After a fork: the parent's crews are not in the child."""
    global _idle_lock
    _idle.clear()
    _idle_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_crews)


# BLAS at one thread for the call, each library put back to its own count after.
# Calling the libraries' controllers directly costs 2.5 µs a call against 8 for
# threadpoolctl's ``limit`` context, which re-reads every library's info.
#
# Two overlapping calls from different Python threads save and restore as the
# ``limit`` context did: the first to leave lifts the limit while the other
# still runs (its BLAS calls may then use more threads; results are the same).
# Counting the calls inside and restoring only when the last one leaves was
# tried and dropped: the OpenBLAS that NumPy ships (0.3.31, pthreads) ignores
# ``openblas_set_num_threads`` from any thread but the main one, so when the
# last to leave was another thread, BLAS stayed at one thread for good.
#
# Finding the libraries takes 1-4 ms, so it is not done per call; but a BLAS
# can be loaded after the first call (a SciPy or PyTorch import) and must be
# limited too. Libraries arrive with imports, so the search is redone only
# when the number of imported modules has changed since the last one.
_blas_libraries: list = []
_modules_at_search = -1


def _blas_controllers() -> list:
    global _blas_libraries, _modules_at_search
    modules = len(sys.modules)
    if modules != _modules_at_search:
        _blas_libraries = ThreadpoolController().select(user_api="blas").lib_controllers
        _modules_at_search = modules
    return _blas_libraries


@contextlib.contextmanager
def _single_threaded_blas():
    saved = [(lib, lib.get_num_threads()) for lib in _blas_controllers()]
    for lib, threads in saved:
        if threads != 1:
            lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, threads in saved:
            if threads != 1:
                lib.set_num_threads(threads)
