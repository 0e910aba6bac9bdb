"""``python -m numconv demo``: a walk-through of numconv, no PyTorch needed.

Each section is a function that returns its numbers, so the tests check
exactly what the demo shows.
"""

from __future__ import annotations

import numpy as np

from . import functional as F
from .layers import Conv2d


def edge_image() -> np.ndarray:
    """A 6×8 image: white (1) with a black (0) band in columns 2–5."""
    x = np.ones((6, 8))
    x[:, 2:6] = 0
    return x


EDGE_KERNEL = np.array([[1.0, -1.0]])


def detect_edges() -> tuple[np.ndarray, np.ndarray]:
    """Cross-correlate the edge image with ``[1, −1]``: +1 at white→black, −1 at black→white."""
    x = edge_image()
    y = F.conv2d(x[None, None], EDGE_KERNEL[None, None])[0, 0]
    return x, y


def output_shapes(n: int = 8, k: int = 3):
    """Output sizes of an ``n×n`` input under a few stride/padding/dilation settings."""
    x = np.zeros((1, 1, n, n))
    w = np.zeros((1, 1, k, k))
    settings = [
        dict(stride=1, padding=0, dilation=1),
        dict(stride=1, padding=1, dilation=1),
        dict(stride=2, padding=1, dilation=1),
        dict(stride=1, padding=0, dilation=2),
        dict(stride=3, padding=((0, 2), (1, 1)), dilation=1),
        dict(stride=2, padding="same", dilation=1),
        dict(stride=1, padding="same", dilation=2),
    ]
    return [(s, F.conv2d(x, w, **s).shape[2:]) for s in settings]


