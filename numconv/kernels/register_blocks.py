"""Blocks of outputs summed over every tap in vector registers.

A block is ``B`` output channels × ``V`` vectors of consecutive positions:
``out[row + i, q] = bias[row + i] + Σ_t weights[t, col + i]·source[offsets[t]
+ q]``. Each tap loads its ``V`` input vectors once and feeds them to ``B·V``
FMAs with its ``B`` weights broadcast; the ``B·V`` accumulators
(:mod:`numconv.kernels.simd` vectors) stay in registers over all taps and are
stored once. The sums run in tap order, one rounding per tap.

Sizes: with AVX-512's 32 registers, 8 × 3 (24 accumulators; 11 loads per
24 FMAs), and 4, 2 and 1 outputs × 4 vectors for what is left of a group, so
that no output channel is computed twice. With AVX2's 16 (``simd.REGISTERS``),
4 × 3 (12 accumulators, 3 input vectors and a broadcast weight), then 2 and 1
× 4: the AVX-512 sizes there spilled their sums to the stack every tap.
:func:`sum_outputs` covers a group's outputs with them. Each size is
written out, accumulator by accumulator: only named locals become
registers (an array of sums, or a loop over them, would live in memory).

Each size is a loop of whole passes (``_passes_*``) that stores its vectors
by flat index: a row view, or an array handed to an inlined helper, costs
reference-count calls, around which every accumulator went to the stack
and back (a third of the time of a 27-tap pass). The passes that fit run
straight into ``out``; the last, partial one into ``spill``, whence the
positions before ``length`` are copied; so ``out`` gets exactly its
``length`` positions and can be the result itself. Unchecked: the caller
keeps ``offsets[t] + q`` inside ``source`` for every ``q < length +
TILE_VECTORS·lanes``.
"""

from __future__ import annotations

from numba import njit

from .._config import KERNEL_OPTIONS
from . import simd

TILE_VECTORS = 4  # the most vectors of positions a pass spans
_WIDE = simd.REGISTERS >= 32  # room for the 8 × 3 blocks


@njit(inline="always", **KERNEL_OPTIONS)
def sum_outputs(
    source, offsets, weights, bias, out, start, spill, first, outputs, length
):  # fmt: skip  # pragma: no cover
    """Rows ``first … first + outputs - 1`` of ``out``, columns ``start … start + length - 1``.

    ``weights`` is ``(T, outputs)``; ``spill`` has ``out``'s rows and
    :data:`TILE_VECTORS` vectors of columns.
    """
    n = simd.lanes(source)
    full = length - length % (3 * n)  # the main blocks' whole passes
    if _WIDE:
        for col in range(0, outputs - 7, 8):
            row = first + col
            _passes_8(source, offsets, weights, col, bias, out, row, start, 0, full)
            if full < length:
                _passes_8(source, offsets, weights, col, bias, spill, row, -full, full, length)
                _copy_spill(spill, out, row, 8, start + full, length - full)
        col = outputs - outputs % 8
    else:
        for col in range(0, outputs - 3, 4):
            row = first + col
            _passes_4x3(source, offsets, weights, col, bias, out, row, start, 0, full)
            if full < length:
                _passes_4x3(source, offsets, weights, col, bias, spill, row, -full, full, length)
                _copy_spill(spill, out, row, 4, start + full, length - full)
        col = outputs - outputs % 4
    full = length - length % (4 * n)  # the smaller blocks' whole passes
    for size in (4, 2, 1):
        if outputs - col >= size:
            row = first + col
            _passes(size, source, offsets, weights, col, bias, out, row, start, 0, full)
            if full < length:
                _passes(size, source, offsets, weights, col, bias, spill, row, -full, full, length)
                _copy_spill(spill, out, row, size, start + full, length - full)
            col += size


