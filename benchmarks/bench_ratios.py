"""numconv's speed ratio against PyTorch (its time over ours), measured in one process.

The dashboard plots these per commit, so it shows where numconv stands against
its anchor, not only against its own past. Above 1: numconv is faster.
"""

from __future__ import annotations

from typing import ClassVar

import numba

from numconv.bench.ops import applies, torch_op
from numconv.bench.runner import run

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
        case = self.CASES[name]
        if not applies(case, op) or torch_op(self.torch, case, op, *case.arrays()) is None:
            raise NotImplementedError  # no such op, or no PyTorch counterpart

    def track_speed_ratio(self, name, op):
        (row,) = run([self.CASES[name]], ops=(op,), repeats=5, torch=self.torch)
        return row.ratio

    track_speed_ratio.unit = "PyTorch time / numconv time"


class ConvolutionVsTorch(_Ratio):
    CASES = cases("performance")
    params = (list(CASES), ["fwd", "dx", "dw"])


class ConvolutionVariantsVsTorch(_Ratio):
    CASES = cases("conv-variants")
    params = (list(CASES), ["fwd", "dx", "dw"])


class PoolingVsTorch(_Ratio):
    CASES = cases("pooling")
    params = (list(CASES), ["fwd", "dx"])


class PoolingVariantsVsTorch(_Ratio):
    """Min pooling against PyTorch's -max_pool(-x); LP and unpool backward via autograd."""

    CASES = cases("pooling-variants")
    params = (list(CASES), ["fwd", "dx"])


class TransposedConvolutionVsTorch(_Ratio):
    CASES = cases("transpose")
    params = (list(CASES), ["fwd", "dx", "dw"])


class UnfoldFoldVsTorch(_Ratio):
    """2-d only: PyTorch has no 3-d unfold or fold."""

    CASES = cases("unfold")
    params = (list(CASES), ["fwd", "dx"])
