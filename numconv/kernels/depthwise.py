"""Depthwise convolution kernels (one input and one output channel per group), planar.

Arrays stay in the caller's channel-first layout: input ``x`` ``(N, C, D, H, W)``
(unpadded), output ``y`` ``(N, C, OD, OH, OW)``, weight ``w`` ``(C, KD, KH, KW)``.
Each parallel iteration owns one ``(n, c)`` plane. It first copies the plane,
padded and split into its stride phases, into a small flat per-thread buffer
(``scratch[thread]``; see "flat planes" below): that buffer stays in cache,
and the loops over it need no bounds checks. The padding is described per
axis by ``src`` maps, as in :mod:`numconv._padding`: padded position ``j``
reads input position ``src[j]``, or zero where it is ``-1``. Then the whole
plane is one contiguous loop, vectorised, whatever the stride.

A channel only meets its own filter, so there is nothing for a GEMM to do;
the work is a few multiply-adds per byte: memory, not arithmetic, bounds it.
Keeping the caller's layout saves the two layout conversions the
channels-last version paid (as much time as the convolution itself).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .._config import KERNEL_OPTIONS, REDUCTION_OPTIONS


@njit(inline="always", **KERNEL_OPTIONS)
def _load_phased_plane(x, n, c, src_d, src_h, src_w, slot_d, slot_h, w_phases,
                       flat):  # fmt: skip  # pragma: no cover
    """flat[slot(i, j, k)] = x[n, c, src_d[i], src_h[j], src_w[k]] (0 where a source is -1).

    Padded row ``(i, j)`` starts at slot ``slot_d[i] + slot_h[j]``; row
    ``r`` of ``w_phases`` is W phase ``r``: its first slot (relative to the
    row's), its slot count, and the slots ``[lo, hi)`` that read the interior
    at a stride of ``sw`` from input column ``first`` (see
    :func:`numconv._algorithms.depthwise._phased_layout`). No divisions here:
    with them the copy took 6× as long as the convolution on 14² planes.
    """
    sw = w_phases.shape[0]
    step = np.uint64(sw)
    for i in range(src_d.shape[0]):
        for j in range(src_h.shape[0]):
            base = np.uint64(slot_d[i] + slot_h[j])
            real = src_d[i] >= 0 and src_h[j] >= 0
            x_row = x[n, c, max(src_d[i], 0), max(src_h[j], 0)]
            for r in range(sw):
                start = base + np.uint64(w_phases[r, 0])
                count, lo = w_phases[r, 1], w_phases[r, 2]
                hi, first = w_phases[r, 3], w_phases[r, 4]
                if not real:
                    for kk in range(count):
                        flat[start + np.uint64(kk)] = 0
                    continue
                for kk in range(lo):
                    source = src_w[kk * sw + r]
                    flat[start + np.uint64(kk)] = x_row[source] if source >= 0 else 0
                inner = start + np.uint64(lo)  # unsigned: no negative-index code in the copy
                if sw == 1:  # contiguous: a vector copy (a runtime step keeps it scalar)
                    for kk in range(hi - lo):
                        u = np.uint64(kk)
                        flat[inner + u] = x_row[np.uint64(first) + u]
                else:
                    for kk in range(hi - lo):
                        u = np.uint64(kk)
                        flat[inner + u] = x_row[np.uint64(first) + u * step]
                for kk in range(hi, count):
                    source = src_w[kk * sw + r]
                    flat[start + np.uint64(kk)] = x_row[source] if source >= 0 else 0


@njit(inline="always", **KERNEL_OPTIONS)
def _fold_phased_plane(flat, gx, n, c, src_d, src_h, src_w, slot_d, slot_h,
                       w_phases):  # fmt: skip  # pragma: no cover
    """Adjoint of :func:`_load_phased_plane`: gx[n, c] = Σ of flat over each source."""
    sw = w_phases.shape[0]
    step = np.uint64(sw)
    gx[n, c] = 0
    for i in range(src_d.shape[0]):
        for j in range(src_h.shape[0]):
            if src_d[i] < 0 or src_h[j] < 0:
                continue
            base = np.uint64(slot_d[i] + slot_h[j])
            gx_row = gx[n, c, src_d[i], src_h[j]]  # reflect/circular pads revisit rows: add
            for r in range(sw):
                start = base + np.uint64(w_phases[r, 0])
                count, lo = w_phases[r, 1], w_phases[r, 2]
                hi, first = w_phases[r, 3], w_phases[r, 4]
                for kk in range(lo):
                    if src_w[kk * sw + r] >= 0:
                        gx_row[src_w[kk * sw + r]] += flat[start + np.uint64(kk)]
                inner = start + np.uint64(lo)
                if sw == 1:
                    for kk in range(hi - lo):
                        u = np.uint64(kk)
                        gx_row[np.uint64(first) + u] += flat[inner + u]
                else:
                    for kk in range(hi - lo):
                        u = np.uint64(kk)
                        gx_row[np.uint64(first) + u * step] += flat[inner + u]
                for kk in range(hi, count):
                    if src_w[kk * sw + r] >= 0:
                        gx_row[src_w[kk * sw + r]] += flat[start + np.uint64(kk)]


# --------------------------------------------------------------------------- flat planes
# Output (od, oh, ow) reads padded positions (od·sd + a·dd, oh·sh + b·dh,
# ow·sw + e·dw). Each plane is first copied into its phased layout: along an
# axis of stride s, padded position i goes to phase i % s at i // s, and the
# phases (sd·sh·sw of them, each a (Dq, Hq, Wq) grid with Dq = ceil(Dp / sd)
# and so on) lie one after another. Tap t = (a, b, e) then reads, for every
# output, slot q + offset[t], with q = (od·Hq + oh)·Wq + ow and offset[t] the
# slot of padded position (a·dd, b·dh, e·dw). So a whole plane is one
# contiguous loop over q instead of OH rows of OW, whatever the stride
# (28-element rows spent more time entering and leaving loops than computing,
# and stride-2 rows read every other element, which did not vectorise). With
# stride 1 there is one phase: the padded plane itself. The loop also computes
# Wq − OW junk values at the end of each row; they are never copied out.
# Slots past a phase's last position (a phase one shorter than Wq) are zero:
# the per-thread buffers are allocated zeroed and never written there.


@njit(inline="always", **KERNEL_OPTIONS)
def _flat_correlate(src, dst, offsets, taps, count):  # pragma: no cover
    """dst[q] = Σ_t taps[t] · src[q + offsets[t]] for q < count.

    Nine taps (3×3, the usual depthwise filter) run as one pass with every
    tap in a register. Other counts run in blocks of five taps (a 5×5 filter
    row), then three, then one: each pass loads and stores ``dst`` once for
    its block, where a pass per tap did so for every tap.
    """
    if offsets.shape[0] == 9:
        o0, o1, o2 = np.uint64(offsets[0]), np.uint64(offsets[1]), np.uint64(offsets[2])
        o3, o4, o5 = np.uint64(offsets[3]), np.uint64(offsets[4]), np.uint64(offsets[5])
        o6, o7, o8 = np.uint64(offsets[6]), np.uint64(offsets[7]), np.uint64(offsets[8])
        w0, w1, w2, w3, w4 = taps[0], taps[1], taps[2], taps[3], taps[4]
        w5, w6, w7, w8 = taps[5], taps[6], taps[7], taps[8]
        for i in range(count):
            q = np.uint64(i)
            dst[q] = (
                w0 * src[q + o0] + w1 * src[q + o1] + w2 * src[q + o2]
                + w3 * src[q + o3] + w4 * src[q + o4] + w5 * src[q + o5]
                + w6 * src[q + o6] + w7 * src[q + o7] + w8 * src[q + o8]
            )  # fmt: skip
        return
    dst[:count] = 0
    n_taps = offsets.shape[0]
    t = 0
    while t + 5 <= n_taps:
        o0, o1, o2 = np.uint64(offsets[t]), np.uint64(offsets[t + 1]), np.uint64(offsets[t + 2])
        o3, o4 = np.uint64(offsets[t + 3]), np.uint64(offsets[t + 4])
        w0, w1, w2, w3, w4 = taps[t], taps[t + 1], taps[t + 2], taps[t + 3], taps[t + 4]
        for i in range(count):
            q = np.uint64(i)
            dst[q] += (w0 * src[q + o0] + w1 * src[q + o1] + w2 * src[q + o2]
                       + w3 * src[q + o3] + w4 * src[q + o4])  # fmt: skip
        t += 5
    if t + 3 <= n_taps:
        o0, o1, o2 = np.uint64(offsets[t]), np.uint64(offsets[t + 1]), np.uint64(offsets[t + 2])
        w0, w1, w2 = taps[t], taps[t + 1], taps[t + 2]
        for i in range(count):
            q = np.uint64(i)
            dst[q] += w0 * src[q + o0] + w1 * src[q + o1] + w2 * src[q + o2]
        t += 3
    for single in range(t, n_taps):
        offset = np.uint64(offsets[single])
        tap = taps[single]
        for i in range(count):
            q = np.uint64(i)
            dst[q] += tap * src[q + offset]


@njit(inline="always", **KERNEL_OPTIONS)
def _flat_start(od, oh, hq, wq):  # pragma: no cover
    """Slot ``q`` of output row (od, oh): where its first output's reads start."""
    return (od * hq + oh) * wq


@njit(parallel=True, **KERNEL_OPTIONS)
def depthwise_forward_flat(x, src_d, src_h, src_w, slot_d, slot_h, w_phases, grid, offsets, w,
                           bias, y, scratch, rows):  # fmt: skip  # pragma: no cover
    """y[n, c, o] = bias[c] + Σ_t xp[n, c, o·s + tap_t] · w[c, t] (xp: the padded plane).

    ``w`` is ``(C, taps)`` in ``offsets``' order; ``scratch[thread]`` holds the
    phased plane and ``rows[thread]`` the flat result before its valid part is
    copied out.
    """
    n_batch, c_n, od_n, oh_n, ow_n = y.shape
    _, hq, wq = grid
    count = _flat_start(od_n - 1, oh_n - 1, hq, wq) + ow_n
    for plane in prange(n_batch * c_n):
        n = plane // c_n
        c = plane % c_n
        thread = numba.get_thread_id()
        local = scratch[thread]
        _load_phased_plane(x, n, c, src_d, src_h, src_w, slot_d, slot_h, w_phases, local)
        flat = rows[thread]
        _flat_correlate(local, flat, offsets, w[c], count)
        # The valid part of each row, with the bias. Unsigned indices into a flat
        # view of the plane: with signed ones this copy took 0.44 of 1.0 ms
        # (dw3x3), with these 0.12 (LLVM drops the negative-index code).
        b = bias[c]
        y_plane = y[n, c].reshape(od_n * oh_n * ow_n)
        j = np.uint64(0)
        for od in range(od_n):
            for oh in range(oh_n):
                start = np.uint64(_flat_start(od, oh, hq, wq))
                for ow in range(ow_n):
                    y_plane[j + np.uint64(ow)] = flat[start + np.uint64(ow)] + b
                j += np.uint64(ow_n)


@njit(inline="always", **KERNEL_OPTIONS)
def _place_flat(g, n, c, flat, first, hq, wq):  # pragma: no cover
    """flat[first + q] = g[n, c] at flat output slot q; 0 everywhere else."""
    _, _, od_n, oh_n, ow_n = g.shape
    flat[:] = 0
    for od in range(od_n):
        for oh in range(oh_n):
            start = np.uint64(first + _flat_start(od, oh, hq, wq))
            g_row = g[n, c, od, oh]
            for ow in range(ow_n):
                flat[start + np.uint64(ow)] = g_row[np.uint64(ow)]


@njit(parallel=True, **KERNEL_OPTIONS)
def depthwise_input_grad_flat(gy, src_d, src_h, src_w, slot_d, slot_h, w_phases, grid,
                              phase_offsets, phase_bounds, w, gx, scratch,
                              rows):  # fmt: skip  # pragma: no cover
    """gxp = the adjoint of the flat correlation, folded back through the padding.

    Taps come grouped by phase: phase ``P``'s are ``phase_bounds[P]`` to
    ``phase_bounds[P + 1]`` in ``w``'s columns and ``phase_offsets``, which
    hold each tap's offset within its phase grid. Output slot ``q`` reads
    slot ``P·PS + q + offset``, so ``gxp[P·PS + u] = Σ_t w[t] · gyq[u − offset_t]``
    over phase ``P``'s taps only: ``gyq`` (gy at its flat output slots, 0 in
    the junk columns) is placed ``max(offsets)`` into ``rows[thread]``, and each
    phase is a flat correlation with its offsets reversed.
    """
    n_batch, c_n, _, _, _ = gy.shape
    _, hq, wq = grid
    phase_size = grid[0] * hq * wq
    last = phase_offsets.max()
    reversed_offsets = last - phase_offsets
    for plane in prange(n_batch * c_n):
        n = plane // c_n
        c = plane % c_n
        thread = numba.get_thread_id()
        local = scratch[thread]
        placed = rows[thread]
        _place_flat(gy, n, c, placed, last, hq, wq)
        for phase in range(phase_bounds.shape[0] - 1):
            first, end = phase_bounds[phase], phase_bounds[phase + 1]
            target = local[phase * phase_size : (phase + 1) * phase_size]
            if first == end:  # no tap reads this phase (a stride larger than the window)
                target[:] = 0
                continue
            _flat_correlate(placed, target, reversed_offsets[first:end], w[c, first:end],
                            phase_size)  # fmt: skip
        _fold_phased_plane(local, gx, n, c, src_d, src_h, src_w, slot_d, slot_h, w_phases)


@njit(parallel=True, **REDUCTION_OPTIONS)
def depthwise_weight_grad_flat(x, src_d, src_h, src_w, slot_d, slot_h, w_phases, grid, offsets, gy,
                               partial, scratch, rows):  # fmt: skip  # pragma: no cover
    """partial[n, c, t] = Σ_q xp[q + offsets[t]] · gyq[q]; the caller sums over n.

    ``gyq`` is gy at its flat output slots, 0 in the junk columns, so the
    junk values of ``xp`` there add nothing. One partial per plane, so no two
    threads add into one weight.
    """
    n_batch, c_n, od_n, oh_n, ow_n = gy.shape
    _, hq, wq = grid
    count = _flat_start(od_n - 1, oh_n - 1, hq, wq) + ow_n
    for plane in prange(n_batch * c_n):
        n = plane // c_n
        c = plane % c_n
        thread = numba.get_thread_id()
        local = scratch[thread]
        _load_phased_plane(x, n, c, src_d, src_h, src_w, slot_d, slot_h, w_phases, local)
        placed = rows[thread]
        _place_flat(gy, n, c, placed, 0, hq, wq)
        _flat_dots(local, placed, offsets, partial[n, c], count)


@njit(inline="always", **REDUCTION_OPTIONS)
def _flat_dots(src, g, offsets, out, count):  # pragma: no cover
    """out[t] = Σ_q src[q + offsets[t]] · g[q] for q < count.

    Nine taps share one pass (nine vector partial sums, g loaded once);
    other counts run five taps a pass, then one.
    """
    zero = src.dtype.type(0)
    if offsets.shape[0] == 9:
        o0, o1, o2 = np.uint64(offsets[0]), np.uint64(offsets[1]), np.uint64(offsets[2])
        o3, o4, o5 = np.uint64(offsets[3]), np.uint64(offsets[4]), np.uint64(offsets[5])
        o6, o7, o8 = np.uint64(offsets[6]), np.uint64(offsets[7]), np.uint64(offsets[8])
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = zero
        for i in range(count):
            q = np.uint64(i)
            gq = g[q]
            s0 += src[q + o0] * gq
            s1 += src[q + o1] * gq
            s2 += src[q + o2] * gq
            s3 += src[q + o3] * gq
            s4 += src[q + o4] * gq
            s5 += src[q + o5] * gq
            s6 += src[q + o6] * gq
            s7 += src[q + o7] * gq
            s8 += src[q + o8] * gq
        out[0], out[1], out[2], out[3], out[4] = s0, s1, s2, s3, s4
        out[5], out[6], out[7], out[8] = s5, s6, s7, s8
        return
    n_taps = offsets.shape[0]
    t = 0
    while t + 5 <= n_taps:
        o0, o1, o2 = np.uint64(offsets[t]), np.uint64(offsets[t + 1]), np.uint64(offsets[t + 2])
        o3, o4 = np.uint64(offsets[t + 3]), np.uint64(offsets[t + 4])
        s0 = s1 = s2 = s3 = s4 = zero
        for i in range(count):
            q = np.uint64(i)
            gq = g[q]
            s0 += src[q + o0] * gq
            s1 += src[q + o1] * gq
            s2 += src[q + o2] * gq
            s3 += src[q + o3] * gq
            s4 += src[q + o4] * gq
        out[t], out[t + 1], out[t + 2], out[t + 3], out[t + 4] = s0, s1, s2, s3, s4
        t += 5
    for single in range(t, n_taps):
        offset = np.uint64(offsets[single])
        total = zero
        for i in range(count):
            q = np.uint64(i)
            total += src[q + offset] * g[q]
        out[single] = total