@njit(inline="always", **KERNEL_OPTIONS)
def _passes(size, source, offsets, weights, col, bias, out, row, at, q0, q1):  # pragma: no cover
    """The passes of a block of ``size`` (4, 2 or 1) outputs."""
    if size == 4:
        _passes_4(source, offsets, weights, col, bias, out, row, at, q0, q1)
    elif size == 2:
        _passes_2(source, offsets, weights, col, bias, out, row, at, q0, q1)
    else:
        _passes_1(source, offsets, weights, col, bias, out, row, at, q0, q1)


@njit(inline="always", **KERNEL_OPTIONS)
def _copy_spill(spill, out, row, rows, at, count):  # pragma: no cover
    """``out[row + i, at : at + count] = spill[row + i, :count]`` for the block's rows."""
    for i in range(row, row + rows):
        for j in range(count):
            out[i, at + j] = spill[i, j]


@njit(**KERNEL_OPTIONS)
def _passes_8(source, offsets, weights, col, bias, out, row, at, q0, q1):  # pragma: no cover
    """Outputs ``col … col + 7`` × 3 vectors a pass, passes ``q0, q0 + 3·lanes … < q1``.

    Output ``col + i`` at position ``q`` goes to ``out.flat[(row + i)·width +
    at + q]`` (``width`` the length of ``out``'s rows), its bias is ``bias[row + i]``.
    """
    n = simd.lanes(source)
    width = out.shape[1]
    for q in range(q0, q1, 3 * n):
        a0 = b0 = c0 = simd.splat(bias[row])
        a1 = b1 = c1 = simd.splat(bias[row + 1])
        a2 = b2 = c2 = simd.splat(bias[row + 2])
        a3 = b3 = c3 = simd.splat(bias[row + 3])
        a4 = b4 = c4 = simd.splat(bias[row + 4])
        a5 = b5 = c5 = simd.splat(bias[row + 5])
        a6 = b6 = c6 = simd.splat(bias[row + 6])
        a7 = b7 = c7 = simd.splat(bias[row + 7])
        for t in range(offsets.shape[0]):
            read = offsets[t] + q
            u = simd.load(source, read)
            v = simd.load(source, read + n)
            s = simd.load(source, read + 2 * n)
            k = weights[t, col]
            a0, b0, c0 = simd.fma(a0, u, k), simd.fma(b0, v, k), simd.fma(c0, s, k)
            k = weights[t, col + 1]
            a1, b1, c1 = simd.fma(a1, u, k), simd.fma(b1, v, k), simd.fma(c1, s, k)
            k = weights[t, col + 2]
            a2, b2, c2 = simd.fma(a2, u, k), simd.fma(b2, v, k), simd.fma(c2, s, k)
            k = weights[t, col + 3]
            a3, b3, c3 = simd.fma(a3, u, k), simd.fma(b3, v, k), simd.fma(c3, s, k)
            k = weights[t, col + 4]
            a4, b4, c4 = simd.fma(a4, u, k), simd.fma(b4, v, k), simd.fma(c4, s, k)
            k = weights[t, col + 5]
            a5, b5, c5 = simd.fma(a5, u, k), simd.fma(b5, v, k), simd.fma(c5, s, k)
            k = weights[t, col + 6]
            a6, b6, c6 = simd.fma(a6, u, k), simd.fma(b6, v, k), simd.fma(c6, s, k)
            k = weights[t, col + 7]
            a7, b7, c7 = simd.fma(a7, u, k), simd.fma(b7, v, k), simd.fma(c7, s, k)
        base = row * width + at + q
        simd.store(out, base, a0)
        simd.store(out, base + n, b0)
        simd.store(out, base + 2 * n, c0)
        base = (row + 1) * width + at + q
        simd.store(out, base, a1)
        simd.store(out, base + n, b1)
        simd.store(out, base + 2 * n, c1)
        base = (row + 2) * width + at + q
        simd.store(out, base, a2)
        simd.store(out, base + n, b2)
        simd.store(out, base + 2 * n, c2)
        base = (row + 3) * width + at + q
        simd.store(out, base, a3)
        simd.store(out, base + n, b3)
        simd.store(out, base + 2 * n, c3)
        base = (row + 4) * width + at + q
        simd.store(out, base, a4)
        simd.store(out, base + n, b4)
        simd.store(out, base + 2 * n, c4)
        base = (row + 5) * width + at + q
        simd.store(out, base, a5)
        simd.store(out, base + n, b5)
        simd.store(out, base + 2 * n, c5)
        base = (row + 6) * width + at + q
        simd.store(out, base, a6)
        simd.store(out, base + n, b6)
        simd.store(out, base + 2 * n, c6)
        base = (row + 7) * width + at + q
        simd.store(out, base, a7)
        simd.store(out, base + n, b7)
        simd.store(out, base + 2 * n, c7)


