"""The dispatch's algorithms: each one forced, on shapes that exercise its own edges.

The torch and reference test modules already run once per algorithm (the
``each_algorithm`` fixture); this module covers what is particular to one:
the GEMM algorithms' tiles (a tile may be a single output row or position,
and tile edges cut windows in col2im), Winograd's two ways of splitting work and its float32
accuracy, the tap sums' tasks and register blocks, and the registry itself.
"""

from __future__ import annotations

import dataclasses
import math

import numba
import numpy as np
import pytest
from helpers import assert_close, torch_conv_grads
from naive import conv as naive_conv

import numconv.functional as F
from numconv import _dispatch
from numconv._algorithms import depthwise as _depthwise
from numconv._algorithms import (
    gemm,
    phase_sums,
    planar_gemm,
    tap_sums,
    winograd,
    winograd3d,
    winograd4,
)
from numconv._algorithms import pointwise as _pointwise


def test_every_algorithm_is_tested_by_the_fixture():
    from conftest import CONV_ALGORITHMS

    assert sorted(CONV_ALGORITHMS) == sorted(_dispatch.ALGORITHMS)


def test_unknown_algorithm_is_refused():
    with pytest.raises(ValueError, match="unknown algorithm"):
        with _dispatch.forced("winograd-by-hand"):
            pass


def _all_three(x, w, b, gy, **kw):
    nd = w.ndim - 2
    return (
        getattr(F, f"conv{nd}d")(x, w, b, **kw),
        getattr(F, f"conv{nd}d_input_grad")(x.shape, w, gy, **kw),
        getattr(F, f"conv{nd}d_weight_grad")(x, w.shape, gy, **kw),
    )


def _assert_matches_direct(algorithm, x, w, b, gy, **kw):
    """All three ops with ``algorithm`` forced (``None``: the dispatch's own choice)
    equal the direct algorithm's."""
    with _dispatch.forced("direct"):
        expected = _all_three(x, w, b, gy, **kw)
    if algorithm is None:
        got = _all_three(x, w, b, gy, **kw)
    else:
        with _dispatch.forced(algorithm):
            got = _all_three(x, w, b, gy, **kw)
    for g, e in zip(got, expected, strict=True):
        assert_close(g, e, np.float64)


# Each GEMM algorithm with the name of its column-gathering kernel.
GEMMS = [(gemm, "gather_columns"), (planar_gemm, "gather_planar")]


