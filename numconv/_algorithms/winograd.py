"""Winograd F(2×2, 3×3) convolution: stride-1 3×3 layers as 16 matrix products.

This module is also the driver for the family F(m×m, 3×3): everything below
is written for a :class:`Tiling` (block size, ``G``, tile kernels), and
:mod:`numconv._algorithms.winograd4` runs it with F(4×4, 3×3)'s. The text
describes F(2×2); F(4×4) has 36 products of 6×6 patches per 4×4 block.

A direct 3×3 convolution spends 9 multiply-adds per output and input channel;
Winograd's F(2×2, 3×3) spends 16 per 2×2 block of outputs, 2.25× fewer, and
the 16 are one matrix product each (:mod:`numconv.kernels.winograd` has the
transforms). Per chunk of tiles:

- forward:      V = Bᵀ d B (input tiles); M[ξ] = U[ξ] @ V[ξ]; y = Aᵀ M A + bias,
  with U = G g Gᵀ the transformed filters;
- input grad:   the forward of the output gradient, padded by 2, with the
  filters flipped and their channel axes swapped (a stride-1 convolution's
  input gradient is a full convolution), then the padding's adjoint;
- weight grad:  dM = A gy Aᵀ (gradient tiles); dU[ξ] += dM[ξ] @ V[ξ]ᵀ; then
  dg = Gᵀ dU G. The same 2.25× saving, on the products that dominate.

Grouped layers: the transforms work channel by channel and do not see groups;
only the products do. Every ``U[ξ]``, ``V[ξ]`` and ``M[ξ]`` splits into
per-group blocks along its channel axis (channels of a group are contiguous),
and one batched ``np.matmul`` over (ξ, group) runs the block products.

Every tile's transforms run in the caller's channel-first layout (except the
split by ξ's F(2×2) input tiles on deep, small planes, which come from a
channels-last copy: see :func:`_channels_last_suits`), on chunks of whole
tile rows of about CHUNK_BYTES each, so the scratch is a few MiB per thread;
only the splits by ξ and by filters (:func:`_work_split`) hold every tile's
transform at once (8 MiB on res3x3_7). The source is one padded copy of the
input (or output gradient). Threads: each worker thread takes a contiguous run of tile rows and
calls single-threaded BLAS, as in :mod:`numconv._algorithms.gemm`; weight
gradient partial sums are added in part order, so results are deterministic at
a fixed thread count.

Accuracy: the transforms add and subtract at most 4 values with weights ±1
and ±1/2. Measured in float32 against a float64 direct result, relative
error (norm) 1.6e-7 to 4.9e-7 on 96→64 (14²), 128→128 (28²) and 512→512 (7²)
layers, where the GEMM algorithm gets 0.8e-7 to 3.8e-7.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import numba
import numpy as np

from .. import _aligned, _workspace
from .._padding import pad_adjoint_channels_last, place_planes, source_indices
from .._params import ConvPlan, kernel_array
from .._workers import run_parts, split_range, thread_parts
from ..kernels import winograd as f2_kernels
from ..kernels.padding import pad_channels_last
from ..kernels.simd import VECTOR_BYTES
from ..kernels.winograd_filters import (
    transform_filter_block,
    transform_filters,
    transform_filters_adjoint,
)

NAME = "winograd"
# forward and input_grad take ``result_slot``: a sub-problem's caller that
# only reads the result before its next call gets it in scratch
# (:func:`numconv._algorithms.common.inner_call`).
SCRATCH_RESULTS = True


@dataclasses.dataclass(frozen=True)
class Tiling:
    """One member of the family F(m×m, 3×3): its block size, ``G`` and tile kernels.

    ``size`` is m, the outputs per tile along H and W; a tile reads an
    ``(m + 2)²`` patch and becomes ``positions = (m + 2)²`` matrix products.
    The filter transform is ``U[(m + 2)a + b] = Σ_rs G[a, r] g[r, s] G[b, s]``.
    """

    size: int
    g: np.ndarray
    input_tiles: Callable
    output_tiles: Callable
    gradient_tiles: Callable
    # The input and gradient tiles from channels-last sources, for the split
    # by positions (see _channels_last_suits); None where the tiling has none.
    channels_last_tiles: Callable | None = None
    channels_last_gradient_tiles: Callable | None = None

    @property
    def positions(self) -> int:
        return (self.size + 2) ** 2


# F(2×2, 3×3): the kernels' module has Bᵀ and Aᵀ.
F2 = Tiling(
    size=2,
    g=np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]),
    input_tiles=f2_kernels.input_tiles,
    output_tiles=f2_kernels.output_tiles,
    gradient_tiles=f2_kernels.gradient_tiles,
    channels_last_tiles=f2_kernels.input_tiles_channels_last,
    channels_last_gradient_tiles=f2_kernels.gradient_tiles_channels_last,
)

# Transformed tiles (V and M, or V and dM) a worker holds at once: long enough
# products for BLAS, and a chunk of V still in the core's L2 when BLAS reads it.
CHUNK_BYTES = 2 << 20
# ... but never fewer tiles than this: each chunk's products stream all of U
# (16 MiB for 512 channels), and BLAS needs long enough products to amortise
# that (16 products of 512² by 32 tiles: 60 GFLOP/s on one core; by 128: 85).
MIN_TILES = 128


def applies(plan: ConvPlan) -> bool:
    """Stride-1, undilated 3×3 convolutions in 2-d (or 3-d with a 1×3×3 kernel), any groups."""
    return (
        plan.kernel[1:] == (3, 3)
        and plan.kernel[0] == 1
        and plan.pads[0] == (0, 0)
        and plan.stride == (1, 1, 1)
        and plan.dilation == (1, 1, 1)
    )


def _tiles(out, tiling: Tiling) -> tuple[int, int]:
    """Tiles along H and W: one per m×m block of outputs, the last one possibly cut."""
    m = tiling.size
    return -(-out[1] // m), -(-out[2] // m)


def _padded_source(a5, pads, mode: str, tiles_hw, tiling: Tiling, dtype) -> np.ndarray:
    """``a5`` padded along H and W by ``pads`` in ``mode``, then by zeros at the end.

    The zeros make every tile's patch lie inside the array; they only reach
    outputs beyond the last row or column, which are cut off. In ``"zeros"``
    mode a negative pad crops instead (the input gradient's source when the
    forward padding exceeds 2). An unpadded ``a5`` that already is whole
    tiles is returned as it is (copied only to make it C-contiguous).
    """
    n, c, d, h, w = a5.shape
    (top, bottom), (left, right) = pads
    m = tiling.size
    shape = (n, c, d, m * tiles_hw[0] + 2, m * tiles_hw[1] + 2)
    if a5.shape == shape and not any(pads[0] + pads[1]):
        # Already whole tiles (polyphase's stacked phases): the kernels only
        # read the source, so no copy (dilated3x3 forward ~1 ms).
        return kernel_array(a5, shape, dtype)
    src = _workspace.scratch("winograd.source", shape, dtype)
    if mode == "zeros":
        place_planes(a5, src, (0, 0, top, left), dtype)
        return src
    rows = slice(0, h + top + bottom)
    cols = slice(0, w + left + right)
    indices_h = source_indices(h, top, bottom, mode)
    indices_w = source_indices(w, left, right, mode)
    src[..., rows, cols] = a5[:, :, :, indices_h][..., indices_w]
    _zero_outside(src, rows, cols)
    return src


def _source(a5, pads, mode: str, tiles_hw, tiling: Tiling, groups: int, dtype):
    """The tiles' source: :func:`_padded_source`, or its channels-last copy where
    :func:`_channels_last_suits` (zero padding only)."""
    if mode == "zeros" and _channels_last_suits(tiling, a5, tiles_hw, groups, dtype):
        return _padded_source_channels_last(a5, pads, tiles_hw, tiling, dtype)
    return _padded_source(a5, pads, mode, tiles_hw, tiling, dtype)


def _channels_last_suits(tiling: Tiling, a5, tiles_hw, groups: int, dtype) -> bool:
    """Whether the input tiles of a call on ``a5`` (the source before padding) come
    from a channels-last copy: split by positions, one group, one slice deep, and
    channels a whole number of vectors.

    The split by positions takes calls with few tiles and many channels,
    deep layers on small planes (res3x3_7: 4 tiles a row, 512 channels).
    There the channel-first transform's loops over a tile row are too short
    for vectors (0.44 ms a thread on res3x3_7's forward); channels last, each
    tile runs a vector of channels at a time (0.09 ms), and each thread first
    copies its own images channels last (docs/performance.md §41).
    """
    n, c, d = a5.shape[:3]
    lanes = VECTOR_BYTES // np.dtype(dtype).itemsize
    split = _work_split(n * d * tiles_hw[0], tiles_hw[1], c, groups)
    return (
        tiling.channels_last_tiles is not None
        and split == "positions"
        and groups == 1
        and d == 1
        and c % lanes == 0
    )


class _ChannelsLastSource(NamedTuple):
    """A zero-padded source the threads move channels last themselves, image by image.

    ``padded`` is ``(N, H, W, C)`` scratch; :func:`_tiles_of` fills the
    images of its tile rows from ``images`` (``(N, C, h, w)``) before their
    tiles, in the same hand-off (so the copy runs on every thread).
    """

    images: np.ndarray
    padded: np.ndarray
    top: int
    left: int


def _padded_source_channels_last(a5, pads, tiles_hw, tiling: Tiling, dtype) -> _ChannelsLastSource:
    """:func:`_padded_source` in ``"zeros"`` mode, channels last, to be filled by the threads."""
    n, c, _, h, w = a5.shape
    (top, _), (left, _) = pads
    m = tiling.size
    shape = (n, m * tiles_hw[0] + 2, m * tiles_hw[1] + 2, c)
    padded = _workspace.scratch("winograd.source_channels_last", shape, dtype)
    return _ChannelsLastSource(kernel_array(a5, (n, c, h, w), dtype), padded, top, left)


def _gradient_source(gy5, src, tiles_hw, tiling: Tiling, dtype):
    """The weight gradient's output gradient in whole tiles (:func:`_whole_tiles`), or
    channels last, to be filled by the threads, where the input is (``src``)
    and its channels are whole vectors too."""
    n, k, _, h, w = gy5.shape
    lanes = VECTOR_BYTES // np.dtype(dtype).itemsize
    if not (isinstance(src, _ChannelsLastSource) and k % lanes == 0):
        return _whole_tiles(gy5, tiles_hw, tiling, dtype)
    m = tiling.size
    shape = (n, m * tiles_hw[0], m * tiles_hw[1], k)
    padded = _workspace.scratch("winograd.gradient_channels_last", shape, dtype)
    return _ChannelsLastSource(kernel_array(gy5, (n, k, h, w), dtype), padded, 0, 0)


def _row_parts(src, total_rows: int, tiles_h: int) -> list[tuple[int, int]]:
    """Each thread's tile rows: whole images for a channels-last source, which each
    thread fills for its own images."""
    if isinstance(src, _ChannelsLastSource):
        return split_range(total_rows, numba.get_num_threads(), tiles_h)
    return thread_parts(total_rows)


def _zero_outside(a: np.ndarray, rows: slice, cols: slice) -> None:
    """Zero ``a`` outside ``[rows, cols]`` of its last two axes (the frame a copy left)."""
    a[..., : rows.start, :] = 0
    a[..., rows.stop :, :] = 0
    a[..., rows, : cols.start] = 0
    a[..., rows, cols.stop :] = 0


def _whole_tiles(gy5, tiles_hw, tiling: Tiling, dtype) -> np.ndarray:
    """The output gradient as a C-contiguous array, extended by zeros to whole tiles."""
    m = tiling.size
    shape = (*gy5.shape[:3], m * tiles_hw[0], m * tiles_hw[1])
    if gy5.shape == shape:
        return np.ascontiguousarray(gy5, dtype=dtype)
    gy = _workspace.scratch("winograd.gradient", shape, dtype)
    place_planes(gy5, gy, (0, 0, 0, 0), dtype)
    return gy


def _filter_transform(w5, tiling: Tiling, dtype, flip: bool = False) -> np.ndarray:
    """``(K, C, 1, 3, 3)`` filters -> ``U`` of shape ``(positions, K, C)``: ``U = G g Gᵀ``.

    (With groups, ``C`` is the channels per group, and ``U[ξ]`` stacks the
    groups' ``(K/G, C)`` blocks; see :func:`_grouped`.)

    :func:`~numconv.kernels.winograd_filters.transform_filters` on a range of
    filters per worker thread. With ``flip`` each filter is turned by 180°
    first (the input gradient's filters).
    """
    k, c = w5.shape[:2]
    bank = _FilterBank.of(w5, 1, tiling, dtype, flip)
    bank.transform_all()
    return bank.u.reshape(tiling.positions, k, c)


class _Block(NamedTuple):
    """One thread's share of a convolution's output channels, in the split by filters.

    Channels ``[lo, hi)``: in every group of ``groups``, the channels
    ``within`` it. Either whole groups, or part of the only group.
    """

    lo: int
    hi: int
    groups: slice
    within: slice


def _blocks(per_group: int, groups: int, count: int) -> list[_Block]:
    """Up to ``count`` blocks of ``groups × per_group`` output channels.

    Whole groups per block when there are several groups, so that a block's
    channels are contiguous and each block transforms only its own groups'
    input channels (with 1 < groups < count, fewer blocks than threads).
    """
    if groups == 1:
        return [
            _Block(lo, hi, slice(0, 1), slice(lo, hi)) for lo, hi in split_range(per_group, count)
        ]
    return [
        _Block(g0 * per_group, g1 * per_group, slice(g0, g1), slice(0, per_group))
        for g0, g1 in split_range(groups, count)
    ]


@dataclasses.dataclass(frozen=True)
class _FilterBank:
    """A call's filters and their transform ``u``, made whole or one block at a time.

    ``taps`` is the layer's ``(K, C/G)`` filters as rows of 9 and ``u`` their
    transform, ``(positions, K·C/G)``. The convolution the tiles run has the
    layer's output channels (forward, weight gradient) or, with ``flip``, its
    input channels (input gradient: filters turned by 180°, channel axes
    swapped): ``per_group`` of them in each of ``groups``.
    """

    taps: np.ndarray
    g: np.ndarray
    u: np.ndarray
    flip: bool
    layer_out: int
    layer_in: int
    groups: int

    @classmethod
    def of(cls, w5, groups: int, tiling: Tiling, dtype, flip: bool) -> _FilterBank:
        k, c = w5.shape[:2]
        taps = np.ascontiguousarray(w5, dtype=dtype).reshape(k * c, 9)
        u = _aligned.empty((tiling.positions, k * c), dtype=dtype)
        return cls(taps, tiling.g.astype(dtype), u, flip, k, c, groups)

    @property
    def per_group(self) -> int:
        return self.layer_in if self.flip else self.layer_out // self.groups

    def matrices(self) -> np.ndarray:
        """``(positions, G, out/G, in/G)``: every group's product operand, a view of ``u``."""
        u = _grouped(self.u.reshape(self.u.shape[0], self.layer_out, self.layer_in), self.groups)
        return u.transpose(0, 1, 3, 2) if self.flip else u

    def transform_all(self) -> np.ndarray:
        """:meth:`matrices`, every filter transformed, one range of them per thread."""
        filters = self.layer_out * self.layer_in
        run_parts(
            lambda b: transform_filters(self.taps, self.g, self.flip, self.u, *b),
            thread_parts(filters),
        )
        return self.matrices()

    def transform_block(self, block: _Block) -> None:
        """Transform just the filters ``matrices()[:, block.groups, block.within]`` holds."""
        layer_per_group = self.layer_out // self.groups
        if self.flip:  # every filter of the block's groups, its input channels
            k_lo, k_hi = block.groups.start * layer_per_group, block.groups.stop * layer_per_group
            c_lo, c_hi = block.within.start, block.within.stop
        else:  # its output channels, every input channel
            k_lo, k_hi, c_lo, c_hi = block.lo, block.hi, 0, self.layer_in
        transform_filter_block(
            self.taps, self.g, self.flip, self.u, self.layer_in, k_lo, k_hi, c_lo, c_hi
        )


def _filter_transform_adjoint(du, tiling: Tiling, dtype) -> np.ndarray:
    """``(positions, K, C)`` -> ``(K, C, 9)``: ``dg = Gᵀ dU G`` for every filter, the
    adjoint of :func:`_filter_transform`."""
    _, k, c = du.shape
    du = np.ascontiguousarray(du).reshape(tiling.positions, k * c)
    g = tiling.g.astype(dtype)
    gw = _aligned.empty((k * c, 9), dtype=dtype)
    run_parts(lambda b: transform_filters_adjoint(du, g, gw, *b), thread_parts(k * c))
    return gw


def _grouped(a: np.ndarray, groups: int) -> np.ndarray:
    """``(positions, channels, …)`` -> ``(positions, groups, channels / groups, …)``, a view."""
    return a.reshape(a.shape[0], groups, a.shape[1] // groups, *a.shape[2:])


def _chunk_rows(channels_in: int, channels_out: int, tiles_w: int, tiling: Tiling, dtype) -> int:
    """Tile rows per chunk: CHUNK_BYTES of transformed tiles, but at least MIN_TILES tiles."""
    row_bytes = tiling.positions * (channels_in + channels_out) * tiles_w
    row_bytes *= np.dtype(dtype).itemsize
    return max(CHUNK_BYTES // row_bytes, -(-MIN_TILES // tiles_w))


def _chunk_buffers(c: int, k: int, chunk: int, tiles_w: int, positions: int, dtype):
    """Reusable scratch for a worker's chunks; ``views(rows)`` shapes it for one chunk.

    Returns ``views``, which gives the ``(positions, c, T)`` transformed tiles
    and the ``(positions, k, T)`` products (or their gradient) of ``rows`` tile
    rows, both C-contiguous.
    """
    # Kept between calls: fresh buffers on the worker threads cost a page
    # fault per 4 KiB on every call (see numconv._workspace).
    v_buffer = _workspace.scratch("winograd.tiles", (positions * c * chunk * tiles_w,), dtype)
    m_buffer = _workspace.scratch("winograd.products", (positions * k * chunk * tiles_w,), dtype)

    def views(rows: int):
        tiles = rows * tiles_w
        return (
            v_buffer[: positions * c * tiles].reshape(positions, c, tiles),
            m_buffer[: positions * k * tiles].reshape(positions, k, tiles),
        )

    return views


# The split by filters repeats the input tiles' transform in every thread
# (see _work_split): up to this many input channels × tiles it costs less than
# the three hand-offs it saves.
FILTER_SPLIT_MAX_CHANNEL_TILES = 1 << 15


def _work_split(total_rows: int, tiles_w: int, channels: int, groups: int) -> str:
    """How the threads share a call: ``"tiles"``, ``"filters"`` or ``"positions"``.

    - ``"tiles"``: each thread a run of tile rows, in cache-sized chunks that
      go through transforms, products and back (the filters transformed
      first, in a hand-off of their own). When each thread gets at least
      MIN_TILES tiles.
    - Fewer tiles (deep layers on small images: b1_3x3_14 has 49 F(2×2)
      tiles of 256 channels, res3x3_7 128 of 512) are transformed all at
      once, and the threads share the channels or the products:

      - ``"filters"``: each thread a block of output channels over every
        tile (:func:`_by_filters`), one hand-off for the whole call. It
        repeats the input tiles' transform in every thread unless each
        thread has groups of its own, so only up to
        FILTER_SPLIT_MAX_CHANNEL_TILES (``channels`` are the convolution's
        input channels): b1_3x3_14's forward 0.74 -> 0.59 ms, while
        res3x3_7's (65536) went from 4.7-5.1 to 5.3-5.6 ms. With whole
        groups a thread it won every grouped layer measured, 1.3-2.8×
        (docs/performance.md §40).
      - ``"positions"``: each thread half of the ξ positions' products, as
        long as the call has tiles for BLAS and each ``U[ξ]`` read by one
        thread only (res3x3_7's weight gradient 22 -> 15 ms against the
        tiles split), with the transforms on either side split by tile
        rows: four hand-offs (filters, input tiles, products, output tiles).
        With F(2×2), one group and channels in whole vectors the input
        tiles come from a channels-last source (:func:`_channels_last_suits`).
    """
    threads = numba.get_num_threads()
    tiles = total_rows * tiles_w
    if tiles >= MIN_TILES * threads:
        return "tiles"
    if groups >= threads or channels * tiles <= FILTER_SPLIT_MAX_CHANNEL_TILES:
        return "filters"
    return "positions"


def _output(shape, size, dtype, slot: str, result_slot: str | None) -> tuple[np.ndarray, bool]:
    """The array tiles are written to, and whether it is the result itself.

    When the tiles overhang ``size`` the whole tiles go to scratch and only
    the cut is copied out, so an odd-sized layer allocates one output, not two.
    With ``result_slot`` the result is scratch, not a fresh array.
    """
    whole = tuple(shape[3:]) == tuple(size)
    if not whole:
        return _workspace.scratch(slot, shape, dtype), False
    if result_slot is not None:
        return _workspace.scratch(result_slot, shape, dtype), True
    return _aligned.empty(shape, dtype), True


def _cut(dst: np.ndarray, whole: bool, size, result_slot: str | None) -> np.ndarray:
    """The first ``size`` rows and columns of ``dst`` as a fresh C-contiguous copy, or
    ``dst`` itself when it is whole or the caller takes scratch results (which overhang)."""
    if whole or result_slot is not None:
        return dst
    return np.ascontiguousarray(dst[..., : size[0], : size[1]])


def _convolve(
    src, bank: _FilterBank, bias, tiles_hw, tiling: Tiling, dtype, size, result_slot=None
) -> np.ndarray:
    """Valid 3×3 correlation of ``src`` (padded by :func:`_padded_source`) with ``bank``'s filters.

    Returns ``(N, K, D, *size)``, the first ``size`` rows and columns of the
    ``m·tiles_h × m·tiles_w`` result, as a fresh array. With ``result_slot``,
    for a caller that only reads the result before its next call, it is
    scratch instead, and whole tiles: ``(N, K, D, m·tiles_h, m·tiles_w)``,
    the result in its first ``size`` rows and columns (the cut would be a copy).
    """
    if isinstance(src, _ChannelsLastSource):  # see _channels_last_suits
        (n, c), d = src.images.shape[:2], 1
    else:
        n, c, d = src.shape[:3]
    k = bank.groups * bank.per_group
    tiles_h, tiles_w = tiles_hw
    m, positions = tiling.size, tiling.positions
    input_tiles, output_tiles = tiling.input_tiles, tiling.output_tiles
    dst, whole = _output(
        (n, k, d, m * tiles_h, m * tiles_w), size, dtype, "winograd.output", result_slot
    )
    bias = np.zeros(k, dtype) if bias is None else np.ascontiguousarray(bias, dtype=dtype)
    total_rows = n * d * tiles_h
    split = _work_split(total_rows, tiles_w, c, bank.groups)
    if split == "filters":
        _by_filters(src, bank, bias, dst, tiles_hw, tiling, dtype)
        return _cut(dst, whole, size, result_slot)

    u = bank.transform_all()
    groups = bank.groups
    if split == "positions":
        prod = _workspace.scratch("winograd.products", (positions, k, total_rows * tiles_w), dtype)
        rows = _row_parts(src, total_rows, tiles_h)
        target, v = _tile_buffers(src, positions, total_rows * tiles_w, dtype, "winograd.tiles")
        run_parts(
            lambda b: _tiles_of(
                src, input_tiles, tiling.channels_last_tiles, target, b[0], b[1] - b[0], tiles_h,
                b[0] * tiles_w,
            ),
            rows,
        )  # fmt: skip
        run_parts(
            lambda b: np.matmul(
                u[b[0] : b[1]],
                _grouped(v[b[0] : b[1]], groups),
                out=_grouped(prod[b[0] : b[1]], groups),
            ),
            thread_parts(positions),
        )
        run_parts(
            lambda b: output_tiles(prod, bias, dst, b[0], b[1] - b[0], tiles_h, b[0] * tiles_w, 0),
            rows,
        )
        return _cut(dst, whole, size, result_slot)

    chunk = _chunk_rows(c, k, tiles_w, tiling, dtype)

    def part(bounds):  # writes only its own tile rows
        lo, hi = bounds
        views = _chunk_buffers(c, k, chunk, tiles_w, positions, dtype)
        for row0 in range(lo, hi, chunk):
            rows = min(chunk, hi - row0)
            v, prod = views(rows)
            input_tiles(src, v, row0, rows, tiles_h, 0, 0)
            np.matmul(u, _grouped(v, groups), out=_grouped(prod, groups))
            output_tiles(prod, bias, dst, row0, rows, tiles_h, 0, 0)

    run_parts(part, thread_parts(total_rows))
    return _cut(dst, whole, size, result_slot)


def _tile_buffers(src, positions: int, tiles: int, dtype, slot: str):
    """Scratch ``slot`` for ``tiles`` tiles of ``src``: the array :func:`_tiles_of` writes,
    and it as ``(positions, channels, tiles)``. From a channels-last source the
    kernels write ``(positions, tiles, channels)`` and the view is its
    transpose, which BLAS takes as it is."""
    if isinstance(src, _ChannelsLastSource):
        channels = src.images.shape[1]
        last = _workspace.scratch(slot, (positions, tiles, channels), dtype)
        return last, last.transpose(0, 2, 1)
    first = _workspace.scratch(slot, (positions, src.shape[1], tiles), dtype)
    return first, first


def _tiles_of(src, first, last, target, row0: int, rows: int, tiles_h: int, t0: int) -> None:
    """Tile rows ``row0 … row0 + rows`` of ``src`` into ``target`` from tile ``t0`` on:
    with kernel ``first`` from a channel-first source, or ``last`` from a
    channels-last one, whose images this part fills first (whole images a
    part: :func:`_row_parts`)."""
    if isinstance(src, _ChannelsLastSource):
        n0, n1 = row0 // tiles_h, -(-(row0 + rows) // tiles_h)
        pad_channels_last(src.images, src.padded, src.top, src.left, n0, n1)
        last(src.padded, target, row0, rows, tiles_h, t0)
    else:
        first(src, target, row0, rows, tiles_h, t0, 0)


def _by_filters(src, bank: _FilterBank, bias, dst, tiles_hw, tiling: Tiling, dtype) -> None:
    """:func:`_convolve` split by output channels: each thread one block, over every tile.

    A thread transforms its block's filters and its groups' input tiles
    (every input channel when there is one group: that transform is done
    once per thread), runs the products and writes its block's output
    channels. Blocks write disjoint filters and channels: no races.
    """
    n, c, d = src.shape[:3]
    tiles_h, tiles_w = tiles_hw
    positions = tiling.positions
    rows = n * d * tiles_h
    inputs = c // bank.groups  # the convolution's input channels per group
    matrices = bank.matrices()

    def part(block: _Block):
        groups = block.groups.stop - block.groups.start
        bank.transform_block(block)
        v = _workspace.scratch(
            "winograd.tiles", (positions, groups * inputs, rows * tiles_w), dtype
        )
        tiling.input_tiles(src, v, 0, rows, tiles_h, 0, block.groups.start * inputs)
        prod = _workspace.scratch(
            "winograd.products", (positions, block.hi - block.lo, rows * tiles_w), dtype
        )
        np.matmul(
            matrices[:, block.groups, block.within],
            v.reshape(positions, groups, inputs, -1),
            out=prod.reshape(positions, groups, -1, rows * tiles_w),
        )
        tiling.output_tiles(prod, bias, dst, 0, rows, tiles_h, 0, block.lo)

    run_parts(part, _blocks(bank.per_group, bank.groups, numba.get_num_threads()))


def forward_tiled(
    tiling: Tiling, plan: ConvPlan, x5, w5, bias, dtype, result_slot=None
) -> np.ndarray:
    """The forward convolution with ``tiling`` (the algorithm modules' ``forward``);
    its result in scratch, overhanging, with ``result_slot`` (see :func:`_convolve`)."""
    tiles_hw = _tiles(plan.out, tiling)
    src = _source(x5, plan.pads[1:], plan.padding_mode, tiles_hw, tiling, plan.groups, dtype)
    bank = _FilterBank.of(w5, plan.groups, tiling, dtype, flip=False)
    return _convolve(src, bank, bias, tiles_hw, tiling, dtype, plan.out[1:], result_slot)


def input_grad_tiled(
    tiling: Tiling, plan: ConvPlan, w5, gy5, dtype, result_slot=None
) -> np.ndarray:
    """The input gradient with ``tiling`` (the algorithm modules' ``input_grad``); in
    ``"zeros"`` mode its result in scratch, overhanging, with ``result_slot`` (see
    :func:`_convolve`)."""
    # A stride-1 convolution's input gradient is the full correlation of gy
    # with the filters turned by 180° and their channel axes swapped: a valid
    # correlation of gy padded by 2, which gives the padded input's gradient.
    bank = _FilterBank.of(w5, plan.groups, tiling, dtype, flip=True)
    (top, bottom), (left, right) = plan.pads[1:]
    if plan.padding_mode == "zeros":  # only the unpadded part is wanted: compute just that
        tiles_hw = _tiles(plan.spatial, tiling)
        pads = ((2 - top, 2 - bottom), (2 - left, 2 - right))
        src = _source(gy5, pads, "zeros", tiles_hw, tiling, plan.groups, dtype)
        return _convolve(src, bank, None, tiles_hw, tiling, dtype, plan.spatial[1:], result_slot)
    padded = plan.padded
    tiles_hw = _tiles(padded, tiling)
    src = _padded_source(gy5, ((2, 2), (2, 2)), "zeros", tiles_hw, tiling, dtype)
    gxp = _convolve(src, bank, None, tiles_hw, tiling, dtype, padded[1:])
    return pad_adjoint_channels_last(
        gxp.transpose(0, 2, 3, 4, 1), plan.spatial, plan.pads, plan.padding_mode
    )


def weight_grad_tiled(tiling: Tiling, plan: ConvPlan, x5, gy5, dtype) -> np.ndarray:
    """The weight gradient with ``tiling`` (the algorithm modules' ``weight_grad``)."""
    tiles_h, tiles_w = tiles_hw = _tiles(plan.out, tiling)
    src = _source(x5, plan.pads[1:], plan.padding_mode, tiles_hw, tiling, plan.groups, dtype)
    gy = _gradient_source(gy5, src, tiles_hw, tiling, dtype)
    n, c, d = x5.shape[:3]
    k = gy5.shape[1]
    groups = plan.groups
    positions = tiling.positions
    input_tiles, gradient_tiles = tiling.input_tiles, tiling.gradient_tiles
    total_rows = n * d * tiles_h
    chunk = _chunk_rows(c, k, tiles_w, tiling, dtype)

    split = _work_split(total_rows, tiles_w, c, groups)
    if split == "filters":
        gw = _weight_grad_by_filters(src, gy, groups, tiles_hw, tiling, dtype)
        return gw.reshape(plan.weight5)
    if split == "positions":
        tiles = total_rows * tiles_w
        target, v = _tile_buffers(src, positions, tiles, dtype, "winograd.tiles")
        gradient_target, dm = _tile_buffers(gy, positions, tiles, dtype, "winograd.products")

        def transform(bounds):
            lo, hi = bounds
            _tiles_of(src, input_tiles, tiling.channels_last_tiles, target, lo, hi - lo, tiles_h,
                      lo * tiles_w)  # fmt: skip
            _tiles_of(gy, gradient_tiles, tiling.channels_last_gradient_tiles, gradient_target, lo,
                      hi - lo, tiles_h, lo * tiles_w)  # fmt: skip

        du = _aligned.empty((positions, k, c // groups), dtype=dtype)
        run_parts(transform, _row_parts(src, total_rows, tiles_h))
        run_parts(
            lambda b: np.matmul(
                _grouped(dm[b[0] : b[1]], groups),
                _grouped(v[b[0] : b[1]], groups).transpose(0, 1, 3, 2),
                out=_grouped(du[b[0] : b[1]], groups),
            ),
            thread_parts(positions),
        )
        return _filter_transform_adjoint(du, tiling, dtype).reshape(plan.weight5)

    def part(bounds):  # every tile feeds every filter: one partial dU per part
        lo, hi = bounds
        du = _aligned.empty((positions, k, c // groups), dtype=dtype)
        product = _aligned.empty(du.shape, du.dtype)
        views = _chunk_buffers(c, k, chunk, tiles_w, positions, dtype)
        for row0 in range(lo, hi, chunk):
            rows = min(chunk, hi - row0)
            v, dm = views(rows)
            input_tiles(src, v, row0, rows, tiles_h, 0, 0)
            gradient_tiles(gy, dm, row0, rows, tiles_h, 0, 0)
            # The first chunk writes the partial sum, the others add to it.
            np.matmul(
                _grouped(dm, groups),
                _grouped(v, groups).transpose(0, 1, 3, 2),
                out=_grouped(du if row0 == lo else product, groups),
            )
            if row0 != lo:
                du += product
        return du

    partials = run_parts(part, thread_parts(total_rows))
    du = partials[0]
    for partial in partials[1:]:
        du += partial
    return _filter_transform_adjoint(du, tiling, dtype).reshape(plan.weight5)


def _weight_grad_by_filters(src, gy, groups: int, tiles_hw, tiling: Tiling, dtype) -> np.ndarray:
    """The weight gradient split by output channels (see :func:`_work_split`).

    Each thread takes a block of output channels over every tile: its groups'
    input tiles, its channels' gradient tiles, their products (the block's
    rows of ``dU``, complete: no partial sums to add) and their adjoint
    transform. Returns ``(K·C/G, 9)``.
    """
    n, c, d = src.shape[:3]
    k = gy.shape[1]
    tiles_h, tiles_w = tiles_hw
    positions = tiling.positions
    rows = n * d * tiles_h
    inputs = c // groups
    du = _aligned.empty((positions, k, inputs), dtype=dtype)
    gw = _aligned.empty((k * inputs, 9), dtype=dtype)
    g = tiling.g.astype(dtype)

    def part(block: _Block):
        count = block.groups.stop - block.groups.start
        v = _workspace.scratch("winograd.tiles", (positions, count * inputs, rows * tiles_w), dtype)
        tiling.input_tiles(src, v, 0, rows, tiles_h, 0, block.groups.start * inputs)
        dm = _workspace.scratch(
            "winograd.products", (positions, block.hi - block.lo, rows * tiles_w), dtype
        )
        tiling.gradient_tiles(gy, dm, 0, rows, tiles_h, 0, block.lo)
        np.matmul(
            dm.reshape(positions, count, -1, rows * tiles_w),
            v.reshape(positions, count, inputs, -1).transpose(0, 1, 3, 2),
            out=_grouped(du, groups)[:, block.groups, block.within],
        )
        flat = du.reshape(positions, k * inputs)
        transform_filters_adjoint(flat, g, gw, block.lo * inputs, block.hi * inputs)

    run_parts(part, _blocks(k // groups, groups, numba.get_num_threads()))
    return gw


def forward(plan: ConvPlan, x5, w5, bias, dtype, result_slot=None) -> np.ndarray:
    return forward_tiled(F2, plan, x5, w5, bias, dtype, result_slot)


def input_grad(plan: ConvPlan, w5, gy5, dtype, result_slot=None) -> np.ndarray:
    return input_grad_tiled(F2, plan, w5, gy5, dtype, result_slot)


def weight_grad(plan: ConvPlan, x5, gy5, dtype) -> np.ndarray:
    return weight_grad_tiled(F2, plan, x5, gy5, dtype)
