"""Time numconv against PyTorch side by side, in one process, interleaved.

Timings on shared machines drift, so each repetition times numconv and then
PyTorch back to back, and the figures are medians over repetitions; the speed
ratio is PyTorch's median over numconv's.
"""

from __future__ import annotations

import importlib
import math
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

from .ops import OPS, applies, numconv_op, torch_op


def optional_torch(threads: int):
    """PyTorch with ``threads`` threads if it is installed, else None.

    The only place numconv loads PyTorch: the benchmark command compares
    against it when present. Library code (functional, layers, kernels) never
    does; importlib keeps that boundary visible to the repository's checks.
    """
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# How long a library runs on its own before one of its calls is timed: longer
# than the other library's worker threads keep spinning (see _time_settled).
SETTLE_SECONDS = 0.05


def _time_settled(fn, settle: float = SETTLE_SECONDS) -> float:
    """Time one call of ``fn`` made after ``fn`` alone has run for ``settle`` seconds.

    Interleaving is what makes the ratio fair on a noisy machine, but a call
    made right after the other library's pays for that library's idle threads:
    PyTorch's OpenMP workers keep spinning for milliseconds after an operation.
    Measured on res3x3_28's forward, numconv took 19.2 ms right after a PyTorch
    call, 17.2 after a 2 ms pause, 15.7 after 5 ms and 15.0 after 20 ms, while
    PyTorch's time did not move (8.6-8.9 ms). A user calls one library back to
    back, so each timed call follows ``settle`` seconds of that library's own
    calls (at least one).
    """
    start = time.perf_counter()
    fn()
    while time.perf_counter() - start < settle:
        fn()
    return _time(fn)


def gemm_ceiling(size: int = 2048, repeats: int = 3) -> float:
    """float32 GFLOP/s of one BLAS matrix product of ``size``³, best of ``repeats``."""
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    a @ a  # warm-up (thread pool start)
    best = min(_time(lambda: a @ a) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def blas_description() -> str:
    """The BLAS libraries NumPy loaded and the kernels they run, for the report's header.

    The kernel decides the GEMM-based algorithms' speed: OpenBLAS pinned to
    its AVX2 kernel by ``OPENBLAS_CORETYPE=Haswell`` ran a 2048³ float32
    product at 248 GFLOP/s on an AVX-512 machine whose own kernel ran it at
    469 (docs/performance.md §34), so a report says which one it timed.
    """
    from threadpoolctl import threadpool_info

    libraries = [
        f"{info['internal_api']} {info.get('version') or ''} ({info.get('architecture') or '?'})"
        for info in threadpool_info()
        if info["user_api"] == "blas"
    ]
    text = "BLAS " + (", ".join(libraries) if libraries else "not found")
    pinned = os.environ.get("OPENBLAS_CORETYPE")
    if pinned:
        text += f"; OPENBLAS_CORETYPE={pinned} pins OpenBLAS's kernel"
    return text


def _warm_up(fn, calls: int = 10, budget: float = 0.25) -> None:
    """Call ``fn`` until it has run ``calls`` times or for ``budget`` seconds (at least once).

    The first call compiles (Numba) or fills caches. The further calls bring
    the process's allocator to its steady state: glibc serves the first few
    large blocks of a repeated size with fresh mmap'd pages, so page faults
    make them several times slower (PyTorch's max-pool backward: ~7 ms for
    its first ~9 calls in a process, ~1.7 ms after). A user's loop runs in the
    steady state, so the timings should too.
    """
    start = time.perf_counter()
    fn()
    for _ in range(calls - 1):
        if time.perf_counter() - start > budget:
            break
        fn()


@dataclass
class Row:
    case: str
    op: str
    numconv_ms: float
    torch_ms: float | None
    gflops: float | None  # None for memory-bound ops (pooling)

    @property
    def ratio(self) -> float | None:
        return None if self.torch_ms is None else self.torch_ms / self.numconv_ms


def run(cases, ops=OPS, repeats: int = 5, torch=None, progress=None) -> list[Row]:
    """Median times per (case, op) for numconv and, if ``torch`` is given, PyTorch."""
    rows = []
    for case in cases:
        arrays = case.arrays()
        for op in filter(lambda op: applies(case, op), ops):
            if progress:
                progress(f"{case.name} {op}")
            ours = numconv_op(case, op, *arrays)
            theirs = None if torch is None else torch_op(torch, case, op, *arrays)
            _warm_up(ours)
            if theirs:
                _warm_up(theirs)
            t_ours, t_theirs = [], []
            for _ in range(repeats):
                t_ours.append(_time_settled(ours))
                if theirs:
                    t_theirs.append(_time_settled(theirs))
            ms = statistics.median(t_ours) * 1e3
            torch_ms = statistics.median(t_theirs) * 1e3 if theirs else None
            gflops = None if case.flops is None else case.flops / ms / 1e6
            rows.append(Row(case.name, op, ms, torch_ms, gflops))
    return rows


def geomean(values) -> float:
    values = list(values)
    return math.exp(sum(map(math.log, values)) / len(values))


def step_ratios(rows: list[Row]) -> list[float]:
    """Per case timed in every op it has, PyTorch's summed time over numconv's.

    The forward + backward speed ratio of one training step: a convolution
    step runs the forward and both gradients, a pooling step the forward and
    its backward. Cases with a single op, or without PyTorch's times, have none.
    """
    ratios = []
    for case in dict.fromkeys(r.case for r in rows):
        ops = [r for r in rows if r.case == case]
        if len(ops) > 1 and all(r.torch_ms is not None for r in ops):
            ratios.append(sum(r.torch_ms for r in ops) / sum(r.numconv_ms for r in ops))
    return ratios


def format_table(rows: list[Row], ceiling: float) -> str:
    """A Markdown table with one row per (case, op) and geomean rows per op and per step."""
    lines = [
        "| case | op | numconv ms | PyTorch ms | speed ratio | GFLOP/s | % of GEMM |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        torch_ms = "—" if r.torch_ms is None else f"{r.torch_ms:.2f}"
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}"
        rate, share = ("—", "—") if r.gflops is None else (
            f"{r.gflops:.1f}", f"{100 * r.gflops / ceiling:.0f}%"
        )  # fmt: skip
        lines.append(
            f"| {r.case} | {r.op} | {r.numconv_ms:.2f} | {torch_ms} | {ratio} | {rate} | {share} |"
        )
    for op in dict.fromkeys(r.op for r in rows):
        ratios = [r.ratio for r in rows if r.op == op and r.ratio is not None]
        if ratios:
            lines.append(f"| **geomean** | {op} | | | **{geomean(ratios):.2f}** | | |")
    steps = step_ratios(rows)
    if steps:
        lines.append(f"| **geomean** | fwd+bwd | | | **{geomean(steps):.2f}** | | |")
    return "\n".join(lines)


def as_json(rows: list[Row], ceiling: float, threads: int) -> dict:
    return {
        "gemm_ceiling_gflops": ceiling,
        "blas": blas_description(),
        "threads": threads,
        "rows": [{**asdict(r), "ratio": r.ratio} for r in rows],
    }


def progress_to_stderr(message: str) -> None:
    print(f"  ... {message}", file=sys.stderr, flush=True)