@pytest.mark.parametrize("algorithm", [gemm, planar_gemm], ids=lambda a: a.NAME)
@pytest.mark.parametrize("tile_bytes", [1, 700, 5000, 1 << 30])
@pytest.mark.parametrize(
    "shape, c_out, kernel, kw",
    [
        ((3, 4, 7, 9), 6, (3, 3), dict(stride=1, padding=1)),
        ((1, 4, 7, 9), 6, (3, 3), dict(stride=1, padding=1)),  # one image: split positions
        ((7, 2, 6, 7), 16, (3, 3), dict(padding=1)),  # planar: several images per tile
        ((6, 4, 5, 6), 6, (3, 3), dict(stride=2, padding=1, groups=2)),  # ... and groups
        ((2, 4, 9, 8), 6, (3, 2), dict(stride=(2, 1), padding=(1, 0), dilation=2, groups=2)),
        ((2, 2, 5, 6, 7), 4, (2, 3, 2), dict(stride=(1, 2, 1), padding=1, groups=2)),
        ((2, 3, 13), 4, (5,), dict(stride=3, padding="same", padding_mode="circular")),
    ],
)
def test_gemm_tiles_of_any_size_match_the_direct_algorithm(monkeypatch, rng, algorithm,
                                                           tile_bytes, shape, c_out, kernel,
                                                           kw):  # fmt: skip
    """One output row (or position) per tile up to one tile for all: tile edges change nothing."""
    groups = kw.get("groups", 1)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((c_out, shape[1] // groups, *kernel))
    b = rng.standard_normal(c_out)
    y = getattr(F, f"conv{len(kernel)}d")(x, w, b, **kw)
    gy = rng.standard_normal(y.shape)
    monkeypatch.setattr(algorithm, "TILE_BYTES", tile_bytes)
    _assert_matches_direct(algorithm.NAME, x, w, b, gy, **kw)


@pytest.mark.parametrize("algorithm, gather", GEMMS, ids=lambda a: getattr(a, "NAME", a))
def test_gemm_scratch_stays_within_twice_input_plus_output(monkeypatch, rng, algorithm, gather):
    """A call whose columns would be 9x its input gets tiles, not one big im2col."""
    seen = []
    real = getattr(algorithm, gather)

    def spy(xp, cols, *args):
        seen.append(cols.nbytes)
        return real(xp, cols, *args)

    monkeypatch.setattr(algorithm, gather, spy)
    monkeypatch.setattr(algorithm, "TILE_BYTES", 1 << 30)  # only the memory bound limits tiles
    x = rng.standard_normal((2, 8, 20, 20)).astype(np.float32)
    w = rng.standard_normal((2, 8, 3, 3)).astype(np.float32)
    with _dispatch.forced(algorithm.NAME):
        y = F.conv2d(x, w, padding=1)
    assert len(seen) > 1
    assert max(seen) <= 2 * (x.nbytes + y.nbytes)
    assert_close(y, naive_conv(x, w, None, 1, 1, 1, 1, "zeros"), np.float32)


@pytest.mark.parametrize(
    "x_shape, w_shape, images",
    [
        ((64, 3, 32, 32), (32, 3, 3, 3), 16),  # cifar_first: 4 tiles of 16 images
        ((7, 2, 6, 7), (16, 2, 3, 3), 4),  # 4 + 3
        ((1, 3, 32, 32), (32, 3, 3, 3), 1),  # one image: position tiles
    ],
)
def test_planar_gemm_tiles_are_balanced_and_cover_every_position_once(x_shape, w_shape, images):
    plan = _plan(np.empty(x_shape), np.empty(w_shape), dict(padding=1))
    tiles = planar_gemm._tiles(plan, np.float32, math.prod(x_shape))
    assert len(tiles) % numba.get_num_threads() == 0  # one equal share per thread
    assert max(n1 - n0 for n0, n1, _, _ in tiles) == images
    counts = np.zeros((x_shape[0], math.prod(plan.out)), dtype=int)
    for n0, n1, p0, p1 in tiles:
        counts[n0:n1, p0:p1] += 1
    np.testing.assert_array_equal(counts, 1)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("batch", [1, 3])
def test_planar_gemm_thread_counts_match_the_direct_algorithm(rng, threads, batch):
    """One part, or two: sharing an image's input gradient between parts, or not."""
    x = rng.standard_normal((batch, 5, 12, 11))
    w = rng.standard_normal((7, 5, 3, 3))
    b = rng.standard_normal(7)
    gy = rng.standard_normal((batch, 7, 6, 6))
    kw = dict(stride=2, padding=1)
    previous = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        _assert_matches_direct("planar_gemm", x, w, b, gy, **kw)
    finally:
        numba.set_num_threads(previous)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "images, positions", [((0, 3), (0, 37)), ((1, 2), (5, 30)), ((2, 3), (36, 37))]
)
def test_channel_bias_is_added_to_its_block_only(rng, dtype, images, positions):
    """The per-channel bias goes to the images and positions asked for, exactly as NumPy adds it."""
    from numconv.kernels.bias import add_channel_bias

    y = rng.standard_normal((3, 4, 37)).astype(dtype)
    bias = rng.standard_normal(4).astype(dtype)
    expected = y.copy()
    (n0, n1), (p0, p1) = images, positions
    expected[n0:n1, :, p0:p1] += bias[:, None]
    add_channel_bias(y, bias, n0, n1, p0, p1)
    np.testing.assert_array_equal(y, expected)


def _planar_reads(xp_shape, n0, images, p0, m, kernel, stride, dilation, out, rows_outer):
    """Flat indices into ``xp`` that the planar columns read, in the columns' own flat order."""
    _, channels, _, in_h, in_w = xp_shape
    kh_n, kw_n = kernel[1:]
    taps = kh_n * kw_n
    rows = channels * taps
    reads = np.empty((rows, images, m) if rows_outer else (images, rows, m), dtype=np.int64)
    for i in range(images):
        for r in range(rows):
            ci, t = divmod(r, taps)
            kh, kw = divmod(t, kw_n)
            oh, ow = np.divmod(np.arange(p0, p0 + m), out[2])
            h = oh * stride[1] + kh * dilation[1]
            w = ow * stride[2] + kw * dilation[2]
            flat = (((n0 + i) * channels + ci) * in_h + h) * in_w + w
            reads[(r, i) if rows_outer else (i, r)] = flat
    return reads


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("step", [1, 2, 3])
@pytest.mark.parametrize("p0, m", [(20, 91), (0, 60)])  # to the array's last value; mid-row
def test_planar_run_copies_match_numpy(rng, dtype, step, p0, m):
    """Runs of 17-37 values (whole vectors and tails of both widths) at column steps 1-3:
    the gathers in both layouts and the add-back exact against NumPy, nothing else touched."""
    from numconv.kernels.planar_columns import gather_planar, gather_planar_by_row, scatter_planar

    kernel, stride, dilation, out = (1, 2, 3), (1, 1, step), (1, 1, 2), (1, 3, 37)
    in_w = (out[2] - 1) * step + (kernel[2] - 1) * dilation[2] + 1
    xp = rng.standard_normal((3, 2, 1, out[1] + kernel[1] - 1, in_w)).astype(dtype)
    n0, images = 1, 2
    geometry = (kernel, stride, dilation, out)
    for rows_outer, gather in ((False, gather_planar), (True, gather_planar_by_row)):
        reads = _planar_reads(xp.shape, n0, images, p0, m, *geometry, rows_outer)
        margin = 16  # sentinels either side of the columns
        buffer = np.full(reads.size + 2 * margin, -7.0, dtype)
        cols = buffer[margin:-margin].reshape(reads.shape)
        gather(xp, cols, n0, p0, *geometry)
        np.testing.assert_array_equal(cols, xp.reshape(-1)[reads])
        np.testing.assert_array_equal(buffer[:margin], -7.0)
        np.testing.assert_array_equal(buffer[-margin:], -7.0)
        if not rows_outer:  # the add-back reads the gather's layout
            values = rng.standard_normal(reads.shape).astype(dtype)
            target = xp.copy()
            expected = xp.copy().reshape(-1)
            np.add.at(expected, reads.reshape(-1), values.reshape(-1))  # in the same order
            scatter_planar(values, target, n0, p0, *geometry)
            np.testing.assert_array_equal(target.reshape(-1), expected)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular"])
@pytest.mark.parametrize(
    "shape, kernel, kw",
    [
        ((2, 5, 8, 9), (3, 3), dict(stride=1, padding=1)),
        ((1, 7, 11, 10), (3, 2), dict(stride=(2, 3), padding=(2, 1), dilation=(2, 1))),
        ((3, 4, 19), (5,), dict(stride=2, padding="same")),
        ((1, 3, 5, 6, 7), (2, 3, 2), dict(stride=(1, 2, 1), padding=1, dilation=(2, 1, 1))),
        # strided: phased planes (a stride of 3 over 2 taps leaves a phase no tap reads)
        ((2, 4, 15, 14), (3, 3), dict(stride=2, padding=1)),
        ((2, 3, 9, 10), (2, 2), dict(stride=3, padding=1)),
        ((2, 3, 12, 11), (5, 5), dict(stride=2, padding=(2, 1), dilation=(1, 2))),
        ((1, 2, 7, 9, 8), (3, 3, 3), dict(stride=2, padding=1)),
        # stride 1: the flat-plane kernels (9 taps unrolled, other counts per tap)
        ((2, 3, 7, 6), (3, 3), dict(padding=((2, 0), (1, 2)), dilation=(1, 2))),
        ((1, 4, 9, 8), (5, 5), dict(padding=2)),
        ((2, 3, 13), (3,), dict(padding="same", dilation=3)),
        ((1, 2, 4, 6, 5), (1, 3, 3), dict(padding=(0, 1, 1))),
        ((1, 2, 5, 6, 5), (3, 2, 2), dict(padding=1, dilation=(1, 2, 1))),
    ],
)
def test_depthwise_matches_the_direct_algorithm(rng, mode, shape, kernel, kw):
    channels = shape[1]
    x = rng.standard_normal(shape)
    w = rng.standard_normal((channels, 1, *kernel))
    b = rng.standard_normal(channels)
    kw = dict(kw, groups=channels, padding_mode=mode)
    y = getattr(F, f"conv{len(kernel)}d")(x, w, b, **kw)
    gy = rng.standard_normal(y.shape)
    assert _dispatch.select("forward", _plan(x, w, kw), np.float64) is _depthwise
    _assert_matches_direct(None, x, w, b, gy, **kw)


# Stride 1, zero padding, rows as wide as the input's: the masked kernels.
MASKED_DEPTHWISE = [
    ((5, 5, 8, 9), (3, 3), dict(padding=1)),  # 9 taps in one pass
    ((3, 4, 9, 8), (5, 5), dict(padding=2)),  # a pass per window row of 5
    ((3, 2, 7, 9), (2, 7), dict(padding=((1, 0), (3, 3)))),  # a pass per tap
    ((2, 3, 7, 6), (3, 2), dict(padding=((1, 0), (0, 1)))),  # per-side, even width
    ((2, 3, 7, 6), (3, 3), dict(padding=((0, 2), (2, 0)), dilation=(1, 1))),  # one-sided
    ((2, 3, 6, 9), (3, 3), dict(padding=(0, 2), dilation=2)),  # OH < H, dilated
    ((2, 3, 13), (3,), dict(padding="same", dilation=3)),
    ((3, 2, 1), (5,), dict(padding=2)),  # every read but one is padding
    ((3, 2, 4, 6, 5), (1, 3, 3), dict(padding=(0, 1, 1))),  # 3-d, one deep
    # rows of 128 or more: a pass per tap over its valid columns, no flags
    ((2, 3, 150), (7,), dict(padding=3)),
    ((1, 2, 3, 130), (3, 4), dict(padding=((1, 1), (4, 2)), dilation=(1, 2))),
]


def test_masked_depthwise_only_takes_what_it_can():
    x = np.empty((1, 3, 8, 8))
    w = np.empty((3, 1, 3, 3))
    assert _depthwise._masked(_plan(x, w, dict(groups=3, padding=1)))
    assert not _depthwise._masked(_plan(x, w, dict(groups=3, padding=0)))  # OW < W
    assert not _depthwise._masked(_plan(x, w, dict(groups=3, padding=1, stride=2)))
    assert not _depthwise._masked(_plan(x, w, dict(groups=3, padding=1, padding_mode="reflect")))
    assert not _depthwise._masked(_plan(x, w, dict(groups=3, padding=((3, 0), (1, 1)))))
    x3, w3 = np.empty((1, 3, 4, 8, 8)), np.empty((3, 1, 3, 3, 3))
    assert not _depthwise._masked(_plan(x3, w3, dict(groups=3, padding=1)))  # three deep


# Stride 2 along W, even width, zero padding: planes split into even and odd columns.
SPLIT_DEPTHWISE = [
    ((2, 5, 8, 10), (3, 3), dict(stride=2, padding=1)),  # 9 taps in one pass
    ((3, 4, 9, 8), (5, 5), dict(stride=2, padding=2)),  # 25 taps in one pass
    ((2, 3, 7, 6), (3, 2), dict(stride=(1, 2), padding=((1, 0), (0, 1)))),  # H stride 1
    ((2, 3, 6, 12), (3, 3), dict(stride=2, padding=(0, 2), dilation=2)),  # every tap in one phase
    ((1, 3, 5, 6), (2, 3), dict(stride=2, padding=((3, 2), (4, 0)))),  # padding past the window
    ((3, 2, 14), (1,), dict(stride=2)),  # no tap reads the odd columns
    ((3, 2, 16), (4,), dict(stride=2, padding=((3, 0),))),  # a pass per tap
    ((2, 3, 12), (5,), dict(stride=2, padding="same")),
    ((2, 2, 3, 6, 8), (1, 3, 3), dict(stride=(1, 2, 2), padding=(0, 1, 1))),  # 3-d, one deep
]


def test_split_depthwise_only_takes_what_it_can():
    x = np.empty((1, 3, 8, 8))
    w = np.empty((3, 1, 3, 3))
    assert _depthwise._split(_plan(x, w, dict(groups=3, padding=1, stride=2)))
    assert _depthwise._split(_plan(x, w, dict(groups=3, padding=1, stride=(1, 2))))
    assert not _depthwise._split(_plan(x, w, dict(groups=3, padding=1)))  # stride 1
    assert not _depthwise._split(_plan(x, w, dict(groups=3, padding=1, stride=(2, 1))))
    assert not _depthwise._split(_plan(x, w, dict(groups=3, padding=1, stride=3)))
    assert not _depthwise._split(_plan(x, w, dict(groups=3, padding=1, stride=(3, 2))))
    reflect = dict(groups=3, padding=1, stride=2, padding_mode="reflect")
    assert not _depthwise._split(_plan(x, w, reflect))
    odd = np.empty((1, 3, 8, 9))
    assert not _depthwise._split(_plan(odd, w, dict(groups=3, padding=1, stride=2)))
    wide = np.empty((3, 1, 7, 7))
    assert not _depthwise._split(_plan(x, wide, dict(groups=3, padding=3, stride=2)))
    x1, w1 = np.empty((1, 3, 8)), np.empty((3, 1, 3))
    assert not _depthwise._split(_plan(x1, w1, dict(groups=3, padding=4, stride=2)))  # OW > W/2
    x3, w3 = np.empty((1, 3, 4, 8, 8)), np.empty((3, 1, 3, 3, 3))
    assert not _depthwise._split(_plan(x3, w3, dict(groups=3, padding=1, stride=(1, 2, 2))))


# Zero padding, W stride 1 or 2, one deep: the row blocks (forward up to 64² planes,
# input gradient; stride-1 layers that keep their width go to the masked kernels).
ROWS_DEPTHWISE = [
    ((2, 5, 8, 10), (3, 3), dict(stride=2, padding=1)),
    ((3, 4, 9, 9), (5, 5), dict(stride=2, padding=2)),  # odd width
    ((2, 3, 11, 13), (7, 7), dict(stride=2, padding=3)),  # the split planes' limit was 5
    ((2, 3, 7, 6), (3, 2), dict(stride=(1, 2), padding=((1, 0), (0, 1)))),  # H stride 1
    ((2, 3, 13, 7), (3, 3), dict(stride=(2, 1), padding=(2, 0))),  # W stride 1
    ((2, 3, 11, 12), (4, 3), dict(stride=(3, 2), padding=(2, 1), dilation=(1, 2))),  # H stride 3
    ((2, 3, 6, 12), (3, 3), dict(stride=2, padding=(0, 2), dilation=2)),  # every tap in one phase
    ((1, 3, 5, 6), (2, 3), dict(stride=2, padding=((3, 2), (4, 0)))),  # padding past the window
    ((3, 2, 3, 14), (1, 1), dict(stride=2)),  # no tap reads the odd columns: zero gradient
    ((2, 3, 2, 41), (1, 5), dict(stride=2, padding=(0, 2))),  # two rows of several vectors
    ((2, 3, 9, 40), (3, 3), dict()),  # stride 1, no padding (OW < W): not masked
    ((2, 2, 3, 6, 8), (1, 3, 3), dict(stride=(1, 2, 2), padding=(0, 1, 1))),  # 3-d, one deep
]


def test_rows_depthwise_only_takes_what_it_can():
    x, w = np.empty((1, 3, 8, 9)), np.empty((3, 1, 3, 3))
    assert _depthwise._rows(_plan(x, w, dict(groups=3, padding=1, stride=2)), "forward")
    assert _depthwise._rows(_plan(x, w, dict(groups=3, stride=(3, 1))), "forward")
    assert not _depthwise._rows(_plan(x, w, dict(groups=3, padding=1, stride=3)), "forward")
    reflect = dict(groups=3, padding=1, stride=2, padding_mode="reflect")
    assert not _depthwise._rows(_plan(x, w, reflect), "forward")
    x3, w3 = np.empty((1, 3, 4, 8, 8)), np.empty((3, 1, 3, 3, 3))
    assert not _depthwise._rows(_plan(x3, w3, dict(groups=3, padding=1)), "forward")
    assert not _depthwise._rows(
        _plan(x3, w3[:, :, :1], dict(groups=3, stride=(2, 1, 1))), "forward"
    )
    # Past 64² planes only the input gradient of W stride 2 (the forward: split planes).
    big = np.empty((1, 3, 65, 64))
    assert not _depthwise._rows(_plan(big, w, dict(groups=3, padding=1, stride=2)), "forward")
    assert _depthwise._rows(_plan(big, w, dict(groups=3, padding=1, stride=2)), "input_grad")
    assert not _depthwise._rows(_plan(big, w, dict(groups=3, stride=1)), "input_grad")
    x1, w1 = np.empty((1, 3, 40)), np.empty((3, 1, 3))  # 1-d: the flat planes
    assert not _depthwise._rows(_plan(x1, w1, dict(groups=3, stride=2)), "input_grad")


def _depthwise_layer(rng, shape, kernel, kw):
    """Random ``x``, ``w``, ``b``, an output gradient and the keywords of a depthwise layer."""
    channels = shape[1]
    x = rng.standard_normal(shape)
    w = rng.standard_normal((channels, 1, *kernel))
    b = rng.standard_normal(channels)
    kw = dict(kw, groups=channels)
    gy = rng.standard_normal(getattr(F, f"conv{len(kernel)}d")(x, w, b, **kw).shape)
    return x, w, b, gy, kw


def _takes_rows(plan) -> bool:
    """Whether the row blocks take the forward (and so the input gradient) of ``plan``."""
    return _depthwise._rows(plan, "forward") and not _depthwise._masked(plan)


@pytest.mark.parametrize("band_bytes", [1, 300, 1 << 20])
@pytest.mark.parametrize("shape, kernel, kw", ROWS_DEPTHWISE)
def test_rows_depthwise_matches_the_direct_algorithm(rng, monkeypatch, shape, kernel, kw,
                                                     band_bytes):  # fmt: skip
    """Bands of one output row, of a few (the last band short), or whole planes."""
    monkeypatch.setattr(_depthwise, "ROWS_BAND_BYTES", band_bytes)
    x, w, b, gy, kw = _depthwise_layer(rng, shape, kernel, kw)
    assert _takes_rows(_plan(x, w, kw))
    _assert_matches_direct(None, x, w, b, gy, **kw)


@pytest.mark.parametrize("shape, kernel, kw", ROWS_DEPTHWISE[:3] + ROWS_DEPTHWISE[-3:])
def test_rows_depthwise_float32_matches_float64(rng, shape, kernel, kw):
    """16-lane vectors: rows of one, two or three vectors, masked stores at their ends."""
    x, w, b, gy, kw = _depthwise_layer(rng, shape, kernel, kw)
    assert _takes_rows(_plan(x, w, kw))
    with _dispatch.forced("direct"):
        expected = _all_three(x, w, b, gy, **kw)
    got = _all_three(*(a.astype(np.float32) for a in (x, w, b, gy)), **kw)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == np.float32
        assert_close(g, e, np.float32)


def test_rows_input_gradient_of_large_planes_matches_the_direct_algorithm(rng):
    """Past 64² planes the input gradient of W stride 2 still runs as row blocks."""
    x = rng.standard_normal((1, 2, 70, 66))
    w = rng.standard_normal((2, 1, 3, 3))
    kw = dict(groups=2, padding=1, stride=2)
    assert _depthwise._rows(_plan(x, w, kw), "input_grad")
    gy = rng.standard_normal((1, 2, 35, 33))
    with _dispatch.forced("direct"):
        expected = F.conv2d_input_grad(x.shape, w, gy, **kw)
    assert_close(F.conv2d_input_grad(x.shape, w, gy, **kw), expected, np.float64)


# The stacked depthwise paths: each one's predicate and its stack size's name.
STACKED_PATHS = {
    "masked": (_depthwise._masked, "STACK_ELEMENTS"),
    "split": (_depthwise._split, "SPLIT_STACK_ELEMENTS"),
}


@pytest.mark.parametrize("stack_elements", [1, 150, 1 << 20])
@pytest.mark.parametrize(
    "path, shape, kernel, kw",
    [("masked", *case) for case in MASKED_DEPTHWISE]
    + [("split", *case) for case in SPLIT_DEPTHWISE],
)
def test_stacked_depthwise_matches_the_direct_algorithm(
    rng, monkeypatch, path, shape, kernel, kw, stack_elements
):
    """One plane a stack, a few (the last stack short), or every plane of a channel.

    The split planes' forward takes only planes past 64² by default (the row
    blocks take the smaller ones); here it takes these small ones too.
    """
    takes, stack_name = STACKED_PATHS[path]
    monkeypatch.setattr(_depthwise, stack_name, stack_elements)
    monkeypatch.setattr(_depthwise, "ROWS_MAX_PLANE", 0)
    x, w, b, gy, kw = _depthwise_layer(rng, shape, kernel, kw)
    assert takes(_plan(x, w, kw))
    _assert_matches_direct(None, x, w, b, gy, **kw)


@pytest.mark.parametrize("path, stride", [("masked", 1), ("split", 2), ("rows", 2)])
@pytest.mark.parametrize("kernel", [(3, 3), (5, 5)])
def test_stacked_depthwise_keeps_row_ends_apart(monkeypatch, path, stride, kernel):
    """Infs at row ends must not reach a neighbouring row's outputs (0 · inf is NaN)."""
    if path == "split":
        monkeypatch.setattr(_depthwise, "ROWS_MAX_PLANE", 0)
    x = np.ones((1, 2, 7, 8))
    x[:, :, 2, -1] = np.inf
    x[:, :, 4, 0] = -np.inf
    x[:, :, 5, -2] = np.inf
    w = np.ones((2, 1, *kernel))
    kw = dict(stride=stride, padding=kernel[0] // 2, groups=2)
    takes = STACKED_PATHS[path][0] if path != "rows" else lambda p: _depthwise._rows(p, "forward")
    assert takes(_plan(x, w, kw))
    with _dispatch.forced("direct"):
        expected = F.conv2d(x, w, **kw)
    got = F.conv2d(x, w, **kw)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(got[~finite], expected[~finite])
    assert_close(got[finite], expected[finite], np.float64)


def test_depthwise_does_not_take_channel_multipliers(rng):
    """groups == C_in but C_out = 2·C_in: the depthwise kernels do not apply."""
    x = rng.standard_normal((1, 3, 6, 6))
    w = rng.standard_normal((6, 1, 3, 3))
    kw = dict(groups=3)
    assert not _depthwise.applies(_plan(x, w, kw))
    with _dispatch.forced("depthwise"):  # falls back to the shape rule
        got = F.conv2d(x, w, **kw)
    assert_close(got, naive_conv(x, w, None, 1, 0, 1, 3, "zeros"), np.float64)


def _plan(x, w, kw):
    from numconv._params import plan_conv

    kw = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "padding_mode": "zeros", **kw}
    return plan_conv(w.ndim - 2, x.shape, w.shape, **kw)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize(
    "shape, kw",
    [
        ((5, 6, 7), {}),
        ((5, 7, 9), dict(stride=(2, 3))),
        ((5, 4, 6, 5), dict(stride=(1, 2, 2))),
        ((5, 11), dict(stride=3)),
    ],
)
def test_pointwise_matches_the_direct_algorithm(rng, batch, shape, kw):
    """1×1 products in the caller's layout; batch 1 and 3 split the work differently."""
    x = rng.standard_normal((batch, *shape))
    w = rng.standard_normal((4, shape[0], *[1] * (len(shape) - 1)))
    b = rng.standard_normal(4)
    gy = rng.standard_normal(getattr(F, f"conv{w.ndim - 2}d")(x, w, b, **kw).shape)
    assert _dispatch.select("forward", _plan(x, w, kw), np.float64) is _pointwise
    _assert_matches_direct(None, x, w, b, gy, **kw)


def test_pointwise_needs_one_group_and_no_padding(rng):
    x = np.empty((1, 4, 5, 5))
    assert not _pointwise.applies(_plan(x, np.empty((4, 2, 1, 1)), dict(groups=2)))
    assert not _pointwise.applies(_plan(x, np.empty((4, 4, 1, 1)), dict(padding=1)))
    assert not _pointwise.applies(_plan(x, np.empty((4, 4, 1, 3)), {}))
    assert _pointwise.applies(_plan(x, np.empty((4, 4, 1, 1)), dict(stride=2, dilation=3)))


@pytest.mark.parametrize(
    "x_shape, w_shape, kw, expected",
    [
        ((8, 256, 28, 28), (256, 1, 3, 3), dict(groups=256), {"depthwise"}),
        # 3 channels in: the weight gradient as tap sums
        ((64, 3, 32, 32), (32, 3, 3, 3), dict(padding=1), {"planar_gemm", "tap_sums"}),
        ((8, 4, 56, 56), (16, 4, 3, 3), dict(padding=1), {"phase_sums", "tap_sums"}),  # 4 in
        ((8, 8, 56, 56), (8, 8, 3, 3), dict(padding=1), {"phase_sums"}),  # 8 in
        ((8, 64, 56, 56), (64, 64, 3, 3), dict(padding=1), {"winograd4"}),
        ((8, 64, 29, 29), (64, 64, 3, 3), dict(padding=1), {"winograd4"}),  # 512 F(4×4) tiles
        ((8, 256, 14, 14), (256, 256, 3, 3), dict(padding=1), {"winograd"}),  # 128: too few
        ((1, 64, 56, 56), (64, 64, 3, 3), dict(padding=1), {"winograd"}),  # 196
        ((8, 1, 32, 32), (2, 1, 3, 3), dict(padding=1), {"phase_sums"}),  # 0.3 MFLOP
        ((8, 4, 16, 16), (8, 4, 3, 3), dict(padding=1), {"phase_sums"}),  # 1.2 MFLOP
        ((32, 1, 28, 28), (8, 1, 3, 3), {}, {"planar_gemm", "tap_sums"}),  # 3.1 MFLOP, 26²
        ((128, 1, 22, 22), (8, 1, 3, 3), {}, {"phase_sums", "planar_gemm"}),  # 400 positions a task
        # 409600 weights a group, every residue several taps: within 2^19, phase sums (§34);
        # 294912 with single-tap residues (3×3 stride 2): past 2^15, BLAS
        ((8, 128, 28, 28), (128, 128, 5, 5), dict(padding=2), {"phase_sums"}),
        ((8, 128, 28, 28), (256, 128, 3, 3), dict(stride=2, padding=1), {"planar_gemm"}),
        # 256·256·9 and 512·256·9 weights, past 2^19: BLAS's products are long enough
        ((8, 256, 64, 64), (256, 256, 3, 3), dict(stride=2, padding=1), {"planar_gemm"}),
        ((8, 256, 14, 14), (512, 256, 3, 3), dict(stride=2, padding=1), {"planar_gemm"}),
        ((8, 3, 224, 224), (64, 3, 7, 7), dict(stride=2, padding=3), {"planar_gemm", "tap_sums"}),
        ((64, 3, 32, 32), (32, 3, 3, 3), dict(stride=2), {"phase_sums", "planar_gemm"}),
        ((8, 256, 28, 28), (64, 256, 1, 1), {}, {"pointwise"}),
        ((2, 4, 50), (4, 4, 3), {}, {"phase_sums"}),
        ((16, 64, 4096), (64, 64, 9), dict(padding=4), {"phase_sums", "tap_sums"}),
        ((1, 6, 8, 8), (12, 1, 3, 3), dict(groups=6), {"phase_sums"}),  # multiplier 2
        ((8, 128, 28, 28), (128, 32, 3, 3), dict(groups=4, padding=1), {"winograd4"}),
        ((8, 256, 14, 14), (256, 32, 3, 3), dict(groups=8, padding=1), {"winograd"}),
        ((8, 128, 28, 28), (128, 8, 3, 3), dict(groups=16, padding=1), {"phase_sums"}),
        # 4 channels a group: too few for the transforms to pay
        (
            (8, 128, 28, 28),
            (128, 4, 3, 3),
            dict(groups=32, padding=1),
            {"phase_sums"},
        ),
        # dilated: input gradients as phase sums; forwards and weight gradients too with
        # up to 2^14 weights a group or dilation 3 and more (§36); past 2^19 polyphase only
        ((8, 64, 56, 56), (64, 32, 3, 3), dict(padding=2, dilation=2, groups=2), {"phase_sums"}),
        ((8, 64, 56, 56), (64, 64, 3, 3), dict(padding=2, dilation=2), {"polyphase", "phase_sums"}),
        ((2, 64, 28, 28), (64, 64, 3, 3), dict(padding=2, dilation=2), {"polyphase", "phase_sums"}),
        ((4, 64, 56, 56), (64, 64, 3, 3), dict(padding=3, dilation=3), {"phase_sums"}),
        ((8, 256, 14, 14), (256, 256, 3, 3), dict(padding=2, dilation=2), {"polyphase"}),
        (
            (8, 64, 56, 56),
            (64, 64, 3, 3),
            dict(padding=2, dilation=2, stride=2),
            {"phase_sums", "tap_sums"},
        ),
        ((8, 64, 56, 56), (64, 64, 5, 5), dict(padding=4, dilation=2), {"phase_sums", "tap_sums"}),
        ((2, 32, 16, 56, 56), (32, 32, 3, 3, 3), dict(padding=1), {"winograd3d"}),
        ((2, 32, 16, 56, 56), (32, 16, 3, 3, 3), dict(padding=1, groups=2), {"depth_slices"}),
        (
            (2, 32, 16, 56, 56),
            (32, 32, 3, 3, 3),
            dict(padding=1, padding_mode="reflect"),
            {"depth_slices"},
        ),
        (
            (2, 32, 16, 56, 56),
            (32, 32, 3, 3, 3),
            dict(padding=1, stride=2),
            {"phase_sums"},
        ),
    ],
)
def test_selection_rule(x_shape, w_shape, kw, expected):
    plan = _plan(np.empty(x_shape), np.empty(w_shape), kw)
    chosen = {op: _dispatch.select(op, plan, np.float32).NAME for op in _dispatch.OPS}
    assert set(chosen.values()) == expected


@pytest.mark.parametrize(
    "x_shape, w_shape, kw, expected",
    [
        ((4, 64, 33, 33), (96, 16, 5, 5), dict(stride=2, padding=2, groups=4), "phase_sums"),
        ((8, 64, 28, 28), (64, 16, 7, 7), dict(padding=3, groups=4), "phase_sums"),
        ((2, 16, 8, 24, 24), (16, 16, 5, 5, 5), dict(padding=2), "phase_sums"),  # one group, 3-d
        ((8, 64, 2000), (64, 16, 7), dict(padding=3, groups=4), "phase_sums"),
        ((2, 32, 14, 14), (32, 8, 3, 3), dict(padding=1, groups=4), "phase_sums"),  # small call
        ((8, 128, 28, 28), (128, 16, 3, 3), dict(padding=1, groups=8), "phase_sums"),
        ((8, 16, 28, 28), (32, 16, 5, 5), dict(padding=2), "phase_sums"),  # one group, 2-d
        ((16, 1, 28, 28), (8, 1, 3, 3), dict(padding=1), "phase_sums"),  # small first layer
        ((8, 128, 28, 28), (128, 16, 3, 3), dict(stride=2, padding=1, groups=8), "phase_sums"),
        ((8, 48, 28, 28), (64, 48, 5, 5), dict(padding=2), "phase_sums"),  # 76800 weights
        ((8, 128, 28, 28), (128, 64, 5, 5), dict(padding=2, groups=2), "phase_sums"),
        # one tap a residue along a strided axis (thin residues): up to 2^15 weights
        ((1, 128, 28, 28), (128, 32, 3, 3), dict(stride=2, padding=1, groups=4), "phase_sums"),
        ((8, 64, 28, 28), (64, 64, 2, 4), dict(stride=2, padding=1), "phase_sums"),  # 2^15
        ((8, 64, 28, 28), (64, 64, 3, 3), dict(stride=2, padding=1), "planar_gemm"),  # 36864
        ((8, 96, 35, 35), (160, 96, 3, 3), dict(stride=2), "planar_gemm"),  # 138240
        ((8, 64, 42, 42), (96, 64, 3, 3), dict(stride=3), "planar_gemm"),  # 55296
        ((4, 256, 300), (256, 256, 8), dict(padding=3), "phase_sums"),  # 2^19 weights
        # Winograd on larger calls with more weights a group, the planar GEMM on
        # larger first layers and past 2^19 weights a group
        ((8, 128, 28, 28), (128, 32, 3, 3), dict(padding=1, groups=4), "winograd4"),
        ((64, 1, 28, 28), (32, 1, 5, 5), {}, "planar_gemm"),
        ((64, 3, 32, 32), (32, 3, 3, 3), dict(padding=1), "planar_gemm"),
        ((4, 256, 300), (256, 256, 9), dict(padding=4), "planar_gemm"),  # 2^19 + 2^16
        ((8, 256, 14, 14), (512, 256, 3, 3), dict(stride=2, padding=1), "planar_gemm"),
        ((1, 512, 512), (512, 512, 3), dict(padding=1), "planar_gemm"),
    ],
)
def test_input_gradient_selection(x_shape, w_shape, kw, expected):
    plan = _plan(np.empty(x_shape), np.empty(w_shape), kw)
    assert _dispatch.select("input_grad", plan, np.float32).NAME == expected


@pytest.mark.parametrize(
    "shape, c_out, kw",
    [
        ((2, 3, 8, 9), 4, dict(padding=1)),
        ((1, 5, 7, 7), 6, dict(padding=0)),  # odd output: the last tiles are cut
        ((2, 3, 10, 6), 4, dict(padding=0)),  # whole tiles in both: the input read in place
        ((3, 4, 6, 5), 2, dict(padding=2, padding_mode="reflect")),
        ((2, 3, 9, 6), 3, dict(padding=((1, 2), (0, 3)))),  # per side, beyond 2: crops gy
        ((2, 2, 5, 7), 4, dict(padding=(3, 1), padding_mode="circular")),
        ((1, 3, 6, 8), 5, dict(padding="same", padding_mode="replicate")),
        ((2, 3, 4, 5, 6), 4, dict(padding=(0, 1, 1))),  # 3-d with a 1×3×3 kernel
        ((3, 4, 4), 3, dict(padding=1)),  # unbatched
        ((2, 3, 3, 3), 2, dict(padding=1)),  # one F(4×4) tile
        ((1, 2, 2, 14), 3, dict(padding=((1, 0), (1, 1)))),  # one tile row, 4 tiles, cut
        ((3, 2, 13, 10), 2, dict(padding=1)),  # 4 × 3 F(4×4) tiles, both cut
        ((2, 4, 8, 9), 6, dict(padding=1, groups=2)),
        ((2, 6, 7, 6), 3, dict(padding=1, groups=3, padding_mode="reflect")),
        ((1, 4, 5, 7), 8, dict(padding=(3, 1), groups=4)),  # crops gy; 2 filters a group
        ((2, 6, 3, 5, 6), 4, dict(padding=(0, 1, 1), groups=2)),
    ],
)
@pytest.mark.parametrize("algorithm", [winograd, winograd4])
def test_winograd_matches_the_direct_algorithm(rng, shape, c_out, kw, algorithm):
    nd = 3 if len(shape) == 5 else 2
    kernel = (1, 3, 3) if nd == 3 else (3, 3)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((c_out, shape[-nd - 1] // kw.get("groups", 1), *kernel))
    b = rng.standard_normal(c_out)
    gy = rng.standard_normal(getattr(F, f"conv{nd}d")(x, w, b, **kw).shape)
    with _dispatch.forced("direct"):
        expected = _all_three(x, w, b, gy, **kw)
    with _dispatch.forced(algorithm.NAME):
        got = _all_three(x, w, b, gy, **kw)
    if x.ndim == nd + 2:
        assert algorithm.applies(_plan(x, w, kw))
    for g, e in zip(got, expected, strict=True):
        assert_close(g, e, np.float64)


@pytest.mark.parametrize(
    "chunk_bytes, min_tiles, filter_split_max",
    [
        (1, 1, 0),  # split by tiles: one tile row per chunk
        (10_000, 1, 0),  # ... several
        (1 << 30, 1, 0),  # ... one chunk per thread
        (1, 1 << 20, 0),  # split by positions (by filters with as many groups as threads)
        (1, 1 << 20, 1 << 40),  # split by filters
    ],
)
@pytest.mark.parametrize("algorithm", [winograd, winograd4])
@pytest.mark.parametrize("groups", [1, 2])
def test_winograd_work_splits_match_the_direct_algorithm(
    monkeypatch, rng, chunk_bytes, min_tiles, filter_split_max, algorithm, groups
):
    """Chunks of one tile row, of several, one chunk per thread, and the splits by ξ and filters.

    The F(4×4) kernels run each channel's tile rows of a chunk as one loop
    and redo every row's last tile: chunks of several rows, across images,
    check that seam (9 × 10 outputs: 3 × 3 tiles, the last row and column cut).
    """
    c_out = 5 if groups == 1 else 6
    x = rng.standard_normal((3, 4, 9, 10))
    w = rng.standard_normal((c_out, 4 // groups, 3, 3))
    b = rng.standard_normal(c_out)
    kw = dict(padding=1, padding_mode="reflect", groups=groups)
    gy = rng.standard_normal((3, c_out, 9, 10))
    with _dispatch.forced("direct"):
        expected = _all_three(x, w, b, gy, **kw)
    monkeypatch.setattr(winograd, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(winograd, "MIN_TILES", min_tiles)
    monkeypatch.setattr(winograd, "FILTER_SPLIT_MAX_CHANNEL_TILES", filter_split_max)
    with _dispatch.forced(algorithm.NAME):
        got = _all_three(x, w, b, gy, **kw)
    for g, e in zip(got, expected, strict=True):
        assert_close(g, e, np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [2, 3, 4])  # one thread takes the split by filters
@pytest.mark.parametrize(
    "shape, c_out, padding",
    [
        ((5, 16, 7, 9), 16, 1),  # images split unevenly over the threads; tiles cut
        ((2, 32, 5, 6), 16, 3),  # the input gradient's source cropped (padding > 2)
        ((3, 16, 6, 6), 32, 0),
    ],
)
def test_winograd_channels_last_tiles_match_the_direct_algorithm(
    monkeypatch, rng, dtype, threads, shape, c_out, padding
):
    """The split by positions with F(2×2) input tiles from a channels-last source, which
    the threads fill image by image: all three ops against direct in float64."""
    from numconv.kernels import winograd as f2_kernels

    x = rng.standard_normal(shape).astype(dtype)
    w = (rng.standard_normal((c_out, shape[1], 3, 3)) / 10).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    gy = rng.standard_normal(F.conv2d(x, w, b, padding=padding).shape).astype(dtype)
    wide = [a.astype(np.float64) for a in (x, w, b, gy)]
    with _dispatch.forced("direct"):
        expected = _all_three(*wide, padding=padding)
    monkeypatch.setattr(winograd, "MIN_TILES", 1 << 20)
    monkeypatch.setattr(winograd, "FILTER_SPLIT_MAX_CHANNEL_TILES", 0)
    monkeypatch.setattr(winograd.numba, "get_num_threads", lambda: threads)
    runs = []
    inputs, gradients = (
        f2_kernels.input_tiles_channels_last,
        f2_kernels.gradient_tiles_channels_last,
    )
    spied = dataclasses.replace(
        winograd.F2,
        channels_last_tiles=lambda *args: runs.append("input") or inputs(*args),
        channels_last_gradient_tiles=lambda *args: runs.append("gradient") or gradients(*args),
    )
    monkeypatch.setattr(winograd, "F2", spied)  # the tiling winograd's ops pass on
    with _dispatch.forced("winograd"):
        got = _all_three(x, w, b, gy, padding=padding)
    # Every op, at least one part each; the weight gradient's output gradient too.
    assert runs.count("input") >= 3 and runs.count("gradient") >= 1
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == dtype
        assert_close(g, e, dtype)


@pytest.mark.parametrize(
    "shape, kw, dtype, expected",
    [
        ((8, 32, 1, 7, 7), {}, np.float32, True),  # res3x3_7's kind: positions split
        ((8, 32, 1, 7, 7), {}, np.float64, True),
        ((8, None, 1, 7, 7), {}, np.float32, False),  # channels not whole vectors
        ((8, 32, 1, 7, 7), dict(groups=2), np.float32, False),
        ((8, 32, 2, 7, 7), {}, np.float32, False),  # two slices deep
        ((64, 32, 1, 7, 7), {}, np.float32, False),  # tiles enough for the split by tiles
        ((1, 32, 1, 7, 7), {}, np.float32, False),  # few enough for the split by filters
    ],
)
def test_winograd_channels_last_source_rule(monkeypatch, shape, kw, dtype, expected):
    monkeypatch.setattr(winograd, "FILTER_SPLIT_MAX_CHANNEL_TILES", 1 << 9)
    monkeypatch.setattr(winograd.numba, "get_num_threads", lambda: 2)
    if shape[1] is None:  # one and a half vectors of channels, at any vector width
        shape = (shape[0], winograd.VECTOR_BYTES // 4 * 3 // 2, *shape[2:])
    suits = winograd._channels_last_suits(
        winograd.F2, np.empty(shape), (4, 4), kw.get("groups", 1), dtype
    )
    assert suits == expected
    assert not winograd._channels_last_suits(winograd4.F4, np.empty(shape), (2, 2), 1, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind, margin", [("input", 2), ("gradient", 0)])
def test_channels_last_tiles_are_the_channel_first_tiles_transposed(rng, dtype, kind, margin):
    """The same tiles from the same planes in either layout: input tiles bit for bit, and
    gradient tiles to the value (+0 and -0 compare equal)."""
    from numconv.kernels import winograd as f2_kernels

    first = getattr(f2_kernels, f"{kind}_tiles")
    last = getattr(f2_kernels, f"{kind}_tiles_channels_last")
    n, c, tiles_h, tiles_w = 3, 32, 3, 4
    planes = rng.standard_normal((n, c, 1, 2 * tiles_h + margin, 2 * tiles_w + margin))
    planes = planes.astype(dtype)
    planes_last = np.ascontiguousarray(planes[:, :, 0].transpose(0, 2, 3, 1))
    tiles = n * tiles_h * tiles_w
    expected = np.full((16, c, tiles), np.nan, dtype)
    got = np.full((16, tiles, c), np.nan, dtype)
    first(planes, expected, 1, 7, tiles_h, 4, 0)  # tile rows 1-7 to tiles 4 onwards
    last(planes_last, got, 1, 7, tiles_h, 4)
    np.testing.assert_array_equal(got.transpose(0, 2, 1), expected)
    assert np.isnan(got[:, :4]).all() and not np.isnan(got[:, 4:32]).any()


@pytest.mark.parametrize(
    "h, w, height, width, top, left, images",
    [
        (7, 7, 10, 10, 1, 1, (0, 3)),  # res3x3_7's source
        (7, 9, 8, 10, 0, 0, (1, 3)),  # zeros only after; some images
        (9, 9, 7, 7, -1, -1, (0, 3)),  # crops
        (4, 5, 9, 6, 3, -2, (2, 3)),  # pads rows, crops columns
    ],
)
def test_pad_channels_last_pads_and_moves_the_channels(rng, h, w, height, width, top, left, images):
    from numconv.kernels.padding import pad_channels_last

    a = rng.standard_normal((3, 5, h, w)).astype(np.float32)
    dst = np.full((3, height, width, 5), np.nan, np.float32)
    pad_channels_last(a, dst, top, left, *images)
    expected = np.full_like(dst, np.nan)
    expected[images[0] : images[1]] = 0
    for n in range(*images):
        for r in range(height):
            for q in range(width):
                if 0 <= r - top < h and 0 <= q - left < w:
                    expected[n, r, q] = a[n, :, r - top, q - left]
    np.testing.assert_array_equal(dst, expected)


@pytest.mark.parametrize("threads", [1, 2, 3, 4])
@pytest.mark.parametrize(
    "shape, c_out, kw",
    [
        ((2, 5, 6, 7), 7, dict(padding=1)),  # blocks of filters in the one group
        (
            (1, 6, 5, 6),
            9,
            dict(padding=1, groups=3),
        ),  # whole groups, fewer blocks than threads at 4
        ((2, 8, 7, 5), 4, dict(padding=(2, 1), groups=2, padding_mode="reflect")),
        ((1, 12, 6, 6), 8, dict(padding=1, groups=4)),  # 2 input and output channels a group
    ],
)
@pytest.mark.parametrize("algorithm", [winograd, winograd4])
def test_winograd_split_by_filters_matches_the_direct_algorithm(
    monkeypatch, rng, threads, shape, c_out, kw, algorithm
):
    """The split by filters with 1-4 blocks, cut inside the one group or at groups.

    The thread count is what the driver reads, not Numba's pool (this
    machine may have two cores): ``run_parts`` runs one part per block.
    """
    x = rng.standard_normal(shape)
    w = rng.standard_normal((c_out, shape[1] // kw.get("groups", 1), 3, 3))
    b = rng.standard_normal(c_out)
    gy = rng.standard_normal(F.conv2d(x, w, b, **kw).shape)
    with _dispatch.forced("direct"):
        expected = _all_three(x, w, b, gy, **kw)
    monkeypatch.setattr(winograd, "MIN_TILES", 1 << 20)
    monkeypatch.setattr(winograd, "FILTER_SPLIT_MAX_CHANNEL_TILES", 1 << 40)
    monkeypatch.setattr(winograd.numba, "get_num_threads", lambda: threads)
    seen = []
    for name in ("_by_filters", "_weight_grad_by_filters"):
        split = getattr(winograd, name)
        monkeypatch.setattr(
            winograd, name, lambda *args, name=name, split=split: seen.append(name) or split(*args)
        )
    with _dispatch.forced(algorithm.NAME):
        got = _all_three(x, w, b, gy, **kw)
    assert seen == ["_by_filters", "_by_filters", "_weight_grad_by_filters"]
    for g, e in zip(got, expected, strict=True):
        assert_close(g, e, np.float64)


@pytest.mark.parametrize(
    "per_group, groups, count, expected",
    [
        (7, 1, 3, [(0, 2), (2, 4), (4, 7)]),
        (2, 1, 4, [(0, 1), (1, 2)]),  # no empty blocks
        (3, 3, 2, [(0, 3), (3, 9)]),  # whole groups: one and two
        (3, 3, 4, [(0, 3), (3, 6), (6, 9)]),  # at most one block a group
        (2, 4, 2, [(0, 4), (4, 8)]),
    ],
)
def test_winograd_filter_blocks_cover_every_channel_once(per_group, groups, count, expected):
    blocks = winograd._blocks(per_group, groups, count)
    assert [(b.lo, b.hi) for b in blocks] == expected
    for block in blocks:
        # The block's channels, as the grouped view of its products has them.
        channels = np.arange(per_group * groups).reshape(groups, per_group)
        assert (channels[block.groups, block.within].ravel() == np.arange(block.lo, block.hi)).all()


@pytest.mark.parametrize("algorithm", [winograd, winograd4])
@pytest.mark.parametrize("min_tiles", [1, 1 << 20])
@pytest.mark.parametrize("groups", [1, 4])
def test_winograd_float32_is_within_1e4_of_float64(monkeypatch, rng, min_tiles, algorithm, groups):
    """The performance issue's accuracy bar for transform algorithms, on a deep layer.

    Measured at this seed: F(2×2) 2-4e-7, F(4×4) 1-3e-6 (its ``G`` and ``Aᵀ``
    have entries from 1/24 to 8, so float32 rounding grows).
    """
    monkeypatch.setattr(winograd, "MIN_TILES", min_tiles)
    x = rng.standard_normal((2, 96, 14, 13))
    w = rng.standard_normal((64, 96 // groups, 3, 3)) / 30
    gy = rng.standard_normal((2, 64, 14, 13))
    kw = dict(padding=1, groups=groups)
    with _dispatch.forced("direct"):
        expected = _all_three(x, w, None, gy, **kw)
    x32, w32, gy32 = (a.astype(np.float32) for a in (x, w, gy))
    with _dispatch.forced(algorithm.NAME):
        got = _all_three(x32, w32, None, gy32, **kw)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == np.float32
        err = np.linalg.norm(g - e) / np.linalg.norm(e)
        assert err < 1e-4, err


@pytest.mark.parametrize("tiling", [winograd.F2, winograd4.F4], ids=["F2", "F4"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, lo, hi", [(300, 0, 300), (300, 5, 261), (128, 0, 128), (3, 1, 2)])
def test_winograd_filter_transforms_match_the_kronecker_product(rng, tiling, dtype, n, lo, hi):
    """U = kron(G, G) @ taps, and its adjoint, on a range of filters that cuts blocks anywhere;
    filters outside the range are left alone."""
    from numconv.kernels.winograd_filters import transform_filters, transform_filters_adjoint

    taps = rng.standard_normal((n, 9)).astype(dtype)
    taps_before = taps.copy()
    g = tiling.g.astype(dtype)
    kron = np.kron(tiling.g, tiling.g)  # positions × 9, in float64
    for flip in (False, True):
        u = np.full((tiling.positions, n), np.nan, dtype)
        transform_filters(taps, g, flip, u, lo, hi)
        source = taps[lo:hi, ::-1] if flip else taps[lo:hi]
        assert_close(u[:, lo:hi], kron @ source.T.astype(np.float64), dtype)
        assert np.isnan(u[:, :lo]).all() and np.isnan(u[:, hi:]).all()
    np.testing.assert_array_equal(taps, taps_before)
    du = rng.standard_normal((tiling.positions, n)).astype(dtype)
    gw = np.full((n, 9), np.nan, dtype)
    transform_filters_adjoint(du, g, gw, lo, hi)
    assert_close(gw[lo:hi], du[:, lo:hi].T.astype(np.float64) @ kron, dtype)
    assert np.isnan(gw[:lo]).all() and np.isnan(gw[hi:]).all()


@pytest.mark.parametrize("tiling", [winograd.F2, winograd4.F4], ids=["F2", "F4"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_winograd_filter_transforms_on_vectors_sum_as_the_blocks_do(rng, tiling, dtype):
    """The filters a whole vector at a time give the same bits as the L1 blocks, which take
    the rest: the split between them moves no result (and runs stay deterministic)."""
    from numconv.kernels import winograd_filters as wf

    n, lo, hi = 700, 3, 689  # whole vectors, then a tail, in either dtype
    g = tiling.g.astype(dtype)
    taps = rng.standard_normal((n, 9)).astype(dtype)
    for flip in (False, True):
        u, blocks = (np.zeros((tiling.positions, n), dtype) for _ in range(2))
        wf.transform_filters(taps, g, flip, u, lo, hi)
        wf._transform_blocks(taps, g, flip, blocks, lo, hi)
        np.testing.assert_array_equal(u, blocks)
    du = rng.standard_normal((tiling.positions, n)).astype(dtype)
    gw, blocks = np.zeros((n, 9), dtype), np.zeros((n, 9), dtype)
    wf.transform_filters_adjoint(du, g, gw, lo, hi)
    wf._adjoint_blocks(du, g, blocks, lo, hi)
    np.testing.assert_array_equal(gw, blocks)


@pytest.mark.parametrize("shape", [(1, 1152, 256), (3, 37, 50), (2, 16, 1), (1, 1, 20)])
def test_stacked_transpose_matches_numpy(rng, shape):
    from numconv.kernels.transpose import transpose_stack

    a = rng.standard_normal(shape).astype(np.float32)
    before = a.copy()
    out = np.full((shape[0], shape[2], shape[1]), np.nan, np.float32)
    transpose_stack(a, out)
    np.testing.assert_array_equal(out, a.transpose(0, 2, 1))
    np.testing.assert_array_equal(a, before)


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize(
    "k_lo, k_hi, c_lo, c_hi", [(0, 5, 0, 7), (1, 4, 0, 7), (0, 5, 2, 6), (3, 4, 6, 7)]
)
def test_winograd_filter_blocks_transform_their_filters_only(rng, flip, k_lo, k_hi, c_lo, c_hi):
    """A (K, C) block of filters (K = 5, C = 7): the split by filters' transform of one thread."""
    from numconv.kernels.winograd_filters import transform_filter_block

    taps = rng.standard_normal((5 * 7, 9))
    g = winograd.F2.g
    u = np.full((16, 5 * 7), np.nan)
    transform_filter_block(taps, g, flip, u, 7, k_lo, k_hi, c_lo, c_hi)
    inside = np.zeros((5, 7), bool)
    inside[k_lo:k_hi, c_lo:c_hi] = True
    source = taps[:, ::-1] if flip else taps
    expected = np.kron(g, g) @ source[inside.ravel()].T
    assert_close(u[:, inside.ravel()], expected, np.float64)
    assert np.isnan(u[:, ~inside.ravel()]).all()


def test_winograd_applies_to_stride_1_undilated_3x3_only():
    x, x3 = np.empty((1, 4, 8, 8)), np.empty((1, 4, 5, 8, 8))
    assert winograd.applies(_plan(x, np.empty((4, 4, 3, 3)), dict(padding=1)))
    assert winograd.applies(_plan(x3, np.empty((4, 4, 1, 3, 3)), dict(padding=(0, 1, 1))))
    assert not winograd.applies(_plan(x, np.empty((4, 4, 3, 3)), dict(stride=2)))
    assert not winograd.applies(_plan(x, np.empty((4, 4, 3, 3)), dict(dilation=2)))
    assert winograd.applies(_plan(x, np.empty((4, 2, 3, 3)), dict(groups=2)))
    assert not winograd.applies(_plan(x, np.empty((4, 4, 5, 5)), {}))
    assert not winograd.applies(_plan(x, np.empty((4, 4, 3, 1)), {}))
    assert not winograd.applies(_plan(x3, np.empty((4, 4, 3, 3, 3)), {}))
    assert not winograd.applies(_plan(x3, np.empty((4, 4, 1, 3, 3)), dict(padding=1)))


@pytest.mark.parametrize(
    "shape, c_out, kernel, kw",
    [
        ((2, 3, 9, 10), 4, (3, 3), dict(padding=2, dilation=2)),
        ((1, 2, 11, 8), 3, (3, 3), dict(padding=((3, 1), (2, 2)), dilation=(3, 2))),
        # odd left padding and widths with dilation 2: the merge's two-phase rows start odd
        ((2, 3, 9, 11), 4, (3, 3), dict(padding=(1, 3), dilation=2)),
        ((2, 3, 12), 2, (3,), dict(padding="same", dilation=4)),
        ((1, 2, 5, 7, 6), 2, (2, 3, 2), dict(padding=1, dilation=(2, 1, 3))),
        # a padded width of 5 with dilation 3 and 2 taps: one phase has no output
        ((1, 2, 6, 5), 2, (2, 2), dict(dilation=3)),
        ((3, 7, 7), 2, (3, 3), dict(padding=2, dilation=2)),  # unbatched
        # phase rows of several vectors, split in masked vectors (stride 2 and 1 along W)
        ((1, 2, 5, 45), 3, (3, 3), dict(padding=(1, 3), dilation=(1, 2))),
        ((1, 2, 45, 37), 2, (3, 3), dict(padding=(2, 1), dilation=(2, 1))),
    ],
)
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_polyphase_matches_the_direct_algorithm(rng, shape, c_out, kernel, kw, mode):
    kw = dict(kw, padding_mode=mode)
    _assert_matches_direct("polyphase", *_random_layer(rng, shape, c_out, kernel, kw), **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("width", [1, 2, 7, 15, 31, 32, 33, 45])  # tails; blocks; both
@pytest.mark.parametrize("offset", [(0, 0, 0), (0, 1, 1), (0, 2, 3)])
def test_phase_merge_matches_numpy(rng, dtype, width, offset):
    """Two W phases interleaved into rows (dilation 2 along W), from any column offset,
    exact against NumPy's indexing, and nothing written outside the result."""
    from numconv.kernels.phases import merge_phases

    dilation = np.array([1, 2, 2])
    batch, channels, height = 2, 3, 5
    grid = [height + offset[1], width + offset[2]]  # phase-grid positions the merge reads
    p_height, p_width = (-(-g // 2) for g in grid)
    phases = rng.standard_normal((4, batch, channels, 1, p_height, p_width)).astype(dtype)
    margin = 40
    buffer = np.full(batch * channels * height * width + 2 * margin, -7.0, dtype)
    dst = buffer[margin:-margin].reshape(batch, channels, 1, height, width)
    merge_phases(phases, dst, dilation, np.array(offset), 0, batch * channels)
    qb = np.arange(height)[:, None] + offset[1]
    qe = np.arange(width)[None, :] + offset[2]
    expected = phases[(qb % 2) * 2 + qe % 2, :, :, 0, qb // 2, qe // 2]  # (H, W, N, C)
    np.testing.assert_array_equal(dst[:, :, 0], expected.transpose(2, 3, 0, 1))
    np.testing.assert_array_equal(buffer[:margin], -7.0)
    np.testing.assert_array_equal(buffer[-margin:], -7.0)


def _random_layer(rng, shape, c_out, kernel, kw):
    """Random ``x``, ``w``, ``b`` and an output gradient, with ``kw``'s groups."""
    nd = len(kernel)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((c_out, shape[-nd - 1] // kw.get("groups", 1), *kernel))
    b = rng.standard_normal(c_out)
    gy = rng.standard_normal(getattr(F, f"conv{nd}d")(x, w, b, **kw).shape)
    return x, w, b, gy


def test_polyphase_phases_run_through_winograd(monkeypatch, rng):
    """A dilated 3×3 layer's phases are undilated 3×3 layers: one Winograd call takes them all.

    The layer is small enough for the phase sums' forward; they are ruled out here.
    """
    monkeypatch.setattr(_dispatch, "PHASE_SUMS_MAX_GROUP_WEIGHTS", 0)
    calls, slots = [], []
    for op in ("forward", "input_grad", "weight_grad"):
        real = getattr(winograd, op)

        def spy(plan, *args, _real=real, _op=op, **kwargs):
            calls.append((_op, plan.batch, plan.dilation, plan.pads))
            slots.append(kwargs.get("result_slot"))
            return _real(plan, *args, **kwargs)

        monkeypatch.setattr(winograd, op, spy)
    x = rng.standard_normal((2, 8, 10, 9))
    w = rng.standard_normal((4, 8, 3, 3))
    b = rng.standard_normal(4)
    kw = dict(padding=2, dilation=2, padding_mode="reflect")
    gy = rng.standard_normal(F.conv2d(x, w, b, **kw).shape)
    calls.clear()
    slots.clear()
    assert _dispatch.select("forward", _plan(x, w, kw), np.float64).NAME == "polyphase"
    got = _all_three(x, w, b, gy, **kw)
    assert [op for op, *_ in calls] == ["forward", "input_grad", "weight_grad"]
    # the inner forward and input gradient are intermediates: written to scratch
    assert slots == ["polyphase.result", "polyphase.result", None]
    # the four phases of both images stacked along the batch, unpadded and undilated
    assert {tuple(call[1:]) for call in calls} == {(8, (1, 1, 1), ((0, 0),) * 3)}
    with _dispatch.forced("direct"):
        expected = _all_three(x, w, b, gy, **kw)
    for g, e in zip(got, expected, strict=True):
        assert_close(g, e, np.float64)


@pytest.mark.parametrize("size", [8, 7])  # whole F(2×2) tiles, or tiles that overhang
@pytest.mark.parametrize("algorithm", ["winograd", "winograd4", "direct"])
def test_inner_calls_return_scratch_only_from_algorithms_that_write_there(rng, size,
                                                                          algorithm):  # fmt: skip
    """An intermediate result comes back in scratch (the next call's result shares its
    memory), possibly overhanging, from the Winograd family, and fresh and exact-sized
    from the others; the values the same either way."""
    from numconv._algorithms.common import inner_call

    x = rng.standard_normal((2, 3, size, size))
    w = rng.standard_normal((4, 3, 3, 3))
    gy = rng.standard_normal((2, 4, size, size))
    plan = _plan(x, w, dict(padding=1))
    x5, w5, gy5 = (a[:, :, None] for a in (x, w, gy))
    expected = {"forward": naive_conv(x, w, None, 1, 1, 1, 1, "zeros")}
    with _dispatch.forced("direct"):
        expected["input_grad"] = F.conv2d_input_grad(x.shape, w, gy, padding=1)
    operands = {"forward": (x5, w5, None), "input_grad": (w5, gy5)}
    for op in ("forward", "input_grad"):
        with _dispatch.forced(algorithm):
            first = inner_call(op, plan, np.float64, *operands[op], result_slot="test.result")
            assert first.shape[:3] == (2, 4 if op == "forward" else 3, 1)
            assert first.shape[3] >= size and first.shape[4] >= size
            if algorithm == "direct":
                assert first.shape[3:] == (size, size)
            assert_close(first[:, :, 0, :size, :size], expected[op], np.float64)
            again = inner_call(op, plan, np.float64, *operands[op], result_slot="test.result")
        assert np.shares_memory(first, again) == (algorithm != "direct")


@pytest.mark.parametrize(
    "shape, c_out, kernel, kw",
    [
        ((2, 3, 5, 6, 7), 4, (3, 3, 3), dict(padding=1)),
        ((1, 4, 5, 6, 7), 4, (3, 3, 3), dict(padding=1)),  # 4 × 4 channels: Winograd slices
        ((1, 4, 7, 5, 6), 2, (2, 3, 3), dict(padding=((1, 0), (1, 1), (0, 2)))),
        ((1, 2, 9, 6, 5), 4, (3, 3, 3), dict(padding=(2, 1, 1), dilation=(2, 1, 1), groups=2)),
        ((2, 2, 6, 8, 7), 3, (3, 2, 3), dict(stride=(1, 2, 1), padding=1)),  # H, W strided
        ((3, 5, 6, 6), 2, (2, 3, 3), dict(padding="same")),  # unbatched
    ],
)
@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular"])
def test_depth_slices_match_the_direct_algorithm(rng, shape, c_out, kernel, kw, mode):
    kw = dict(kw, padding_mode=mode)
    groups = kw.get("groups", 1)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((c_out, shape[-4] // groups, *kernel))
    b = rng.standard_normal(c_out)
    gy = rng.standard_normal(F.conv3d(x, w, b, **kw).shape)
    assert _dispatch.ALGORITHMS["depth_slices"].applies(_plan(x, w, kw))
    _assert_matches_direct("depth_slices", x, w, b, gy, **kw)


WINOGRAD3D_SHAPES = [
    ((2, 3, 5, 6, 7), 4, (3, 3, 3), dict(padding=1)),
    ((1, 4, 7, 5, 6), 2, (2, 3, 3), dict(padding=((1, 0), (1, 1), (0, 2)))),  # per side
    ((2, 3, 6, 9, 10), 5, (3, 3, 3), dict(padding=(3, 0, 1))),  # depth pad > 2: crops gy
    ((1, 2, 4, 4, 4), 3, (4, 3, 3), dict(padding=(0, 2, 1))),  # four deep, valid in depth
    ((3, 2, 3, 5, 5), 2, (2, 3, 3), dict(padding="same")),
    ((3, 5, 6, 6), 2, (2, 3, 3), dict(padding=1)),  # unbatched
]


@pytest.mark.parametrize("shape, c_out, kernel, kw", WINOGRAD3D_SHAPES)
@pytest.mark.parametrize("tiling", [winograd.F2, winograd4.F4])
@pytest.mark.parametrize("chunk_bytes", [1, 1 << 30])  # KD − 1 planes a chunk ... all
def test_winograd3d_matches_the_direct_algorithm(
    monkeypatch, rng, shape, c_out, kernel, kw, tiling, chunk_bytes
):
    monkeypatch.setattr(winograd3d, "_tiling", lambda plan, dtype: tiling)
    monkeypatch.setattr(winograd3d, "CHUNK_BYTES", chunk_bytes)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((c_out, shape[-4], *kernel))
    b = rng.standard_normal(c_out)
    gy = rng.standard_normal(F.conv3d(x, w, b, **kw).shape)
    if x.ndim == 5:
        assert winograd3d.applies(_plan(x, w, kw))
    _assert_matches_direct("winograd3d", x, w, b, gy, **kw)


@pytest.mark.parametrize("threads", [1, 2])
def test_winograd3d_float32_is_within_1e4_of_float64(rng, threads):
    """Parts that split an image's planes (3 images of 5 planes on 2 threads), in float32."""
    x = rng.standard_normal((3, 24, 5, 13, 14))
    w = rng.standard_normal((16, 24, 3, 3, 3)) / 30
    gy = rng.standard_normal((3, 16, 5, 13, 14))
    kw = dict(padding=1)
    with _dispatch.forced("direct"):
        expected = _all_three(x, w, None, gy, **kw)
    x32, w32, gy32 = (a.astype(np.float32) for a in (x, w, gy))
    previous = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        with _dispatch.forced("winograd3d"):
            got = _all_three(x32, w32, None, gy32, **kw)
    finally:
        numba.set_num_threads(previous)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == np.float32
        err = np.linalg.norm(g - e) / np.linalg.norm(e)
        assert err < 1e-4, err


@pytest.mark.parametrize(
    "w_shape, kw, applies",
    [
        ((4, 4, 3, 3, 3), dict(padding=1), True),
        ((4, 4, 1, 3, 3), dict(padding=(0, 1, 1)), False),  # one deep: plain Winograd
        ((4, 2, 3, 3, 3), dict(padding=1, groups=2), False),
        ((4, 4, 3, 3, 3), dict(padding=(2, 1, 1), dilation=(2, 1, 1)), False),
        ((4, 4, 3, 3, 3), dict(padding=1, padding_mode="reflect"), False),
        ((4, 4, 3, 3, 3), dict(padding=1, stride=(2, 1, 1)), False),
        ((4, 4, 3, 5, 5), dict(padding=1), False),
    ],
)
def test_winograd3d_takes_one_group_zero_padded_undilated_layers(w_shape, kw, applies):
    assert winograd3d.applies(_plan(np.empty((1, 4, 6, 8, 8)), np.empty(w_shape), kw)) == applies


@pytest.mark.parametrize(
    "a_shape, dst_shape, offsets",
    [
        ((2, 3, 4, 5, 6), (2, 3, 6, 8, 9), (0, 1, 1, 2)),  # depth padded at both ends
        ((2, 4, 3, 5, 6), (2, 6, 3, 7, 8), (2, 0, 1, 1)),  # depth-major: the shift on axis 1
        ((1, 2, 5, 6, 7), (1, 2, 3, 4, 4), (0, -1, -1, -2)),  # crops on every axis
        ((1, 1, 2, 3, 3), (1, 1, 5, 3, 3), (0, 3, 0, 0)),  # planes past the source: zeros
    ],
)
@pytest.mark.parametrize("strided", [False, True])
def test_pad_planes_places_planes_at_any_offset(rng, a_shape, dst_shape, offsets, strided):
    from numconv.kernels.padding import pad_planes

    a = rng.standard_normal(a_shape).astype(np.float32)
    if strided:  # a strided view, read in place
        a = np.ascontiguousarray(a.transpose(0, 2, 1, 3, 4)).transpose(0, 2, 1, 3, 4)
    expected = np.zeros(dst_shape, np.float32)
    for index in np.ndindex(*dst_shape):
        source = tuple(i - s for i, s in zip(index[1:], offsets, strict=True))
        if all(0 <= i < n for i, n in zip(source, a_shape[1:], strict=True)):
            expected[index] = a[(index[0], *source)]
    dst = np.full(dst_shape, np.nan, np.float32)
    pad_planes(a, dst, *offsets)
    np.testing.assert_array_equal(dst, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "a_shape, dst_shape, offsets",
    [
        ((2, 3, 1, 7, 7), (2, 3, 1, 10, 10), (0, 0, 1, 1)),  # res3x3_7's whole-tile source
        ((2, 3, 1, 7, 7), (2, 3, 1, 8, 8), (0, 0, 0, 0)),  # its output gradient
        ((1, 2, 2, 5, 3), (1, 2, 2, 9, 8), (0, 0, 2, 5)),  # rows end on the last lane
        ((1, 2, 1, 9, 9), (1, 2, 1, 7, 7), (0, 0, -1, -1)),  # crops
        ((1, 1, 1, 3, 5), (1, 1, 1, 6, 8), (0, 0, -2, 3)),  # crops rows, pads columns
        ((1, 2, 1, 4, 4), (1, 2, 1, 4, 4), (0, 0, 0, 0)),  # a plain copy
        ((1, 1, 1, 3, 3), (1, 1, 1, 4, 16), (0, 0, 0, 13)),  # float32's full vector
    ],
)
def test_narrow_planes_are_padded_as_pad_planes_pads_them(rng, dtype, a_shape, dst_shape, offsets):
    """place_planes sends planes no wider than a vector to the masked-row kernel (in
    float64 only up to 8 columns): the same values as the row loops, nothing else touched."""
    from numconv._padding import place_planes
    from numconv.kernels.padding import pad_planes

    a = rng.standard_normal(a_shape).astype(dtype)
    before = a.copy()
    expected = np.full(dst_shape, np.nan, dtype)
    pad_planes(a, expected, *offsets)
    dst = np.full(dst_shape, np.nan, dtype)
    place_planes(a, dst, offsets, dtype)
    np.testing.assert_array_equal(dst, expected)
    np.testing.assert_array_equal(a, before)


TAP_SUMS_SHAPES = [
    ((2, 3, 9, 11), 5, (3, 3), dict(padding=1)),  # 5 outputs, 27 taps: part blocks
    ((3, 2, 13, 7), 9, (2, 3), dict(stride=2, padding=(1, 2))),  # 18 taps, 9 outputs
    ((1, 1, 8, 20), 17, (3, 3), dict(stride=(2, 1), padding=2, dilation=(2, 1))),
    ((2, 4, 15, 15), 8, (5, 5), dict(stride=3, padding=2, dilation=2)),  # two row phases
    ((2, 3, 30, 5), 3, (7, 7), dict(stride=2, padding=3)),  # planes wider than the input
    ((3, 4, 50), 6, (5,), dict(stride=2, padding=1)),  # 1-d: one row, W phases at offsets
    ((2, 3, 41), 4, (4,), dict(stride=3, padding=((2, 1),), dilation=2)),
    ((2, 3, 5, 40), 4, (5, 3), dict(stride=(2, 1), padding=(0, 1))),  # 2-d with one output row
    ((3, 6, 9), 7, (3, 3), dict(padding="same")),  # unbatched
]


@pytest.mark.parametrize("task_positions", [1, 7, 40, 1 << 20])
@pytest.mark.parametrize("shape, c_out, kernel, kw", TAP_SUMS_SHAPES)
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_tap_sums_match_the_direct_algorithm(monkeypatch, rng, shape, c_out, kernel, kw, mode,
                                             task_positions):  # fmt: skip
    """Tasks of one position, of part rows or columns, and of whole images; every padding mode."""
    monkeypatch.setattr(tap_sums, "TASK_POSITIONS", task_positions)
    kw = dict(kw, padding_mode=mode)
    x, w, b, gy = _random_layer(rng, shape, c_out, kernel, kw)
    assert tap_sums.applies(_plan(x, w, kw))
    _assert_matches_direct("tap_sums", x, w, b, gy, **kw)


@pytest.mark.parametrize("threads", [1, 2])
def test_tap_sums_float32_is_within_1e5_of_float64(rng, threads):
    """Long float32 sums (4 images of 48² positions) stay within the direct tolerance."""
    x = rng.standard_normal((4, 3, 48, 48))
    w = rng.standard_normal((10, 3, 3, 3))
    gy = rng.standard_normal((4, 10, 48, 48))
    expected = F.conv2d_weight_grad(x, w.shape, gy, padding=1)
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        with _dispatch.forced("tap_sums"):
            got = F.conv2d_weight_grad(x.astype(np.float32), w.shape, gy.astype(np.float32),
                                       padding=1)  # fmt: skip
    finally:
        numba.set_num_threads(previous)
    assert got.dtype == np.float32
    assert_close(got, expected, np.float32)


@pytest.mark.parametrize(
    "algorithm, shape, c_out, kernel, kw",
    [
        ("tap_sums", (2, 3, 20, 70), 5, (7, 7), dict(stride=2, padding=3)),
        ("tap_sums", (2, 3, 9, 50), 4, (3, 3), dict(padding=(1, 2))),
        ("tap_sums", (3, 4, 90), 6, (5,), dict(stride=2, padding=1)),
        ("polyphase", (2, 3, 10, 70), 4, (3, 3), dict(padding=(2, 3), dilation=2)),
        # Both W phases from one pair of loads (copy_row_vector_pairs), even and odd widths
        ("phase_sums", (2, 4, 9, 70), 6, (3, 3), dict(stride=2, padding=1, groups=2)),
        ("phase_sums", (2, 4, 9, 67), 4, (5, 5), dict(stride=2, padding=2, groups=2)),
    ],
)
@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_vector_row_copies_in_float32_match_float64(rng, algorithm, shape, c_out, kernel, kw,
                                                    mode):  # fmt: skip
    """Rows of several 16-lane float32 vectors, at column stride 1 and 2, through the
    masked-vector copies (kernels/plane_rows.py): all three ops against float64 direct."""
    kw = dict(kw, padding_mode=mode)
    x, w, b, gy = _random_layer(rng, shape, c_out, kernel, kw)
    with _dispatch.forced("direct"):
        expected = _all_three(x, w, b, gy, **kw)
    with _dispatch.forced(algorithm):
        got = _all_three(*(a.astype(np.float32) for a in (x, w, b, gy)), **kw)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == np.float32
        assert_close(g, e, np.float32)


@pytest.mark.parametrize("given", ["stale", "too small"])
def test_phase_sums_planes_from_scratch_are_zeroed_or_replaced(monkeypatch, rng, given):
    """The kernels' planes come from the caller's scratch: stale values there (NaN) must
    not reach a result, nor send the weight gradient to its non-finite fallback (the
    planar GEMM), and a buffer too small must be replaced by a fresh one."""
    from numconv import _workspace

    real = _workspace.scratch

    def scratch(name, shape, dtype):
        if name != "phase_sums.planes":
            return real(name, shape, dtype)
        return np.full(shape if given == "stale" else (0,), np.nan, dtype)

    monkeypatch.setattr(_workspace, "scratch", scratch)
    fallbacks = []
    original = planar_gemm.weight_grad
    monkeypatch.setattr(planar_gemm, "weight_grad", lambda *a: fallbacks.append(1) or original(*a))
    kw = dict(stride=2, padding=1, groups=2)
    x, w, b, gy = _random_layer(rng, (3, 4, 9, 11), 6, (3, 3), kw)
    _assert_matches_direct("phase_sums", x, w, b, gy, **kw)
    assert not fallbacks


def test_tap_sums_only_take_one_group_and_one_slice_deep():
    x = np.empty((2, 4, 8, 8))
    assert tap_sums.applies(_plan(x, np.empty((4, 4, 3, 3)), {}))
    assert not tap_sums.applies(_plan(x, np.empty((4, 2, 3, 3)), dict(groups=2)))
    assert not tap_sums.applies(_plan(np.empty((2, 4, 3, 8, 8)), np.empty((4, 4, 1, 3, 3)), {}))
    assert tap_sums.applies(_plan(np.empty((2, 4, 30)), np.empty((4, 4, 3)), {}))


def _assert_same_non_finite(got, expected):
    """NaN and infinities exactly where ``expected`` has them; the finite values close."""
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(got[np.isinf(expected)], expected[np.isinf(expected)])
    finite = np.isfinite(expected)
    assert_close(got[finite], expected[finite], np.float64)


@pytest.mark.parametrize("kernel", [(2, 2), (3, 3), (2, 5)])  # 12, 27 and 30 taps over 3 channels
def test_tap_sums_forward_adds_exact_zeros_for_block_padding(rng, kernel):
    """Taps padding the last block of 9 read zeros, not real inputs: an infinity stays infinite.

    With zero weights reading a real tap instead, ``0·inf`` would turn the
    outputs that tap reaches into NaN where the direct algorithm gives ±inf.
    An odd ``C_out`` also runs the last output row alone.
    """
    x = rng.standard_normal((2, 3, 9, 10))
    x[1, 2, 4, 6] = np.inf
    x[0, 0, 0, 0] = -np.inf
    w = rng.standard_normal((5, 3, *kernel))
    b = rng.standard_normal(5)
    with _dispatch.forced("direct"):
        expected = F.conv2d(x, w, b, padding=1)
    with _dispatch.forced("tap_sums"):
        got = F.conv2d(x, w, b, padding=1)
    _assert_same_non_finite(got, expected)


@pytest.mark.parametrize(
    "x_shape, w_shape, kw, parts",
    [
        ((1, 3, 64, 64), (16, 3, 3, 3), dict(padding=1), 1),  # 3.5 MFLOP: one part
        ((1, 8, 20000), (16, 8, 15), dict(padding=7), 2),  # 5 tasks of 4096 would be 3 + 2
        ((1, 3, 224, 224), (64, 3, 7, 7), dict(stride=2, padding=3), 2),
        ((64, 3, 32, 32), (32, 3, 3, 3), dict(padding=1), 2),
    ],
)
def test_tap_sums_split_tasks_evenly_over_the_parts_that_pay(x_shape, w_shape, kw, parts):
    plan = _plan(np.empty(x_shape), np.empty(w_shape), kw)
    layout = tap_sums._layout(plan, 2, tap_sums.TASK_POSITIONS)
    assert len(layout.parts) == parts
    assert len({hi - lo for lo, hi in layout.parts}) == 1
    rows, cols = layout.chunks
    covered = plan.batch * -(-plan.out[1] // rows) * -(-plan.out[2] // cols)
    assert layout.parts[-1][1] == covered


@pytest.mark.parametrize(
    "x_shape, w_shape, kw, chosen",
    [
        ((64, 3, 32, 32), (32, 3, 3, 3), dict(padding=1), True),
        ((1, 3, 224, 224), (8, 3, 7, 7), dict(padding=3), True),
        ((1, 64, 2048), (4, 64, 31), dict(padding=15), True),
        ((2, 128, 56, 56), (8, 128, 5, 5), dict(padding=2), False),  # planes 5× in + out
        ((1, 16, 40, 40), (2, 16, 7, 7), dict(padding=3), False),  # 7×
    ],
)
def test_tap_sums_are_chosen_only_within_the_scratch_bound(x_shape, w_shape, kw, chosen):
    plan = _plan(np.empty(x_shape), np.empty(w_shape), kw)
    y_size = plan.batch * plan.out_channels * math.prod(plan.out)
    within = tap_sums.scratch_elements(plan) <= math.prod(x_shape) + y_size
    assert within == chosen
    names = {_dispatch.select(op, plan, np.float32).NAME for op in ("forward", "weight_grad")}
    # Outside the bound both go to the phase sums (few weights a filter), not tap sums.
    assert names == ({"tap_sums"} if chosen else {"phase_sums"})


PHASE_SUMS_SHAPES = [
    # shape, c_out, kernel, kw
    ((2, 8, 13, 11), 12, (3, 3), dict(padding=1, groups=2)),  # 6 outputs, 36 taps a group
    ((2, 6, 17, 15), 9, (5, 5), dict(stride=2, padding=2, groups=3)),  # 3 outputs a group: odd
    ((1, 4, 9, 20), 5, (2, 3), dict(stride=(2, 3), padding=(1, 2), dilation=(2, 1))),
    ((2, 3, 15, 15), 4, (5, 5), dict(stride=3, padding=2, dilation=2)),  # two row phases
    ((2, 3, 30, 5), 3, (7, 7), dict(stride=2, padding=3)),  # planes wider than the input
    ((2, 4, 5, 9, 8), 6, (3, 3, 3), dict(stride=2, padding=1, groups=2)),  # 3-d: depth phases
    ((2, 3, 6, 7, 9), 4, (2, 1, 3), dict(stride=(1, 2, 1), padding=(1, 0, 2), dilation=(2, 1, 1))),
    ((1, 2, 3, 4, 5), 2, (3, 3, 3), dict(padding=1)),  # junk rows between depth slices
    ((3, 4, 30), 6, (5,), dict(stride=2, padding=1, groups=2)),  # 1-d
    ((2, 6, 8, 8), 12, (3, 3), dict(padding=1, groups=6)),  # channel multiplier 2
    ((3, 6, 9), 7, (3, 3), dict(padding="same")),  # unbatched
    # stride above the kernel: a residue without taps; pads beyond the taps' reach
    ((2, 4, 11, 10), 4, (2, 2), dict(stride=3, padding=(4, 3), groups=2)),
    ((2, 4, 12, 13), 6, (3, 3), dict(stride=2, groups=2)),  # the last input row never read
]


@pytest.mark.parametrize("task_positions", [1, 7, 40, 1 << 20])
@pytest.mark.parametrize("shape, c_out, kernel, kw", PHASE_SUMS_SHAPES)
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_phase_sums_match_the_direct_algorithm(monkeypatch, rng, shape, c_out, kernel, kw, mode,
                                               task_positions):  # fmt: skip
    """Tasks of one wide row, of part images and of whole images; every padding mode."""
    if mode != "zeros" and len(kernel) == 3 and kw.get("padding") == (1, 0, 2):
        kw = dict(kw, padding=(1, 0, 1))  # reflect needs pads smaller than the input
    monkeypatch.setattr(phase_sums, "TASK_POSITIONS", task_positions)
    kw = dict(kw, padding_mode=mode)
    x, w, b, gy = _random_layer(rng, shape, c_out, kernel, kw)
    _assert_matches_direct("phase_sums", x, w, b, gy, **kw)


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
@pytest.mark.parametrize("threads", [1, 2])
def test_phase_sums_float32_is_within_1e5_of_float64(rng, threads, mode):
    """Long float32 sums (400 taps a group forward, up to 108 a residue in the input
    gradient, 578 positions a weight) stay within the direct tolerance.

    Rows of 19 plane columns: two float32 vectors each in the plane copy's
    stride-2 path, and reflected columns it then copies one by one.
    """
    x = rng.standard_normal((4, 32, 33, 33))
    w = rng.standard_normal((24, 16, 5, 5))
    gy = rng.standard_normal((4, 24, 17, 17))
    kw = dict(stride=2, padding=2, groups=2, padding_mode=mode)
    with _dispatch.forced("direct"):
        expected = F.conv2d(x, w, **kw), F.conv2d_input_grad(x.shape, w, gy, **kw)
    x32, w32, gy32 = (a.astype(np.float32) for a in (x, w, gy))
    with _dispatch.forced("direct"):
        expected += (F.conv2d_weight_grad(x, w.shape, gy, **kw),)
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        with _dispatch.forced("phase_sums"):
            got = (
                F.conv2d(x32, w32, **kw),
                F.conv2d_input_grad(x.shape, w32, gy32, **kw),
                F.conv2d_weight_grad(x32, w.shape, gy32, **kw),  # 2·289 positions a weight
            )
    finally:
        numba.set_num_threads(previous)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == np.float32
        assert_close(g, e, np.float32)


@pytest.mark.parametrize("kernel, kw", [((3, 3), dict(padding=1)), ((2, 5), dict(stride=2))])
def test_phase_sums_keep_infinities_where_they_belong(rng, kernel, kw):
    """Neither the blocks' reads past a run's end nor the junk columns reach a real output.

    The register blocks' last pass reads past the run into the next plane
    or the zeroed tail and its extra positions are never stored, and junk
    columns (past the output width, reading inputs no real output reads at
    that tap) are never copied out; with either wrong, a stray infinity
    would show up where the direct algorithm has finite values.
    """
    x = rng.standard_normal((2, 4, 9, 12))
    x[1, 2, 4, 11] = np.inf  # the last column: junk columns of several taps read it
    x[0, 0, 0, 0] = -np.inf
    w = rng.standard_normal((6, 2, *kernel))  # 2 groups of 3 outputs and 2·|kernel| taps
    b = rng.standard_normal(6)
    with _dispatch.forced("direct"):
        expected = F.conv2d(x, w, b, groups=2, **kw)
    with _dispatch.forced("phase_sums"):
        got = F.conv2d(x, w, b, groups=2, **kw)
    _assert_same_non_finite(got, expected)


@pytest.mark.parametrize(
    "kernel, kw", [((3, 3), dict(padding=1)), ((2, 5), dict(stride=2)), ((5, 5), dict(stride=2))]
)
def test_phase_sums_input_gradient_keeps_infinities_where_they_belong(rng, kernel, kw):
    """The input gradient's forwards read the output gradient: its junk columns and
    the blocks' reads past each residue's runs must not carry an infinity anywhere else."""
    x = np.empty((2, 4, 13, 12))
    w = rng.standard_normal((6, 2, *kernel))
    gy = rng.standard_normal(F.conv2d(x, w, groups=2, **kw).shape)
    gy[1, 2, 3, -1] = np.inf  # the last column: the residues' junk columns read it
    gy[0, 4, 0, 0] = -np.inf
    with _dispatch.forced("direct"):
        expected = F.conv2d_input_grad(x.shape, w, gy, groups=2, **kw)
    with _dispatch.forced("phase_sums"):
        got = F.conv2d_input_grad(x.shape, w, gy, groups=2, **kw)
    assert np.isinf(expected).any()
    _assert_same_non_finite(got, expected)


@pytest.mark.parametrize("value", [np.inf, np.nan])
@pytest.mark.parametrize("kernel, kw", [((3, 3), dict(padding=1)), ((2, 5), dict(stride=2))])
def test_phase_sums_weight_gradient_hands_non_finite_inputs_to_the_planar_gemm(
    monkeypatch, rng, kernel, kw, value
):
    """An input the junk positions read (the last column) would make ``0·inf`` or
    ``0·nan`` sums where the direct algorithm has finite ones; the kernel's probe
    sees it and the planar GEMM computes the gradient instead."""
    x = rng.standard_normal((2, 4, 9, 12))
    w = np.empty((6, 2, *kernel))
    gy = rng.standard_normal(F.conv2d(x, w, groups=2, **kw).shape)
    calls = []
    original = planar_gemm.weight_grad
    monkeypatch.setattr(planar_gemm, "weight_grad", lambda *a: calls.append(1) or original(*a))
    with _dispatch.forced("phase_sums"):
        F.conv2d_weight_grad(x, w.shape, gy, groups=2, **kw)
    assert not calls  # finite: the phase sums' own result
    x[1, 2, 4, 11] = value
    with _dispatch.forced("direct"):
        expected = F.conv2d_weight_grad(x, w.shape, gy, groups=2, **kw)
    with _dispatch.forced("phase_sums"):
        got = F.conv2d_weight_grad(x, w.shape, gy, groups=2, **kw)
    assert calls and np.isfinite(expected).any()
    _assert_same_non_finite(got, expected)


@pytest.mark.parametrize(
    "shape, c_out, kernel, kw",
    [
        # The one input column is padded position 1: residue 1 of stride 2,
        # which a 1-wide kernel's only tap (residue 0) never reaches.
        ((1, 1, 1, 1, 1), 2, (1, 1, 1), dict(stride=(1, 1, 2), padding=1)),
        ((2, 3, 1, 1), 2, (1, 1), dict(stride=2, padding=1)),
    ],
)
def test_phase_sums_input_gradient_without_a_residue_with_taps_is_zero(
    rng, shape, c_out, kernel, kw
):
    nd = len(kernel)
    x, w, _, gy = _random_layer(rng, shape, c_out, kernel, kw)
    plan = _plan(x, w, kw)
    assert phase_sums._gradient_layout(plan, 2).tap_count.size == 0
    with _dispatch.forced("direct"):
        expected = getattr(F, f"conv{nd}d_input_grad")(x.shape, w, gy, **kw)
    with _dispatch.forced("phase_sums"):
        got = getattr(F, f"conv{nd}d_input_grad")(x.shape, w, gy, **kw)
    assert not expected.any()
    assert_close(got, expected, np.float64)


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
@pytest.mark.parametrize("shape, c_out, kernel, kw", PHASE_SUMS_SHAPES)
def test_phase_sums_input_gradient_writes_every_position_once(shape, c_out, kernel, kw, mode):
    """The residues' forwards write disjoint positions (no two parts race on one)
    and, with the positions no tap reaches, cover the whole gradient."""
    if mode == "reflect" and len(kernel) == 3 and kw.get("padding") == (1, 0, 2):
        kw = dict(kw, padding=(1, 0, 1))  # reflect needs pads smaller than the input
    nd = len(kernel)
    groups = kw.get("groups", 1)
    w = np.empty((c_out, shape[-nd - 1] // groups, *kernel))
    plan = _plan(np.empty(shape), w, dict(kw, padding_mode=mode))
    layout = phase_sums._gradient_layout(plan, 2)
    written = np.zeros(layout.extent[0] * layout.extent[1] * layout.extent[2], dtype=int)
    for row_target, out_w, col_offset in zip(
        layout.row_target, layout.out_w, layout.col_offset, strict=True
    ):
        rows = row_target[row_target >= 0]
        cols = col_offset + plan.stride[2] * np.arange(out_w)
        np.add.at(written, (rows[:, None] * layout.extent[2] + cols).ravel(), 1)
    assert written.max() == 1
    assert layout.gaps or written.min() == 1
    assert layout.padded == (mode != "zeros" and any(b or a for b, a in plan.pads))


@pytest.mark.parametrize(
    "x_shape, w_shape, kw",
    [
        ((4, 64, 33, 33), (96, 16, 5, 5), dict(stride=2, padding=2, groups=4)),
        ((1, 64, 33, 33), (96, 16, 5, 5), dict(stride=2, padding=2, groups=4)),
        ((2, 16, 8, 28, 28), (32, 16, 3, 3, 3), dict(stride=2, padding=1)),
        ((1, 8, 16, 32, 32), (16, 8, 5, 5, 5), dict(padding=2)),
        ((1, 4, 200, 200), (8, 4, 3, 3), dict(padding=1)),
        ((8, 64, 2000), (64, 16, 7), dict(padding=3, groups=4)),
        # batch-1 and batch-2 layers of up to 2^19 weights a group (§34): 1.43 and 1.27
        ((1, 128, 28, 28), (128, 128, 5, 5), dict(padding=2)),
        ((2, 64, 27, 27), (192, 64, 5, 5), dict(padding=2)),
    ],
)
def test_phase_sums_tasks_cover_every_row_once_within_the_scratch_bound(x_shape, w_shape, kw):
    """Parts get equal task counts where the tasks allow, and scratch stays within
    twice the input and output (issue 6's bound), at two threads."""
    plan = _plan(np.empty(x_shape), np.empty(w_shape), kw)
    layout = phase_sums._layout(plan, 2, phase_sums.TASK_POSITIONS)
    tasks = plan.batch * -(-layout.out_rows // layout.chunk_rows)
    assert layout.parts[0][0] == 0 and layout.parts[-1][1] == tasks
    assert all(a[1] == b[0] for a, b in zip(layout.parts, layout.parts[1:]))
    if tasks % len(layout.parts) == 0:
        assert len({hi - lo for lo, hi in layout.parts}) == 1
    y_size = plan.batch * plan.out_channels * math.prod(plan.out)
    assert phase_sums.scratch_elements(plan) <= 2 * (math.prod(x_shape) + y_size)


@pytest.mark.parametrize(
    "x_shape, w_shape, kw, images",
    [
        ((8, 16, 28, 28), (16, 2, 3, 3), dict(stride=2, padding=1, groups=8), 4),  # 240 a plane
        ((3, 4, 9, 10), (6, 2, 3, 3), dict(padding=1, groups=2), 3),  # a part's images, all
        ((2, 4, 40, 40), (4, 2, 3, 3), dict(padding=1, groups=2), 1),  # 1806 a plane: too long
        ((1, 4, 9, 10), (6, 2, 3, 3), dict(padding=1, groups=2), 1),  # one image
    ],
)
def test_phase_sums_weight_gradient_runs_cross_images(rng, x_shape, w_shape, kw, images):
    """Tasks of several whole images, up to RUN_POSITIONS plane positions, and as many
    images as leave every part a task; the weight gradient against the direct one."""
    plan = _plan(np.empty(x_shape), np.empty(w_shape), kw)
    parts = phase_sums._part_count(plan, 2)
    got_images, ranges = phase_sums._weight_grad_tasks(plan, parts, phase_sums.TASK_POSITIONS)
    assert got_images == images
    if images > 1:  # tasks of whole images, every one in some part
        assert ranges[0][0] == 0 and ranges[-1][1] == -(-plan.batch // images)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    gy = rng.standard_normal(F.conv2d(x, w, **kw).shape)
    with _dispatch.forced("direct"):
        expected = F.conv2d_weight_grad(x, w.shape, gy, **kw)
    with _dispatch.forced("phase_sums"):
        got = F.conv2d_weight_grad(x, w.shape, gy, **kw)
    assert_close(got, expected, np.float64)


def test_winograd_work_split_by_tiles_positions_and_filters(monkeypatch):
    """The rule of _work_split, at two threads: whole-tile chunks with MIN_TILES tiles a
    thread, else by filters up to FILTER_SPLIT_MAX_CHANNEL_TILES input channel-tiles or
    with whole groups a thread, else by transform position."""
    monkeypatch.setattr(winograd.numba, "get_num_threads", lambda: 2)
    assert winograd._work_split(32, 8, 64, 1) == "tiles"  # 256 tiles
    assert winograd._work_split(7, 7, 256, 1) == "filters"  # b1_3x3_14: 49 tiles, 12544
    assert winograd._work_split(32, 4, 512, 1) == "positions"  # res3x3_7: 128 tiles, 65536
    assert winograd._work_split(32, 4, 512, 2) == "filters"  # a group a thread
    limit = winograd.FILTER_SPLIT_MAX_CHANNEL_TILES
    assert winograd._work_split(1, 64, limit // 64, 1) == "filters"
    assert winograd._work_split(1, 64, limit // 64 + 1, 1) == "positions"


@pytest.mark.parametrize(
    "x_shape, w_shape, kw",
    [
        ((2, 48, 10, 10), (64, 48, 5, 5), dict(padding=2)),  # 76800 weights
        ((2, 48, 10, 10), (64, 48, 5, 5), dict(padding=2, padding_mode="reflect")),
        ((2, 32, 9, 9), (48, 32, 3, 3), dict(stride=2, padding=1)),  # thin residues, 13824
        ((2, 64, 40), (64, 64, 9), dict(padding=4, padding_mode="circular")),  # 1-d
        ((1, 16, 5, 7, 7), (32, 16, 3, 3, 3), dict(stride=2, padding=1)),  # 3-d, thin
        ((4, 32, 32, 32), (32, 32, 3, 3), dict(padding=3, dilation=3)),  # polyphase before
    ],
)
def test_layers_newly_given_to_phase_sums_match_torch(torch, rng, x_shape, w_shape, kw):
    """Layers the rule of §34 moved to phase sums (up to 2^19 weights a group, or 2^15
    with single-tap residues): the default selection runs all three ops as phase sums,
    which match PyTorch in float64 and stay within the direct tolerance in float32."""
    x, w, b = (
        rng.standard_normal(x_shape),
        rng.standard_normal(w_shape),
        rng.standard_normal(w_shape[0]),
    )
    plan = _plan(x, w, kw)
    assert {_dispatch.select(op, plan, np.float64).NAME for op in _dispatch.OPS} == {"phase_sums"}
    mode = kw.get("padding_mode", "zeros")
    conv_kw = {k: v for k, v in kw.items() if k != "padding_mode"}
    settings = dict(stride=1, padding=0, dilation=1, groups=1) | conv_kw
    y, gx, gw, gb, gy = torch_conv_grads(torch, x, w, b, 7, **settings, mode=mode)
    nd = len(x_shape) - 2
    forward, input_grad, weight_grad = (
        getattr(F, f"conv{nd}d{suffix}") for suffix in ("", "_input_grad", "_weight_grad")
    )
    for dtype in (np.float64, np.float32):
        xd, wd, bd, gyd = (a.astype(dtype) for a in (x, w, b, gy))
        got = (
            forward(xd, wd, bd, **kw),
            input_grad(x.shape, wd, gyd, **kw),
            weight_grad(xd, w.shape, gyd, **kw),
            F.conv_bias_grad(gyd),
        )
        for g, e in zip(got, (y, gx, gw, gb), strict=True):
            assert g.dtype == dtype
            assert_close(g, e, dtype)


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_dilated_input_gradients_run_as_phase_sums_and_match_torch(torch, rng, mode):
    """A dilation-2 layer with 64 channels (§36): its forward stays on polyphase, its
    input gradient runs as phase sums and matches PyTorch in float64 and float32."""
    x, w = rng.standard_normal((2, 64, 24, 24)), rng.standard_normal((64, 64, 3, 3))
    kw = dict(padding=2, dilation=2, padding_mode=mode)
    plan = _plan(x, w, kw)
    assert _dispatch.select("forward", plan, np.float64).NAME == "polyphase"
    assert _dispatch.select("input_grad", plan, np.float64).NAME == "phase_sums"
    _, expected, _, _, gy = torch_conv_grads(torch, x, w, None, 3, 1, 2, 2, 1, mode)
    assert_close(F.conv2d_input_grad(x.shape, w, gy, **kw), expected)
    got32 = F.conv2d_input_grad(x.shape, w.astype(np.float32), gy.astype(np.float32), **kw)
    assert_close(got32, expected, np.float32)
