"""What every benchmark module shares: the case list and PyTorch, when present.

The cases come from :mod:`numconv.bench.suite`, the one definition that the
``python -m numconv bench`` command uses too. ``NUMCONV_BENCH_SUITE=quick``
swaps in the small shapes, which CI uses to check that every benchmark runs.
"""

from __future__ import annotations

import os

THREADS = 2


def quick() -> bool:
    return os.environ.get("NUMCONV_BENCH_SUITE", "performance") == "quick"


def cases(suite_name: str) -> dict:
    """The named cases of a suite of :data:`numconv.bench.suite.SUITES` (small ones if quick)."""
    from numconv.bench.suite import suite_cases

    return {case.name: case for case in suite_cases(suite_name, quick())}


def torch_or_skip():
    """PyTorch with THREADS threads; asv skips a benchmark whose setup raises this."""
    from numconv.bench.runner import optional_torch

    torch = optional_torch(THREADS)
    if torch is None:
        raise NotImplementedError("PyTorch is not installed: no ratio to track")
    return torch
