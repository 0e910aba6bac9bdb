"""Time and peak memory of every public kernel family, over the shared shape suite.

Each class is one family; its parameters are (case, op). ``setup`` builds the
arrays and runs the op once, so Numba's compilation (or cache load) never
lands in a timing. The ops are those of ``python -m numconv bench``
(:mod:`numconv.bench.ops`).
"""

from __future__ import annotations

from typing import ClassVar

import numba

from numconv.bench.ops import applies, numconv_op

from .common import THREADS, cases


class _Family:
    """``time_op`` and ``peakmem_op`` over ``CASES`` x ``OPS`` (subclasses set both)."""

    CASES: ClassVar[dict] = {}
    param_names = ("case", "op")
    timeout = 600

    def setup(self, name, op):
        numba.set_num_threads(THREADS)
        case = self.CASES[name]
        if not applies(case, op):
            raise NotImplementedError  # asv: skip this combination
        self.run = numconv_op(case, op, *case.arrays())
        self.run()  # warm-up: JIT compilation or cache load

    def time_op(self, name, op):
        self.run()

    def peakmem_op(self, name, op):
        self.run()


class Convolution(_Family):
    """conv1d/2d/3d forward (fwd), input gradient (dx), weight and bias gradients (dw)."""

    CASES = cases("performance")
    params = (list(CASES), ["fwd", "dx", "dw"])


class ConvolutionVariants(_Family):
    """Convolutions outside PERFORMANCE.md's suite (grouped, strided, batch 1, 5×5, ...)."""

    CASES = cases("conv-variants")
    params = (list(CASES), ["fwd", "dx", "dw"])


class Pooling(_Family):
    """max, average and global average pooling, forward (fwd) and backward (dx)."""

    CASES = cases("pooling")
    params = (list(CASES), ["fwd", "dx"])


class PoolingVariants(_Family):
    """min, LP and adaptive max pooling and max unpooling, forward and backward."""

    CASES = cases("pooling-variants")
    params = (list(CASES), ["fwd", "dx"])


class TransposedConvolution(_Family):
    """conv_transpose2d forward, input gradient, weight and bias gradients (upsampling)."""

    CASES = cases("transpose")
    params = (list(CASES), ["fwd", "dx", "dw"])


class UnfoldFold(_Family):
    """unfold (fwd) and fold, its adjoint (dx), in 2-d and 3-d."""

    CASES = cases("unfold")
    params = (list(CASES), ["fwd", "dx"])
