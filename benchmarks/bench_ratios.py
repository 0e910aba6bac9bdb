"""numconv's speed ratio against PyTorch (its time over ours), measured in one process.

The dashboard plots these per commit, so it shows where numconv stands against
its anchor, not only against its own past. Above 1: numconv is faster.
"""

from __future__ import annotations

from typing import ClassVar

import numba

from numconv.bench import suite
from numconv.bench.runner import applies, run

from .common import THREADS, cases, torch_or_skip


class _Ratio:
    CASES: ClassVar[dict] = {}
    param_names = ("case", "op")
    timeout = 900
    # One sample per commit; the ratio's own median comes from interleaved repeats.
    number = 1
    repeat = 1

    def setup(self, name, op):
        self.torch = torch_or_skip()
        numba.set_num_threads(THREADS)
        if not applies(self.CASES[name], op):
            raise NotImplementedError

    def track_speed_ratio(self, name, op):
        (row,) = run([self.CASES[name]], ops=(op,), repeats=5, torch=self.torch)
        return row.ratio

    track_speed_ratio.unit = "PyTorch time / numconv time"


class ConvolutionVsTorch(_Ratio):
    CASES = cases(suite.PERFORMANCE_SUITE, suite.QUICK_SUITE)
    params = (list(CASES), ["fwd", "dx", "dw"])


class PoolingVsTorch(_Ratio):
    CASES = cases(suite.POOLING_SUITE, suite.QUICK_POOLING_SUITE)
    params = (list(CASES), ["fwd", "dx"])
