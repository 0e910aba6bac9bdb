"""The named shape suites of numconv's benchmarks, shared by the CLI and asv.

PERFORMANCE.md's convolution layers, convolutions outside it, the pooling
issue's three cases, the other pooling ops, transposed convolution and unfold/fold; each suite has a
small twin for ``--quick`` runs and CI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ConvCase:
    """One convolution problem: ``(N, C, *spatial) -> K`` channels with a ``kernel``."""

    name: str
    batch: int
    in_channels: int
    spatial: tuple[int, ...]
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1

    @property
    def nd(self) -> int:
        return len(self.spatial)

    @property
    def kwargs(self) -> dict:
        return dict(
            stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups
        )

    @property
    def out_spatial(self) -> tuple[int, ...]:
        e = self.dilation * (self.kernel - 1) + 1
        return tuple((n + 2 * self.padding - e) // self.stride + 1 for n in self.spatial)

    @property
    def flops(self) -> int:
        """2 · N · K · C/groups · ∏k · ∏out (direct-algorithm multiply-adds)."""
        per_output = self.in_channels // self.groups * self.kernel**self.nd
        return 2 * self.batch * self.out_channels * per_output * math.prod(self.out_spatial)

    def arrays(self, dtype=np.float32, seed: int = 0):
        """Standard-normal ``x``, ``w``, ``b`` and an output gradient ``gy``."""
        rng = np.random.default_rng(seed)
        k = (self.kernel,) * self.nd
        x = rng.standard_normal((self.batch, self.in_channels, *self.spatial), dtype=np.float32)
        w = rng.standard_normal((self.out_channels, self.in_channels // self.groups, *k),
                                dtype=np.float32)  # fmt: skip
        b = rng.standard_normal(self.out_channels, dtype=np.float32)
        gy = rng.standard_normal((self.batch, self.out_channels, *self.out_spatial),
                                 dtype=np.float32)  # fmt: skip
        return tuple(a.astype(dtype, copy=False) for a in (x, w, b, gy))


@dataclass(frozen=True)
class TransposeCase(ConvCase):
    """A transposed convolution: the transpose of the convolution the fields describe.

    It maps ``gy``-shaped inputs (``out_spatial``) back to ``x``-shaped outputs
    (``spatial``), with the same weight; ``output_padding`` makes the sizes exact.
    """

    @property
    def output_padding(self) -> tuple[int, ...]:
        e = self.dilation * (self.kernel - 1) + 1
        return tuple(
            n - ((o - 1) * self.stride - 2 * self.padding + e)
            for n, o in zip(self.spatial, self.out_spatial, strict=True)
        )


@dataclass(frozen=True)
class UnfoldCase(ConvCase):
    """unfold (im2col) of ``x`` for a ``kernel``-sized window, and fold, its adjoint."""

    flops = None  # data movement only


POOL_KINDS = ("max", "min", "avg", "lp", "adaptive_avg", "adaptive_max", "unpool")


@dataclass(frozen=True)
class PoolCase:
    """One pooling problem on ``(N, C, *spatial)``; ``kind`` is one of ``POOL_KINDS``.

    For ``unpool`` the timed op is ``max_unpool`` of a max pooling of ``x`` with
    this window, back to ``spatial``.
    """

    name: str
    kind: str
    batch: int
    channels: int
    spatial: tuple[int, ...]
    kernel: int = 1
    stride: int | None = None
    padding: int = 0
    output_size: int = 1  # adaptive pooling only
    norm_type: float = 2.0  # LP pooling only

    def __post_init__(self):
        if self.kind not in POOL_KINDS:
            raise ValueError(f"kind must be one of {POOL_KINDS}; got {self.kind!r}")

    @property
    def nd(self) -> int:
        return len(self.spatial)

    @property
    def adaptive(self) -> bool:
        return self.kind.startswith("adaptive")

    @property
    def kwargs(self) -> dict:
        if self.adaptive:
            return dict(output_size=self.output_size)
        stride = self.kernel if self.stride is None else self.stride
        if self.kind == "lp":  # LP pooling has no padding
            return dict(norm_type=self.norm_type, kernel_size=self.kernel, stride=stride)
        return dict(kernel_size=self.kernel, stride=stride, padding=self.padding)

    @property
    def pooled_spatial(self) -> tuple[int, ...]:
        """The pooling's output size (for unpool: the size it unpools from)."""
        if self.adaptive:
            return (self.output_size,) * self.nd
        stride = self.kernel if self.stride is None else self.stride
        return tuple((n + 2 * self.padding - self.kernel) // stride + 1 for n in self.spatial)

    @property
    def out_spatial(self) -> tuple[int, ...]:
        return self.spatial if self.kind == "unpool" else self.pooled_spatial

    flops = None  # memory-bound: GFLOP/s would mislead

    def arrays(self, dtype=np.float32, seed: int = 0):
        """Standard-normal ``x`` and an output gradient ``gy``."""
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((self.batch, self.channels, *self.spatial), dtype=np.float32)
        gy = rng.standard_normal((self.batch, self.channels, *self.out_spatial),
                                 dtype=np.float32)  # fmt: skip
        return x.astype(dtype, copy=False), gy.astype(dtype, copy=False)


# PERFORMANCE.md's table, in its order.
PERFORMANCE_SUITE = (
    ConvCase("stem7x7_s2", 8, 3, (224, 224), 64, 7, stride=2, padding=3),
    ConvCase("res3x3_56", 8, 64, (56, 56), 64, 3, padding=1),
    ConvCase("res3x3_28", 8, 128, (28, 28), 128, 3, padding=1),
    ConvCase("res3x3_14", 8, 256, (14, 14), 256, 3, padding=1),
    ConvCase("res3x3_7", 8, 512, (7, 7), 512, 3, padding=1),
    ConvCase("down3x3_s2", 8, 128, (28, 28), 256, 3, stride=2, padding=1),
    ConvCase("pw1x1", 8, 256, (28, 28), 64, 1),
    ConvCase("dw3x3", 8, 256, (28, 28), 256, 3, padding=1, groups=256),
    ConvCase("cifar_first", 64, 3, (32, 32), 32, 3, padding=1),
    ConvCase("dilated3x3", 8, 64, (56, 56), 64, 3, padding=2, dilation=2),
    ConvCase("audio1d", 16, 64, (4096,), 64, 9, padding=4),
    ConvCase("video3d", 2, 32, (16, 56, 56), 32, 3, padding=1),
)

# Small versions of the same kinds of layer, for --quick runs and CI smoke tests.
QUICK_SUITE = (
    ConvCase("res3x3_small", 2, 32, (28, 28), 32, 3, padding=1),
    ConvCase("stem7x7_small", 2, 3, (64, 64), 16, 7, stride=2, padding=3),
    ConvCase("dw3x3_small", 2, 64, (28, 28), 64, 3, padding=1, groups=64),
    ConvCase("pw1x1_small", 2, 64, (28, 28), 32, 1),
    ConvCase("audio1d_small", 4, 16, (1024,), 16, 9, padding=4),
    ConvCase("video3d_small", 1, 8, (8, 16, 16), 8, 3, padding=1),
)

# Convolution layers outside PERFORMANCE.md's suite, of the kinds issue 6 asks
# about as well: odd sizes, other channel counts, groups 2-8, batch 1, stride 2,
# 5×5 windows, and strided depthwise layers (MobileNet's downsampling blocks).
CONV_VARIANTS_SUITE = (
    ConvCase("odd29_3x3", 8, 64, (29, 29), 64, 3, padding=1),
    ConvCase("g2_3x3", 8, 128, (28, 28), 128, 3, padding=1, groups=2),
    ConvCase("g8_3x3", 8, 128, (28, 28), 128, 3, padding=1, groups=8),
    ConvCase("b1_3x3_14", 1, 256, (14, 14), 256, 3, padding=1),
    ConvCase("s2_odd35", 8, 96, (35, 35), 160, 3, stride=2),
    ConvCase("k5_48", 8, 48, (28, 28), 64, 5, padding=2),
    ConvCase("conv1d_k5", 32, 40, (1000,), 80, 5, padding=2),
    ConvCase("mnist_k5", 64, 1, (28, 28), 32, 5),
    ConvCase("video3d_s2", 2, 16, (8, 28, 28), 32, 3, stride=2, padding=1),
    ConvCase("g4_k5_s2", 4, 64, (33, 33), 96, 5, stride=2, padding=2, groups=4),
    ConvCase("g8_3x3_s2", 8, 128, (28, 28), 128, 3, stride=2, padding=1, groups=8),
    ConvCase("b1_g8_3x3_s2", 1, 128, (28, 28), 128, 3, stride=2, padding=1, groups=8),
    ConvCase("b1_stem", 1, 3, (224, 224), 64, 7, stride=2, padding=3),
    ConvCase("dw3x3_s2_112", 8, 96, (112, 112), 96, 3, stride=2, padding=1, groups=96),
    ConvCase("dw3x3_s2_28", 8, 256, (28, 28), 256, 3, stride=2, padding=1, groups=256),
    ConvCase("dw5x5_s2_56", 8, 144, (56, 56), 144, 5, stride=2, padding=2, groups=144),
)

QUICK_CONV_VARIANTS_SUITE = (
    ConvCase("g4_small", 2, 32, (14, 14), 32, 3, padding=1, groups=4),
    ConvCase("b1_k5_s2_small", 1, 16, (29, 29), 16, 5, stride=2, padding=2),
    ConvCase("dw3x3_s2_small", 2, 32, (28, 28), 32, 3, stride=2, padding=1, groups=32),
)

# The pooling issue's three cases (ResNet's stem max pooling, a 2x2 average
# pooling, global average pooling before a classifier).
POOLING_SUITE = (
    PoolCase("maxpool3x3_s2", "max", 8, 64, (112, 112), 3, stride=2, padding=1),
    PoolCase("avgpool2x2_28", "avg", 8, 256, (28, 28), 2),
    PoolCase("global_avg_7", "adaptive_avg", 8, 512, (7, 7)),
)

QUICK_POOLING_SUITE = (
    PoolCase("maxpool3x3_small", "max", 2, 16, (56, 56), 3, stride=2, padding=1),
    PoolCase("avgpool2x2_small", "avg", 2, 64, (28, 28), 2),
    PoolCase("global_avg_small", "adaptive_avg", 2, 128, (7, 7)),
)

# The other pooling ops, each on a shape where a network would use it: min
# pooling as the stem's max pooling, LP pooling as a 2×2 average, adaptive
# max pooling to a classifier's 7×7 input, and max unpooling (a SegNet-style
# decoder) back from a 2×2 max pooling.
POOLING_VARIANTS_SUITE = (
    PoolCase("minpool3x3_s2", "min", 8, 64, (112, 112), 3, stride=2, padding=1),
    PoolCase("lppool2x2_28", "lp", 8, 256, (28, 28), 2),
    PoolCase("adaptive_max_14to7", "adaptive_max", 8, 512, (14, 14), output_size=7),
    PoolCase("unpool2x2_56", "unpool", 8, 64, (56, 56), 2),
)

QUICK_POOLING_VARIANTS_SUITE = (
    PoolCase("minpool3x3_small", "min", 2, 16, (56, 56), 3, stride=2, padding=1),
    PoolCase("lppool2x2_small", "lp", 2, 64, (28, 28), 2),
    PoolCase("adaptive_max_small", "adaptive_max", 2, 64, (14, 14), output_size=7),
    PoolCase("unpool2x2_small", "unpool", 2, 16, (28, 28), 2),
)

# Transposed convolution: each case names the convolution whose transpose is
# timed, so its output gradient's shape is the transposed input (a decoder's
# stride-2 upsampling from 28² to 56², and a 2×2 "unpooling" one).
TRANSPOSE_SUITE = (
    TransposeCase("up3x3_s2", 8, 64, (56, 56), 128, 3, stride=2, padding=1),
    TransposeCase("up2x2_s2", 8, 64, (56, 56), 128, 2, stride=2),
)

QUICK_TRANSPOSE_SUITE = (TransposeCase("up3x3_small", 2, 16, (28, 28), 32, 3, stride=2, padding=1),)

# unfold/fold (im2col/col2im) of a 3×3 "same" convolution's input.
UNFOLD_SUITE = (
    UnfoldCase("im2col3x3_28", 8, 64, (28, 28), 1, 3, padding=1),
    UnfoldCase("im2col3x3_vol", 2, 16, (8, 28, 28), 1, 3, padding=1),
)

QUICK_UNFOLD_SUITE = (UnfoldCase("im2col3x3_small", 2, 16, (14, 14), 1, 3, padding=1),)

# name -> (full shapes, small shapes for --quick and CI's smoke run).
SUITES = {
    "performance": (PERFORMANCE_SUITE, QUICK_SUITE),
    "conv-variants": (CONV_VARIANTS_SUITE, QUICK_CONV_VARIANTS_SUITE),
    "pooling": (POOLING_SUITE, QUICK_POOLING_SUITE),
    "pooling-variants": (POOLING_VARIANTS_SUITE, QUICK_POOLING_VARIANTS_SUITE),
    "transpose": (TRANSPOSE_SUITE, QUICK_TRANSPOSE_SUITE),
    "unfold": (UNFOLD_SUITE, QUICK_UNFOLD_SUITE),
}


def suite_cases(name: str, quick: bool = False) -> tuple:
    """The cases of suite ``name`` (``"all"``: every suite), small ones if ``quick``."""
    names = list(SUITES) if name == "all" else [name]
    return tuple(case for n in names for case in SUITES[n][quick])
