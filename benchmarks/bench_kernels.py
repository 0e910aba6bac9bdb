"""Time and peak memory of every public kernel family, over the shared shape suite.

Each class is one family; its parameters are (case, op). ``setup`` builds the
arrays and runs the op once, so Numba's compilation (or cache load) never
lands in a timing.
"""

from __future__ import annotations

from typing import ClassVar

import numba
import numpy as np

import numconv.functional as F
from numconv.bench import suite
from numconv.bench.runner import applies, numconv_op

from .common import THREADS, cases


class _Family:
    """``time_op`` and ``peakmem_op`` over ``CASES`` x ``OPS`` (subclasses set both)."""

    CASES: ClassVar[dict] = {}
    OPS: tuple = ()
    param_names = ("case", "op")
    timeout = 600

    def setup(self, name, op):
        numba.set_num_threads(THREADS)
        case = self.CASES[name]
        if not applies(case, op):
            raise NotImplementedError  # asv: skip this combination
        self.run = self.make(case, op, *case.arrays())
        self.run()  # warm-up: JIT compilation or cache load

    def make(self, case, op, *arrays):
        return numconv_op(case, op, *arrays)

    def time_op(self, name, op):
        self.run()

    def peakmem_op(self, name, op):
        self.run()


class Convolution(_Family):
    """conv1d/2d/3d forward (fwd), input gradient (dx), weight and bias gradients (dw)."""

    CASES = cases(suite.PERFORMANCE_SUITE, suite.QUICK_SUITE)
    OPS = ("fwd", "dx", "dw")
    params = (list(CASES), list(OPS))


class Pooling(_Family):
    """max, average and global average pooling, forward (fwd) and backward (dx)."""

    CASES = cases(suite.POOLING_SUITE, suite.QUICK_POOLING_SUITE)
    OPS = ("fwd", "dx")
    params = (list(CASES), list(OPS))


class TransposedConvolution(_Family):
    """conv_transpose2d forward, input gradient and weight gradient (upsampling shapes)."""

    CASES = cases(suite.TRANSPOSE_SUITE, suite.QUICK_TRANSPOSE_SUITE)
    OPS = ("fwd", "dx", "dw")
    params = (list(CASES), list(OPS))

    def make(self, case, op, x, w, b, gy):
        # The case's convolution maps x -> gy; its transpose maps gy -> x with the same w.
        nd, kw = case.nd, case.kwargs
        forward = getattr(F, f"conv_transpose{nd}d")
        input_grad = getattr(F, f"conv_transpose{nd}d_input_grad")
        weight_grad = getattr(F, f"conv_transpose{nd}d_weight_grad")
        bias = np.zeros(case.in_channels, np.float32)
        size = x.shape[2:]
        if op == "fwd":
            return lambda: forward(gy, w, bias, **kw, output_size=size)
        if op == "dx":
            return lambda: input_grad(gy.shape, w, x, **kw, output_size=size)
        return lambda: weight_grad(gy, w.shape, x, **kw, output_size=size)


class UnfoldFold(_Family):
    """unfold (fwd) and fold, its adjoint (dx), in 2-d and 3-d."""

    CASES = cases(suite.UNFOLD_SUITE, suite.QUICK_UNFOLD_SUITE)
    OPS = ("fwd", "dx")
    params = (list(CASES), list(OPS))

    def make(self, case, op, x, w, b, gy):
        kernel = (case.kernel,) * case.nd
        args = (kernel, case.dilation, case.padding, case.stride)
        if op == "fwd":
            return lambda: F.unfold(x, *args)
        cols = F.unfold(x, *args)
        return lambda: F.fold(cols, x.shape[2:], *args)