def pointwise_as_matmul(seed: int = 0):
    """A 1×1 convolution equals a matrix product applied at every pixel."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 4, 5))  # (C_in, H, W)
    w = rng.standard_normal((2, 3, 1, 1))  # (C_out, C_in, 1, 1)
    by_conv = F.conv2d(x, w)
    by_matmul = (w.reshape(2, 3) @ x.reshape(3, -1)).reshape(2, 4, 5)
    return by_conv, by_matmul


def learn_edge_kernel(epochs: int = 10, lr: float = 3e-2, seed: int = 0):
    """Learn ``[1, −1]`` back from (edge image, edges) by gradient descent.

    The loss is ``Σ (conv(x) − y)²``; its gradient with respect to the kernel
    comes from numconv's own weight gradient via ``Conv2d.backward``.
    Returns the per-epoch losses and the learned ``1×2`` kernel.
    """
    x, y = detect_edges()
    x, y = x[None, None], y[None, None]
    conv = Conv2d(1, 1, kernel_size=(1, 2), bias=False, dtype=np.float64, seed=seed)
    losses = []
    for _ in range(epochs):
        error = conv(x) - y
        losses.append(float((error**2).sum()))
        conv.zero_grad()
        conv.backward(2 * error)
        conv.weight -= lr * conv.grads["weight"]
    return losses, conv.weight.reshape(1, 2).copy()


# The seeds' pooling example: torch.manual_seed(42); torch.randint(0, 10, (6, 6)).
POOL_IMAGE = np.array(
    [
        [2, 7, 6, 4, 6, 5],
        [0, 4, 0, 3, 8, 4],
        [0, 4, 1, 2, 5, 5],
        [7, 6, 9, 6, 3, 1],
        [9, 3, 1, 9, 7, 9],
        [2, 0, 5, 9, 3, 4],
    ],
    dtype=np.float64,
)


def pooling_examples():
    """(label, result) pairs: max, min and average pooling of ``POOL_IMAGE``."""
    x = POOL_IMAGE[None, None]
    settings = [
        ("max, kernel 2, stride 2", F.max_pool2d, dict(kernel_size=2, stride=2)),
        ("max, kernel 2, stride 2, padding 1", F.max_pool2d,
         dict(kernel_size=2, stride=2, padding=1)),
        ("max, kernel 2, stride 2, padding 1, dilation 2", F.max_pool2d,
         dict(kernel_size=2, stride=2, padding=1, dilation=2)),
        ("min, kernel 2, stride 2", F.min_pool2d, dict(kernel_size=2, stride=2)),
        ("min, kernel 3, stride 2, padding 1, ceil_mode", F.min_pool2d,
         dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
        ("average, kernel 2", F.avg_pool2d, dict(kernel_size=2)),
        ("average, kernel 3, stride 2, padding 1, count_include_pad=False", F.avg_pool2d,
         dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ]  # fmt: skip
    return [(label, pool(x, **kwargs)[0, 0]) for label, pool, kwargs in settings]


def unpool_round_trip():
    """Max-pool ``POOL_IMAGE`` 2×2 and put the maxima back where they came from."""
    y, indices = F.max_pool2d(POOL_IMAGE[None, None], 2, return_indices=True)
    return F.max_unpool2d(y, indices, 2)[0, 0]


UPSAMPLE_IMAGE = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
# Linear interpolation as a kernel: a pixel spreads 1, 1/2 to its new neighbours.
BILINEAR_KERNEL = np.outer([0.5, 1.0, 0.5], [0.5, 1.0, 0.5])


def upsampling_examples():
    """Double ``UPSAMPLE_IMAGE`` with stride-2 transposed convolutions, and come back.

    Returns the nearest-neighbour (2×2 ones kernel) and linear-interpolation
    (3×3 kernel, padding 1, output_padding 1) upsamplings, and the image that a
    stride-2 convolution with the 2×2 averaging kernel makes of the first.
    """
    x = UPSAMPLE_IMAGE[None, None]
    nearest = F.conv_transpose2d(x, np.ones((1, 1, 2, 2)), stride=2)
    linear = F.conv_transpose2d(x, BILINEAR_KERNEL[None, None], stride=2, padding=1,
                                output_padding=1)  # fmt: skip
    back = F.conv2d(nearest, np.full((1, 1, 2, 2), 0.25), stride=2)
    return nearest[0, 0], linear[0, 0], back[0, 0]


def _matrix(a: np.ndarray) -> str:
    return "\n".join("    " + " ".join(f"{v:6.4g}" for v in row) for row in a)


def run(write=print) -> None:
    """Print the walk-through."""
    write("numconv demo: convolution, pooling and upsampling with numconv's own kernels\n")

    x, y = detect_edges()
    write("1. Edge detection: a 6x8 image (1 = white, 0 = black) ...")
    write(_matrix(x))
    write("   ... cross-correlated with the kernel [1, -1] marks the edges")
    write("   (+1: white to black, -1: black to white):")
    write(_matrix(y))

    write("\n2. Output sizes of an 8x8 input with a 3x3 kernel,")
    write("   out = floor((n + pad_before + pad_after - dilation*(k-1) - 1) / stride) + 1:")
    for setting, shape in output_shapes():
        desc = ", ".join(f"{k}={v}" for k, v in setting.items())
        write(f"   {desc:<48} -> {shape[0]}x{shape[1]}")

    by_conv, by_matmul = pointwise_as_matmul()
    diff = np.abs(by_conv - by_matmul).max()
    write("\n3. A 1x1 convolution (3 -> 2 channels on a 4x5 image) is a per-pixel")
    write(f"   matrix product: largest difference between the two = {diff:.1e}")

    losses, kernel = learn_edge_kernel()
    write("\n4. Learning the edge kernel from (image, edges) by gradient descent,")
    write("   using numconv's weight gradient (Conv2d.backward), lr = 0.03:")
    for epoch in range(1, len(losses), 2):
        write(f"   epoch {epoch + 1:2d}: loss {losses[epoch]:.4f}")
    write(f"   learned kernel: [{kernel[0, 0]:.4f}, {kernel[0, 1]:.4f}]  (target [1, -1])")

    write("\n5. Pooling a 6x6 image (padding counts as -inf for max, +inf for min):")
    write(_matrix(POOL_IMAGE))
    for label, result in pooling_examples():
        write(f"   {label}:")
        write(_matrix(result))
    write("   max_unpool2d puts the 2x2 maxima back where they came from:")
    write(_matrix(unpool_round_trip()))

    nearest, linear, back = upsampling_examples()
    write("\n6. Upsampling: a stride-2 transposed convolution doubles a 3x3 image to 6x6.")
    write(_matrix(UPSAMPLE_IMAGE))
    write("   kernel 2x2 of ones: every pixel becomes a 2x2 block (nearest neighbour):")
    write(_matrix(nearest))
    write("   kernel [0.5, 1, 0.5] x [0.5, 1, 0.5], padding 1, output_padding 1: linear")
    write("   interpolation (the last row and column see only one neighbour):")
    write(_matrix(linear))
    diff = np.abs(back - UPSAMPLE_IMAGE).max()
    write("   a stride-2 convolution with the 2x2 averaging kernel takes the blocks back")
    write(f"   to the 3x3 image: largest difference = {diff:.1e}")
