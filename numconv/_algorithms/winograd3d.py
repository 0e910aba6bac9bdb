"""3-d Winograd: every kernel depth from one transform of each input plane.

A ``KD×3×3`` layer of stride 1 is, along depth, a sum of ``KD`` one-deep
``1×3×3`` layers: output plane ``o`` reads the padded input planes
``o … o + KD − 1``. :mod:`numconv._algorithms.depth_slices` runs it that way,
as ``KD`` Winograd calls, so each input plane is transformed ``KD`` times,
each output plane ``KD`` times, and the outputs are summed. Here every plane
is transformed once and the depth sum happens inside the products:

- forward: the padded source is laid out depth-major, ``(N, D, C, H, W)``, so
  one image's planes ``o … o + KD − 1`` are ``KD·C`` consecutive channels.
  Their transformed tiles ``V[ξ]`` are a contiguous ``(KD·C) × T`` block, and
  output plane ``o`` is one product ``M[ξ] = [U₀ U₁ … ][ξ] @ V[ξ]`` per
  transform position ξ, with the kernel depths' transformed filters side by
  side (``K × KD·C``): three times the inner dimension of a one-deep product,
  no sum of outputs;
- input gradient: the forward of the output gradient padded by
  ``KD − 1 − front`` in depth (and ``2 − pad`` along H and W), with the
  filters turned by 180° in all three axes and their channel axes swapped;
- weight gradient: the source channel-first, ``(N, C, D, H, W)``, so the
  transformed tiles of a run of ``L`` planes starting at depth ``o + a`` are
  a contiguous column block; kernel depth ``a``'s filter gradient is one
  product ``dU_a[ξ] += dM[ξ] @ V[ξ][:, (o + a)·T …]ᵀ`` with ``L·T`` as its
  inner dimension.

Work is split between the threads by output planes; each worker takes its
planes in chunks of ``L`` and transforms the chunk's ``L + KD − 1`` input
planes (the ``KD − 1`` at the end are transformed again by the next chunk).
The tile transforms, the filter transform and the F(2×2) / F(4×4) choice are
the 2-d Winograd algorithm's (:mod:`numconv._algorithms.winograd`).

Takes one-group layers with zero padding and no depth dilation: a grouped
layer's channels of one group are not consecutive in the depth-major layout,
and a dilated one's planes are not; those run as depth slices.
"""

from __future__ import annotations

import numpy as np

from .. import _aligned, _workspace
from .._padding import place_planes
from .._params import ConvPlan
from .._workers import run_parts, thread_parts
from . import winograd, winograd4
from .common import select_inner
from .depth_slices import one_deep

NAME = "winograd3d"

# Transformed input tiles a worker holds at once. Each chunk of output planes
# redoes the transforms of KD − 1 input planes, but the weight gradient's
# products read a chunk's tiles KD times: on video3d (32 channels, 56²,
# F(4×4), 0.9 MB of tiles a plane) 2 and 4 MiB chunks took its weight
# gradient 18.3-20.4 ms, 8 to 64 MiB 23.7-26.6; the forward was 17-19 ms
# throughout.
CHUNK_BYTES = 4 << 20


def applies(plan: ConvPlan) -> bool:
    """Kernels ``KD×3×3`` with ``KD > 1``, stride 1, undilated, one group, zero padding."""
    return (
        plan.kernel[0] > 1
        and plan.kernel[1:] == (3, 3)
        and plan.stride == (1, 1, 1)
        and plan.dilation == (1, 1, 1)
        and plan.groups == 1
        and plan.padding_mode == "zeros"
    )


def _tiling(plan: ConvPlan, dtype) -> winograd.Tiling:
    """F(4×4) where the dispatch takes it for a one-deep layer of the same size, else F(2×2)."""
    inner = select_inner("forward", one_deep(plan), dtype)
    return winograd4.F4 if inner is winograd4 else winograd.F2


