"""The one place that chooses an algorithm for a convolution call.

``select(op, plan, dtype)`` returns an algorithm module (see
:mod:`numconv._algorithms`). New algorithms are registered in ``ALGORITHMS``
and chosen in ``select``; the public API never changes. Tests pin each path
with :func:`forced`.

The rule, from measurements recorded in ``docs/performance.md``:

- depthwise convolutions (one channel per group) -> ``depthwise``;
- 1×1 convolutions without padding or groups -> ``pointwise``: plain matrix
  products in the caller's layout, with nothing to copy;
- stride-1 undilated ungrouped 3×3 convolutions -> ``winograd`` (2.25× fewer
  multiplications), unless input times output channels is below
  :data:`WINOGRAD_MIN_CHANNELS`: with one channel in and out (8×32² images) its
  fixed cost of thread hand-offs and transforms made it 0.5 ms against
  direct's 0.05; from 4 × 4 channels it ties or wins (3 × 32 channels on
  64×32² images: 2.5-3.3 ms against 7.7-9.9);
- stride-1 dilated convolutions whose phases (see ``polyphase``) Winograd
  would take -> ``polyphase``: the same undilated layers on sub-grids;
- 3-d kernels more than one deep whose one-deep slices Winograd would take
  -> ``depth_slices``: a sum of 1×3×3 layers over kernel depth;
- windows of at least :data:`GEMM_MIN_DEPTH` values per output channel
  (``C_in/groups · ∏kernel``, the GEMM's inner dimension) -> ``gemm``: BLAS
  then runs long enough products to pay for the column copy. The input
  gradient's bar is lower because its direct kernel is slower there: on
  cifar_first (3 channels, 3×3: depth 27) GEMM takes 10 ms against direct's
  37 ms for ``input_grad``, but 9 against 6 ms for ``forward``;
- anything else (shallow windows over few channels) -> ``direct``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

from ._algorithms import depth_slices, depthwise, direct, gemm, pointwise, polyphase, winograd
from ._params import ConvPlan

ALGORITHMS = {
    module.NAME: module
    for module in (direct, gemm, depthwise, pointwise, winograd, polyphase, depth_slices)
}
OPS = ("forward", "input_grad", "weight_grad")

GEMM_MIN_DEPTH = {"forward": 64, "input_grad": 16, "weight_grad": 64}
WINOGRAD_MIN_CHANNELS = 16

_forced: str | None = None


def select(op: str, plan: ConvPlan, dtype):
    """Return the algorithm module that computes ``op`` for ``plan`` in ``dtype``."""
    if _forced is not None and ALGORITHMS[_forced].applies(plan):
        return ALGORITHMS[_forced]
    if depthwise.applies(plan):
        return depthwise
    if pointwise.applies(plan):
        return pointwise
    if _winograd_suits(plan):
        return winograd
    if polyphase.applies(plan) and _winograd_suits(polyphase.undilated(plan)):
        return polyphase
    if depth_slices.applies(plan) and _winograd_suits(depth_slices.one_deep(plan)):
        return depth_slices
    if plan.in_channels // plan.groups * math.prod(plan.kernel) >= GEMM_MIN_DEPTH[op]:
        return gemm
    return direct


def _winograd_suits(plan: ConvPlan) -> bool:
    return winograd.applies(plan) and plan.in_channels * plan.out_channels >= WINOGRAD_MIN_CHANNELS


@contextlib.contextmanager
def forced(name: str) -> Iterator[None]:
    """Run every convolution in the block with algorithm ``name`` where it applies (tests)."""
    global _forced
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; known: {sorted(ALGORITHMS)}")
    previous, _forced = _forced, name
    try:
        yield
    finally:
        _forced = previous
