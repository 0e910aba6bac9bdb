"""The one place that chooses an algorithm for a convolution call.

``select(op, plan, dtype)`` returns an algorithm module (see
:mod:`numconv._algorithms`). New algorithms are registered in ``ALGORITHMS``
and chosen in ``select``; the public API never changes. Tests pin each path
with :func:`forced`.

The rule, from measurements recorded in ``docs/performance.md``:

- depthwise convolutions (one channel per group) -> ``depthwise``;
- 1×1 convolutions without padding or groups -> ``pointwise``: plain matrix
  products in the caller's layout, with nothing to copy;
- forwards and weight gradients with up to
  :data:`PHASE_SUMS_MAX_GROUP_WEIGHTS` weights per group (``C_out/G ·
  C/G · KD·KH·KW``), or :data:`PHASE_SUMS_MAX_THIN_GROUP_WEIGHTS` where a
  stride residue is a single tap -> ``phase_sums``, unless the tap sums take
  the layer (below), and where a Winograd-family algorithm suits, only with
  at most :data:`PHASE_SUMS_MAX_TRANSFORM_WEIGHTS` weights per group or, up
  to :data:`PHASE_SUMS_MAX_TRANSFORM_CALL_WEIGHTS`, at most
  :data:`PHASE_SUMS_MAX_TRANSFORM_FLOPS` FLOPs. Against the algorithm chosen
  before (two threads, one process, docs/performance.md §29) the forward
  won all 22 shapes of up to 2^15 weights measured, by
  1.01-7.6×: grouped 5×5 and 7×7 layers 1.25-2.6×, 3-d layers 1.35-2.8×,
  g8_3x3 (16 channels a group, Winograd before) 1.33×, calls of 0.6-1.2
  MFLOP 4-5× (the direct loops before). Winograd kept the ones it
  won: 16 → 32 channels on 8×56² (4608 weights, 1.45 against 1.79 ms),
  4 groups of 32 on 8×128×28² (3.43 against 3.75), video3d (winograd3d,
  20 against 39 ms). The weight gradient
  (docs/performance.md §30) was faster on 22 of the 25 shapes the same
  rule gives it (1.04-5.7×) and tied on three (4 groups 3×3 stride 2
  batch 1, 0.49 against 0.44-0.54 ms, and two calls under 0.05 ms);
  Winograd kept 4 groups of 32 (2.7-3.0 against 3.4 ms). Past 2^15
  (§34, against OpenBLAS's AVX-512 kernel): on the four layers of 102400
  to 409600 weights a group with several taps a residue the planar GEMM
  took, the phase sums won the forward by 1.15-1.82× and the weight
  gradient by 1.01-1.43×; with a single-tap residue they lost the weight
  gradient on three of four (0.81-0.92×); past 2^19 they lost (0.32-0.97×);
- input gradients -> ``phase_sums`` (one forward of ``gy`` per stride
  residue) within the same bounds, except for one-group 1-d and 2-d layers
  with 1-3 input channels from :data:`PLANAR_MIN_FLOPS` on (see
  :func:`_phase_sums_input_grad_suits`). Against the planar GEMM
  (docs/performance.md §34, OpenBLAS's AVX-512 kernel) they won 13 of the
  14 layers with several taps a residue and 2^15 to 2^19 weights a group
  by 1.00-1.79× and lost one (a 1-d 256-channel k3 layer, 0.88×); with
  single-tap residues they won 1.41-1.99× up to 2^15 (batch-1 4 groups of
  32 at stride 2, 0.18 against 0.35 ms), varied between 2^15 and 2^17
  (0.76-1.52×) and tied or lost from 2^17 on (0.65-1.03×). The sweep's
  planar GEMM times for long calls were inflated; a check without PyTorch
  between the calls gave k5_48 2.39 against 3.43 ms and audio1d 12.2
  against 14.1;
- stride-1 undilated 3×3 convolutions -> Winograd, when each group has at
  least :data:`WINOGRAD_MIN_IN_CHANNELS` input channels and its input times
  output channels is at least :data:`WINOGRAD_MIN_CHANNELS`: ``winograd4``
  (F(4×4, 3×3), 4× fewer multiplications than direct) when each thread gets
  at least ``winograd.MIN_TILES`` of its 4×4 tiles, else ``winograd``
  (F(2×2, 3×3), 2.25× fewer; see :func:`_winograd_tiling`). With fewer
  input channels Winograd's transforms cost more than the multiplications
  they save: on cifar_first (3 → 32 channels,
  64×32²) it took 2.4 ms against the planar GEMM's 1.3; from 8 input channels
  it ties or wins (8 → 8 on 8×56²: 0.53 against 0.69 ms). With one channel in
  and out its fixed cost of thread hand-offs made it 0.5 ms against direct's 0.05.
  Grouped layers (8×128×28², 128 → 128) against the planar GEMM, fwd ms:
  2 groups 3.2 against 7.0, 4 groups 2.5 against 4.7, 8 groups (16 channels
  each) 2.2 against 2.9-3.5, 16 groups 1.95 against 2.4; with 4 channels a
  group they tie (docs/performance.md §22);
- stride-1 dilated convolutions whose phases (see ``polyphase``) Winograd
  would take -> ``polyphase``: the same undilated layers on sub-grids;
  but their input gradients, and with dilation 3 or more or up to
  :data:`PHASE_SUMS_MAX_POLYPHASE_WEIGHTS` weights a group their forwards
  and weight gradients, -> ``phase_sums`` within its bounds (§36: input
  gradients 0.95-3.81×, dilated3x3's 4.59 against 9.27 ms);
- 3-d kernels more than one deep whose one-deep slices Winograd would take
  -> ``winograd3d`` (one transform of each plane for every kernel depth) for
  one-group, zero-padded layers undilated in depth: it took about half the
  depth slices' time on video3d's three ops (17-21 against 31-42 ms) and
  1.25-2.07× less on three other 3-d shapes (``docs/performance.md`` §27);
  the others -> ``depth_slices``: a sum of 1×3×3 layers over kernel depth;
- calls of at least :data:`PLANAR_MIN_FLOPS` direct-equivalent FLOPs ->
  ``planar_gemm``: im2col tiles and BLAS in the caller's layout. It beat the
  channels-last ``gemm`` on every suite layer and on 8 of 10 other shapes
  (grouped, strided, 5×5, 1-d, 3-d, 1- and 3-channel inputs), and the two it
  lost were batch-1 layers with 5×5 and 7×7 windows, by 10-20% (1.72 against
  1.48 ms): not worth a rule. ``gemm`` stays as an algorithm tests can force;
- except for the forward and weight gradient of one-group 1-d and 2-d
  layers whose tasks have at least :data:`TAP_SUMS_MIN_POSITIONS` output
  positions and whose ``C_out·C·KH·KW`` is at most
  :data:`TAP_SUMS_MAX_WEIGHTS`, and whose copied input planes are no larger
  than the input and output -> ``tap_sums``: sums over contiguous runs of
  copied input rows in vector registers (docs/performance.md §20). Against
  the planar GEMM on 21 such shapes (first layers, 1-d layers of 1 to 256
  channels, 5×5 and 7×7 layers up to 128 channels, strides 1 to 4) it won
  19 weight gradients by 1.07-2.03× and 17 forwards by 1.02-1.74×. It lost
  both on 14² outputs (196 positions per task: 0.70× weight gradient, 0.61×
  forward) and on 256 → 256 channels at stride 2 (0.92×), where BLAS runs
  near its ceiling; and the forward on a 1-d 256 → 256 layer (0.98×, past
  the weight bound) and on one 1-d image in 5 tasks (0.94×, before tasks
  were spread evenly over the threads);
- anything smaller -> ``direct``: the GEMM's fixed cost (thread hand-off, BLAS
  calls) is about 0.15 ms, against direct's 0.03 for 2 × 8² images of 2
  channels, and 0.30 against 0.18 ms at 0.6 million multiply-adds (8 × 16²,
  4 → 8 channels); at 1.6 million the planar GEMM wins (0.33 against 0.53 ms
  for 32 × 28² images, 1 → 8 channels).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numba

from ._algorithms import (
    depth_slices,
    depthwise,
    direct,
    gemm,
    phase_sums,
    planar_gemm,
    pointwise,
    polyphase,
    tap_sums,
    winograd,
    winograd3d,
    winograd4,
)
from ._params import ConvPlan

ALGORITHMS = {
    module.NAME: module
    for module in (
        direct,
        gemm,
        depthwise,
        pointwise,
        winograd,
        winograd4,
        winograd3d,
        polyphase,
        depth_slices,
        planar_gemm,
        tap_sums,
        phase_sums,
    )
}
OPS = ("forward", "input_grad", "weight_grad")

PLANAR_MIN_FLOPS = 2_000_000
WINOGRAD_MIN_CHANNELS = 16
WINOGRAD_MIN_IN_CHANNELS = 8
TAP_SUMS_MIN_POSITIONS = 512
TAP_SUMS_MAX_WEIGHTS = 1 << 18
PHASE_SUMS_MAX_GROUP_WEIGHTS = 1 << 19
PHASE_SUMS_MAX_THIN_GROUP_WEIGHTS = 1 << 15
PHASE_SUMS_MAX_TRANSFORM_WEIGHTS = 1 << 12
PHASE_SUMS_MAX_TRANSFORM_FLOPS = 1 << 25
PHASE_SUMS_MAX_TRANSFORM_CALL_WEIGHTS = 1 << 15
PHASE_SUMS_MAX_POLYPHASE_WEIGHTS = 1 << 14

_forced: str | None = None


def select(op: str, plan: ConvPlan, dtype):
    """Return the algorithm module that computes ``op`` for ``plan`` in ``dtype``."""
    if _forced is not None and ALGORITHMS[_forced].applies(plan):
        return ALGORITHMS[_forced]
    if depthwise.applies(plan):
        return depthwise
    if pointwise.applies(plan):
        return pointwise
    transform = _transform_algorithm(plan)
    if op != "input_grad" and _phase_sums_suit(plan, transform, op):
        return phase_sums
    if op == "input_grad" and _phase_sums_input_grad_suits(plan, transform):
        return phase_sums
    if transform is not None:
        return transform
    if plan.flops >= PLANAR_MIN_FLOPS:
        if op != "input_grad" and _tap_sums_suit(plan):
            return tap_sums
        return planar_gemm
    return direct


def _transform_algorithm(plan: ConvPlan):
    """The Winograd-family algorithm for ``plan``, or ``None`` where none suits."""
    if _winograd_suits(plan):
        return _winograd_tiling(plan)
    if polyphase.applies(plan) and _winograd_suits(polyphase.undilated(plan)):
        return polyphase
    if depth_slices.applies(plan) and _winograd_suits(depth_slices.one_deep(plan)):
        return winograd3d if winograd3d.applies(plan) else depth_slices
    return None


def _phase_sums_within_bounds(plan: ConvPlan, transform, op: str) -> bool:
    """Whether the layer has no more weights a group than the phase sums won with (§29-§36).

    Their sums run at the same speed whatever the layer, so they win where
    the others pay most: short BLAS products, and Winograd transforms as
    costly as an ungrouped layer's. Against BLAS at full speed (§34) they
    won up to :data:`PHASE_SUMS_MAX_GROUP_WEIGHTS` weights a group where
    every stride residue has several taps, but past
    :data:`PHASE_SUMS_MAX_THIN_GROUP_WEIGHTS` only some of the time where a
    residue is a single tap (3×3 at stride 2 or 3: short runs, thin
    residue forwards). Where a Winograd-family algorithm (``transform``)
    suits, it saves 2.25-4× the multiplications, so only layers with very
    few weights per group, or small calls (measured up to 2^15 weights a
    group), go to the sums, except for dilated layers (see
    :func:`_phase_sums_beat_polyphase`).
    """
    weights = phase_sums.group_weights(plan)
    thin = not phase_sums.strided_residues_have_several_taps(plan)
    if weights > (PHASE_SUMS_MAX_THIN_GROUP_WEIGHTS if thin else PHASE_SUMS_MAX_GROUP_WEIGHTS):
        return False
    if transform is None:
        return True
    if transform is polyphase and _phase_sums_beat_polyphase(plan, op, weights):
        return True
    small_call = plan.flops <= PHASE_SUMS_MAX_TRANSFORM_FLOPS
    return weights <= PHASE_SUMS_MAX_TRANSFORM_WEIGHTS or (
        small_call and weights <= PHASE_SUMS_MAX_TRANSFORM_CALL_WEIGHTS
    )


def _phase_sums_beat_polyphase(plan: ConvPlan, op: str, weights: int) -> bool:
    """Whether the phase sums beat ``polyphase`` on a dilated layer (measured, §36).

    Polyphase runs the dilated layer as Winograd on its phase planes, which
    are small (a ``d``-th of the padded input along each axis), so their tiles
    are cut and, in the input gradient, the cropped output copied. The phase
    sums won every input gradient but one of nine dilated layers (0.95-3.81×,
    dilated3x3 4.59 against 9.27 ms); the forward and weight gradient where
    the phases are smallest or the channels few: dilation 3 and 4 (1.41-2.32×)
    and up to :data:`PHASE_SUMS_MAX_POLYPHASE_WEIGHTS` weights a group
    (1.38-2.76×), while on dilation-2 layers of 64 to 256 channels polyphase
    won (the sums 0.73-0.94× forward).
    """
    if op == "input_grad":
        return True
    return max(plan.dilation) >= 3 or weights <= PHASE_SUMS_MAX_POLYPHASE_WEIGHTS


def _phase_sums_suit(plan: ConvPlan, transform, op: str) -> bool:
    """Whether ``phase_sums`` beats the other algorithms' forward and weight gradient (§29-§36).

    Within :func:`_phase_sums_within_bounds`, less the one-group layers the tap
    sums take: on 2-d layers the two tied (0.93-1.22× for the phase sums, §34),
    on 1-d layers the tap sums won (the phase sums 0.85-0.96×).
    """
    if not _phase_sums_within_bounds(plan, transform, op):
        return False
    if transform is not None:
        return True
    return not (plan.flops >= PLANAR_MIN_FLOPS and _tap_sums_suit(plan))


def _phase_sums_input_grad_suits(plan: ConvPlan, transform) -> bool:
    """Whether ``phase_sums`` beats the other algorithms' input gradient (measured, §32-§36).

    The gradient is one forward of the sums per stride residue, with ``C/G``
    outputs. Against the planar GEMM it won wherever those forwards have four
    outputs or more, within :func:`_phase_sums_within_bounds` (1.00-1.99× on
    17 of the 18 layers measured within them, §34), except on
    one-group 1-d and 2-d layers with 1-3 input channels (first layers): 1 or
    3 outputs leave the blocks bound by loads, and the planar GEMM won from
    :data:`PLANAR_MIN_FLOPS` on (cifar_first 0.63 against 0.74 ms, §34;
    mnist_k5 0.53 against 1.19, §32); below that the alternative is the
    direct loops, which lost to it.
    """
    if not _phase_sums_within_bounds(plan, transform, "input_grad"):
        return False
    first_layer = plan.groups == 1 and plan.kernel[0] == 1 and plan.in_channels < 4
    return not (first_layer and plan.flops >= PLANAR_MIN_FLOPS)


def _tap_sums_suit(plan: ConvPlan) -> bool:
    """Whether ``tap_sums`` beats the planar GEMM's forward and weight gradient (measured, §20).

    Its passes and sums run over one task's positions, so a task needs a long
    run of them; and where both the filter (``C·KH·KW`` weights) and
    ``C_out`` are large, BLAS products run near the GEMM ceiling and win.
    Its copied planes must also stay within the input and output's size
    (issue 6's scratch bound): with 128 channels, 5×5 filters and 8 outputs
    they were 5× that.
    """
    if not tap_sums.applies(plan):
        return False
    inputs_and_outputs = plan.batch * (
        plan.in_channels * math.prod(plan.spatial) + plan.out_channels * math.prod(plan.out)
    )
    return (
        tap_sums.task_positions(plan) >= TAP_SUMS_MIN_POSITIONS
        and plan.out_channels * plan.in_channels * math.prod(plan.kernel) <= TAP_SUMS_MAX_WEIGHTS
        and tap_sums.scratch_elements(plan) <= inputs_and_outputs
    )


def _winograd_suits(plan: ConvPlan) -> bool:
    """Winograd applies, and each group has enough channels (the thresholds are per group)."""
    group_in = plan.in_channels // plan.groups
    group_out = plan.out_channels // plan.groups
    return (
        winograd.applies(plan)
        and group_in >= WINOGRAD_MIN_IN_CHANNELS
        and group_in * group_out >= WINOGRAD_MIN_CHANNELS
    )


def _winograd_tiling(plan: ConvPlan):
    """F(4×4, 3×3) when every thread gets enough of its tiles for the tile split; else F(2×2).

    F(4×4) does 1.78× fewer multiply-adds, but has a quarter of F(2×2)'s tiles,
    and its transformed filters are 2.25× larger. With too few tiles its
    products get short (36 products of 256² by 128 tiles on res3x3_14 ran
    slower than F(2×2)'s 16 by 392) and the filter transform dominates.
    """
    m = winograd4.F4.size
    tiles = plan.batch * plan.out[0] * -(-plan.out[1] // m) * -(-plan.out[2] // m)
    if tiles >= winograd.MIN_TILES * numba.get_num_threads():
        return winograd4
    return winograd


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
