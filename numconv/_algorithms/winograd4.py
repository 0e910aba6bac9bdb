"""Winograd F(4×4, 3×3): stride-1 3×3 layers as 36 matrix products per tile.

The same algorithm as :mod:`numconv._algorithms.winograd` (which holds the
driver: chunks, work splits, the three ops) with 4×4 output blocks from 6×6
patches: 36 multiply-adds per 16 outputs, 2.25 per output against F(2×2)'s
4 and direct's 9. The transforms, in :mod:`numconv.kernels.winograd4`, read
and write 2.25 values per output instead of 4, so they shrink too.

The price is accuracy: ``G`` has entries down to 1/24 and ``Aᵀ`` up to 8, so
float32 rounding grows. Measured in float32 against a float64 direct result,
relative error (norm) of the three ops 0.6e-6 to 2.6e-6 on 96→64 (14²),
128→128 (28²), 512→512 (7²) and 64→64 (56²) layers, where F(2×2) gets
2e-7 to 5e-7: well inside the issue's 1e-4 for transform algorithms.

The dispatch takes it over F(2×2) when each thread gets at least
``winograd.MIN_TILES`` of its tiles (``docs/performance.md`` §18).
"""

from __future__ import annotations

import numpy as np

from .._params import ConvPlan
from ..kernels import winograd4 as f4_kernels
from .winograd import Tiling, applies, forward_tiled, input_grad_tiled, weight_grad_tiled

NAME = "winograd4"
SCRATCH_RESULTS = True  # as winograd's

__all__ = ["NAME", "applies", "forward", "input_grad", "weight_grad"]

# F(4×4, 3×3): the kernels' module has Bᵀ and Aᵀ.
F4 = Tiling(
    size=4,
    g=np.array(
        [
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ]
    ),
    input_tiles=f4_kernels.input_tiles,
    output_tiles=f4_kernels.output_tiles,
    gradient_tiles=f4_kernels.gradient_tiles,
)


def forward(plan: ConvPlan, x5, w5, bias, dtype, result_slot=None) -> np.ndarray:
    return forward_tiled(F4, plan, x5, w5, bias, dtype, result_slot)


def input_grad(plan: ConvPlan, w5, gy5, dtype, result_slot=None) -> np.ndarray:
    return input_grad_tiled(F4, plan, w5, gy5, dtype, result_slot)


def weight_grad(plan: ConvPlan, x5, gy5, dtype) -> np.ndarray:
    return weight_grad_tiled(F4, plan, x5, gy5, dtype)