def _source(a5, depth_major: bool, depth: int, pads, tiles_hw, tiling, dtype) -> np.ndarray:
    """``a5`` zero-padded into scratch: ``depth`` planes and whole tiles along H and W.

    ``pads`` are the leading pads ``(front, top, left)``; a negative one crops.
    The result is ``(N, depth, C, H, W)`` if ``depth_major``, else
    ``(N, C, depth, H, W)``; planes before ``front`` or past the input are zeros.
    """
    n, c = a5.shape[:2]
    m = tiling.size
    plane = (m * tiles_hw[0] + 2, m * tiles_hw[1] + 2)
    front, top, left = pads
    if depth_major:
        src = _workspace.scratch("winograd3d.source", (n, depth, c, *plane), dtype)
        place_planes(a5.transpose(0, 2, 1, 3, 4), src, (front, 0, top, left), dtype)
    else:
        src = _workspace.scratch("winograd3d.source", (n, c, depth, *plane), dtype)
        place_planes(a5, src, (0, front, top, left), dtype)
    return src


def _stacked_filters(w5, tiling, dtype) -> np.ndarray:
    """``(K, C, KD, 3, 3)`` -> ``(positions, K, KD·C)``: each depth's ``U`` side by side."""
    k, c, kd = w5.shape[:3]
    depth_major = np.ascontiguousarray(w5.transpose(0, 2, 1, 3, 4), dtype=dtype)
    return winograd._filter_transform(depth_major.reshape(k, kd * c, 1, 3, 3), tiling, dtype)