@njit(**KERNEL_OPTIONS)
def _passes_4x3(source, offsets, weights, col, bias, out, row, at, q0, q1):  # pragma: no cover
    """Outputs ``col … col + 3`` × 3 vectors a pass; arguments as for :func:`_passes_8`."""
    n = simd.lanes(source)
    width = out.shape[1]
    for q in range(q0, q1, 3 * n):
        a0 = b0 = c0 = simd.splat(bias[row])
        a1 = b1 = c1 = simd.splat(bias[row + 1])
        a2 = b2 = c2 = simd.splat(bias[row + 2])
        a3 = b3 = c3 = simd.splat(bias[row + 3])
        for t in range(offsets.shape[0]):
            read = offsets[t] + q
            u = simd.load(source, read)
            v = simd.load(source, read + n)
            s = simd.load(source, read + 2 * n)
            k = weights[t, col]
            a0, b0, c0 = simd.fma(a0, u, k), simd.fma(b0, v, k), simd.fma(c0, s, k)
            k = weights[t, col + 1]
            a1, b1, c1 = simd.fma(a1, u, k), simd.fma(b1, v, k), simd.fma(c1, s, k)
            k = weights[t, col + 2]
            a2, b2, c2 = simd.fma(a2, u, k), simd.fma(b2, v, k), simd.fma(c2, s, k)
            k = weights[t, col + 3]
            a3, b3, c3 = simd.fma(a3, u, k), simd.fma(b3, v, k), simd.fma(c3, s, k)
        base = row * width + at + q
        simd.store(out, base, a0)
        simd.store(out, base + n, b0)
        simd.store(out, base + 2 * n, c0)
        base = (row + 1) * width + at + q
        simd.store(out, base, a1)
        simd.store(out, base + n, b1)
        simd.store(out, base + 2 * n, c1)
        base = (row + 2) * width + at + q
        simd.store(out, base, a2)
        simd.store(out, base + n, b2)
        simd.store(out, base + 2 * n, c2)
        base = (row + 3) * width + at + q
        simd.store(out, base, a3)
        simd.store(out, base + n, b3)
        simd.store(out, base + 2 * n, c3)


