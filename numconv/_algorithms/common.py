"""Helpers the algorithms share: channels-last operands, grouped weights, partial sums,
and the dispatch for the algorithms that split a problem into smaller ones."""

from __future__ import annotations

import numba
import numpy as np

from .._padding import pad_channels_last
from .._params import ConvPlan, kernel_array


def select_inner(op: str, plan: ConvPlan, dtype):
    """The algorithm the dispatch picks for a sub-problem (polyphase, depth slices)."""
    from .. import _dispatch  # imported here: the dispatch imports the algorithms

    return _dispatch.select(op, plan, dtype)


def inner_call(op: str, plan: ConvPlan, dtype, *operands, result_slot: str) -> np.ndarray:
    """``op`` (``"forward"`` or ``"input_grad"``) of a sub-problem whose result the caller
    only reads before its next call: with the dispatch's pick, into scratch ``result_slot``
    where that algorithm can write there (``SCRATCH_RESULTS``), else a fresh array.

    A scratch result may overhang: ``(N, C, D, H', W')`` with ``H' ≥ H`` and
    ``W' ≥ W`` (Winograd's whole tiles), the result in its first rows and
    columns; cutting it would be a copy (0.6-0.8 ms of dilated3x3's input
    gradient with polyphase forced).

    Why: a fresh intermediate next to the caller's fresh result gave glibc two
    large blocks to free a call, and in a process whose allocator then handed
    them back to the system every call faulted in fresh pages: dilated3x3's
    forward took 1,205 page faults a call and 5.5-7.7 ms against 4.1-4.3 from
    scratch (docs/performance.md §42).
    """
    algorithm = select_inner(op, plan, dtype)
    function = getattr(algorithm, op)
    if getattr(algorithm, "SCRATCH_RESULTS", False):
        return function(plan, *operands, dtype, result_slot=result_slot)
    return function(plan, *operands, dtype)


def channels_last(a5: np.ndarray, dtype) -> np.ndarray:
    """``(N, C, D, H, W)`` -> a fresh C-contiguous ``(N, D, H, W, C)`` of ``dtype`` (no padding)."""
    return pad_channels_last(a5, ((0, 0),) * 3, "zeros", dtype)


def weight_grad_operands(plan: ConvPlan, x5, gy5, dtype):
    """The padded channels-last input and output gradient a weight gradient reads."""
    return pad_channels_last(x5, plan.pads, plan.padding_mode, dtype), channels_last(gy5, dtype)


def grouped_weight(w5: np.ndarray, groups: int, dtype, swap: bool = False) -> np.ndarray:
    """``(C_out, Cgi, KD, KH, KW)`` -> ``(G, KD, KH, KW, Cgi, Cgo)`` (last two swapped if ``swap``).

    Always a fresh, writable, C-contiguous copy: a view of a read-only caller
    array would compile a second (read-only) kernel signature.
    """
    c_out, cgi, *kernel = w5.shape
    w6 = w5.reshape(groups, c_out // groups, cgi, *kernel)
    axes = (0, 3, 4, 5, 1, 2) if swap else (0, 3, 4, 5, 2, 1)
    return np.array(w6.transpose(axes), dtype=dtype, order="C")


def ungrouped_weight(gw6: np.ndarray, plan: ConvPlan) -> np.ndarray:
    """Undo :func:`grouped_weight`: ``(G, KD, KH, KW, Cgi, Cgo)`` -> ``(C_out, Cgi, *k)``."""
    cgi = plan.in_channels // plan.groups
    return gw6.transpose(0, 5, 4, 1, 2, 3).reshape(plan.out_channels, cgi, *plan.kernel)


def partial_sum_count(plan: ConvPlan) -> int:
    """One partial weight gradient per thread, at most one per output row.

    The count (and so the summation order) depends only on the shape and the
    thread count: results are deterministic at a fixed thread count.
    """
    return max(1, min(numba.get_num_threads(), plan.batch * plan.out[0] * plan.out[1]))


def tap_rows_operands(plan: ConvPlan, w5, bias, dtype):
    """Each group's filters as ``(G, T, C_out/G)``, one row per tap, and the bias (zeros if none).

    The register blocks' operands (:mod:`numconv.kernels.register_blocks`):
    a block broadcasts a tap's weights for consecutive output channels. ``w5``
    is ``(C_out, C/G, KD, KH, KW)`` or a strided view of that shape. Shared
    by :mod:`.tap_sums` and :mod:`.phase_sums`.
    """
    group_outputs = plan.out_channels // plan.groups
    filters = np.asarray(w5).reshape(plan.groups, group_outputs, -1).transpose(0, 2, 1)
    weights = np.ascontiguousarray(filters, dtype=dtype)
    if bias is None:
        return weights, np.zeros(plan.out_channels, dtype=dtype)
    return weights, kernel_array(bias, (plan.out_channels,), dtype)