def _chunk_planes(plane_bytes: int, kernel_depth: int) -> int:
    """Output planes per chunk: CHUNK_BYTES of input tiles, at least ``KD − 1`` planes."""
    return max(kernel_depth - 1, CHUNK_BYTES // plane_bytes - (kernel_depth - 1))


def _chunks(lo: int, hi: int, depth: int, length: int):
    """``(image, first plane, plane count)`` of each chunk of output planes ``[lo, hi)``.

    Planes are numbered over ``(image, depth)``; a chunk never spans two images.
    """
    plane = lo
    while plane < hi:
        image, first = divmod(plane, depth)
        count = min(length, hi - plane, depth - first)
        yield image, first, count
        plane += count


def _convolve(src, u, bias, tiles_hw, tiling, dtype, size) -> np.ndarray:
    """Valid ``KD×3×3`` correlation of a depth-major ``src`` with stacked filters ``u``.

    ``src`` is ``(N, D + KD − 1, C, H, W)`` from :func:`_source`, ``u`` is
    ``(positions, K, KD·C)``. Returns ``(N, K, D, *size)``, a fresh array.
    """
    n, depth_in, c = src.shape[:3]
    k = u.shape[1]
    kernel_depth = u.shape[2] // c
    depth = depth_in - kernel_depth + 1
    tiles_h, tiles_w = tiles_hw
    tiles = tiles_h * tiles_w
    m, positions = tiling.size, tiling.positions
    shape = (n, k, depth, m * tiles_h, m * tiles_w)
    whole = shape[3:] == tuple(size)
    dst = (
        _aligned.empty(shape, dtype)
        if whole
        else _workspace.scratch("winograd3d.output", shape, dtype)
    )
    bias = np.zeros(k, dtype) if bias is None else np.ascontiguousarray(bias, dtype=dtype)
    plane_bytes = positions * c * tiles * np.dtype(dtype).itemsize
    length = _chunk_planes(plane_bytes, kernel_depth)

    def part(bounds):  # writes only its own output planes
        for image, first, count in _chunks(*bounds, depth, length):
            planes_in = count + kernel_depth - 1
            # The chunk's input planes as one image of planes_in·C channels.
            window = src[image, first : first + planes_in].reshape(
                1, planes_in * c, 1, *src.shape[3:]
            )
            v = _workspace.scratch("winograd3d.tiles", (positions, planes_in * c, tiles), dtype)
            prod = _workspace.scratch("winograd3d.products", (positions, k, count * tiles), dtype)
            tiling.input_tiles(window, v, 0, tiles_h, tiles_h, 0, 0)
            for plane in range(count):
                np.matmul(
                    u,
                    v[:, plane * c : (plane + kernel_depth) * c],
                    out=prod[:, :, plane * tiles : (plane + 1) * tiles],
                )
            tiling.output_tiles(
                prod, bias, dst, (image * depth + first) * tiles_h, count * tiles_h, tiles_h, 0, 0
            )

    run_parts(part, thread_parts(n * depth))
    return dst if whole else np.ascontiguousarray(dst[..., : size[0], : size[1]])


def forward(plan: ConvPlan, x5, w5, bias, dtype) -> np.ndarray:
    tiling = _tiling(plan, dtype)
    tiles_hw = winograd._tiles(plan.out, tiling)
    depth = plan.out[0] + plan.kernel[0] - 1
    leading = tuple(before for before, _ in plan.pads)
    src = _source(x5, True, depth, leading, tiles_hw, tiling, dtype)
    return _convolve(
        src, _stacked_filters(w5, tiling, dtype), bias, tiles_hw, tiling, dtype, plan.out[1:]
    )


def input_grad(plan: ConvPlan, w5, gy5, dtype) -> np.ndarray:
    # A stride-1 convolution's input gradient is the full correlation of gy
    # with the filters turned by 180° and their channel axes swapped; only the
    # unpadded input's part is computed (as the 2-d Winograd input gradient does).
    tiling = _tiling(plan, dtype)
    tiles_hw = winograd._tiles(plan.spatial, tiling)
    kernel_depth = plan.kernel[0]
    depth = plan.spatial[0] + kernel_depth - 1
    reach = (kernel_depth - 1, 2, 2)
    leading = tuple(r - before for r, (before, _) in zip(reach, plan.pads, strict=True))
    src = _source(gy5, True, depth, leading, tiles_hw, tiling, dtype)
    turned = w5[:, :, ::-1, ::-1, ::-1].transpose(1, 0, 2, 3, 4)
    u = _stacked_filters(turned, tiling, dtype)
    return _convolve(src, u, None, tiles_hw, tiling, dtype, plan.spatial[1:])


def weight_grad(plan: ConvPlan, x5, gy5, dtype) -> np.ndarray:
    tiling = _tiling(plan, dtype)
    tiles_h, tiles_w = tiles_hw = winograd._tiles(plan.out, tiling)
    tiles = tiles_h * tiles_w
    kernel_depth = plan.kernel[0]
    depth = plan.out[0]
    depth_in = depth + kernel_depth - 1
    leading = tuple(before for before, _ in plan.pads)
    src = _source(x5, False, depth_in, leading, tiles_hw, tiling, dtype)
    gy = winograd._whole_tiles(gy5, tiles_hw, tiling, dtype)
    n, c = src.shape[:2]
    k = gy.shape[1]
    positions = tiling.positions
    plane_bytes = positions * c * tiles * np.dtype(dtype).itemsize
    length = _chunk_planes(plane_bytes, kernel_depth)

    def part(bounds):  # every tile feeds every filter: one partial dU per part
        du = _aligned.empty((positions, k, kernel_depth, c), dtype=dtype)
        product = _aligned.empty((positions, k, c), dtype=dtype)
        started = False
        for image, first, count in _chunks(*bounds, depth, length):
            planes_in = count + kernel_depth - 1
            v = _workspace.scratch("winograd3d.tiles", (positions, c, planes_in * tiles), dtype)
            dm = _workspace.scratch("winograd3d.products", (positions, k, count * tiles), dtype)
            tiling.input_tiles(
                src, v, (image * depth_in + first) * tiles_h, planes_in * tiles_h, tiles_h, 0, 0
            )
            tiling.gradient_tiles(
                gy, dm, (image * depth + first) * tiles_h, count * tiles_h, tiles_h, 0, 0
            )
            for a in range(kernel_depth):
                # Input planes first + a … meet output planes first … (count of each).
                shifted = v[:, :, a * tiles : (a + count) * tiles].transpose(0, 2, 1)
                # The first chunk writes the partial sum, the others add to it.
                np.matmul(dm, shifted, out=product if started else du[:, :, a])
                if started:
                    du[:, :, a] += product
            started = True
        return du

    partials = run_parts(part, thread_parts(n * depth))
    du = partials[0]
    for partial in partials[1:]:
        du += partial
    gw = winograd._filter_transform_adjoint(
        du.reshape(positions, k, kernel_depth * c), tiling, dtype
    )
    return np.ascontiguousarray(gw.reshape(k, kernel_depth, c, 3, 3).transpose(0, 2, 1, 3, 4))