@njit(**KERNEL_OPTIONS)
def _passes_4(source, offsets, weights, col, bias, out, row, at, q0, q1):  # pragma: no cover
    """Outputs ``col … col + 3`` × 4 vectors a pass; arguments as for :func:`_passes_8`."""
    n = simd.lanes(source)
    width = out.shape[1]
    for q in range(q0, q1, 4 * n):
        a0 = b0 = c0 = d0 = simd.splat(bias[row])
        a1 = b1 = c1 = d1 = simd.splat(bias[row + 1])
        a2 = b2 = c2 = d2 = simd.splat(bias[row + 2])
        a3 = b3 = c3 = d3 = simd.splat(bias[row + 3])
        for t in range(offsets.shape[0]):
            read = offsets[t] + q
            u = simd.load(source, read)
            v = simd.load(source, read + n)
            s = simd.load(source, read + 2 * n)
            p = simd.load(source, read + 3 * n)
            k = weights[t, col]
            a0, b0 = simd.fma(a0, u, k), simd.fma(b0, v, k)
            c0, d0 = simd.fma(c0, s, k), simd.fma(d0, p, k)
            k = weights[t, col + 1]
            a1, b1 = simd.fma(a1, u, k), simd.fma(b1, v, k)
            c1, d1 = simd.fma(c1, s, k), simd.fma(d1, p, k)
            k = weights[t, col + 2]
            a2, b2 = simd.fma(a2, u, k), simd.fma(b2, v, k)
            c2, d2 = simd.fma(c2, s, k), simd.fma(d2, p, k)
            k = weights[t, col + 3]
            a3, b3 = simd.fma(a3, u, k), simd.fma(b3, v, k)
            c3, d3 = simd.fma(c3, s, k), simd.fma(d3, p, k)
        base = row * width + at + q
        simd.store(out, base, a0)
        simd.store(out, base + n, b0)
        simd.store(out, base + 2 * n, c0)
        simd.store(out, base + 3 * n, d0)
        base = (row + 1) * width + at + q
        simd.store(out, base, a1)
        simd.store(out, base + n, b1)
        simd.store(out, base + 2 * n, c1)
        simd.store(out, base + 3 * n, d1)
        base = (row + 2) * width + at + q
        simd.store(out, base, a2)
        simd.store(out, base + n, b2)
        simd.store(out, base + 2 * n, c2)
        simd.store(out, base + 3 * n, d2)
        base = (row + 3) * width + at + q
        simd.store(out, base, a3)
        simd.store(out, base + n, b3)
        simd.store(out, base + 2 * n, c3)
        simd.store(out, base + 3 * n, d3)


@njit(**KERNEL_OPTIONS)
def _passes_2(source, offsets, weights, col, bias, out, row, at, q0, q1):  # pragma: no cover
    """Outputs ``col`` and ``col + 1`` × 4 vectors a pass; as for :func:`_passes_8`."""
    n = simd.lanes(source)
    width = out.shape[1]
    for q in range(q0, q1, 4 * n):
        a0 = b0 = c0 = d0 = simd.splat(bias[row])
        a1 = b1 = c1 = d1 = simd.splat(bias[row + 1])
        for t in range(offsets.shape[0]):
            read = offsets[t] + q
            u = simd.load(source, read)
            v = simd.load(source, read + n)
            s = simd.load(source, read + 2 * n)
            p = simd.load(source, read + 3 * n)
            k = weights[t, col]
            a0, b0 = simd.fma(a0, u, k), simd.fma(b0, v, k)
            c0, d0 = simd.fma(c0, s, k), simd.fma(d0, p, k)
            k = weights[t, col + 1]
            a1, b1 = simd.fma(a1, u, k), simd.fma(b1, v, k)
            c1, d1 = simd.fma(c1, s, k), simd.fma(d1, p, k)
        base = row * width + at + q
        simd.store(out, base, a0)
        simd.store(out, base + n, b0)
        simd.store(out, base + 2 * n, c0)
        simd.store(out, base + 3 * n, d0)
        base = (row + 1) * width + at + q
        simd.store(out, base, a1)
        simd.store(out, base + n, b1)
        simd.store(out, base + 2 * n, c1)
        simd.store(out, base + 3 * n, d1)


@njit(**KERNEL_OPTIONS)
def _passes_1(source, offsets, weights, col, bias, out, row, at, q0, q1):  # pragma: no cover
    """Output ``col`` × 4 vectors a pass; arguments as for :func:`_passes_8`."""
    n = simd.lanes(source)
    width = out.shape[1]
    for q in range(q0, q1, 4 * n):
        a0 = b0 = c0 = d0 = simd.splat(bias[row])
        for t in range(offsets.shape[0]):
            read = offsets[t] + q
            k = weights[t, col]
            a0 = simd.fma(a0, simd.load(source, read), k)
            b0 = simd.fma(b0, simd.load(source, read + n), k)
            c0 = simd.fma(c0, simd.load(source, read + 2 * n), k)
            d0 = simd.fma(d0, simd.load(source, read + 3 * n), k)
        base = row * width + at + q
        simd.store(out, base, a0)
        simd.store(out, base + n, b0)
        simd.store(out, base + 2 * n, c0)
        simd.store(out, base + 3 * n, d0)
