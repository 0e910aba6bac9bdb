"""Fresh arrays on a cache line (numconv._aligned) and results that use them."""

import numpy as np
import pytest

import numconv.functional as F
from numconv import _aligned


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape", [0, 1, 7, np.int64(9), (3, 5), [2, 3, 4, 5], (1 << 16,)])
def test_empty_starts_on_a_line(shape, dtype):
    for _ in range(5):  # several allocations: the allocator's offsets vary
        a = _aligned.empty(shape, dtype)
        assert a.size == 0 or a.ctypes.data % _aligned.LINE == 0  # empty: no memory
        assert a.shape == (tuple(shape) if np.ndim(shape) else (int(shape),))
        assert a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable


def test_zeros_and_copy():
    z = _aligned.zeros((4, 9), np.float32)
    assert z.ctypes.data % _aligned.LINE == 0 and not z.any()
    source = np.arange(24, dtype=np.float64).reshape(4, 6)[:, ::2]  # a strided view
    c = _aligned.copy(source, np.float32)
    assert c.ctypes.data % _aligned.LINE == 0 and c.flags.c_contiguous
    np.testing.assert_array_equal(c, source.astype(np.float32))


@pytest.mark.parametrize(
    "kw, groups", [(dict(padding=1), 1), (dict(stride=2, padding=1), 8), (dict(padding=1), 8)]
)
def test_convolution_results_start_on_a_line(rng, kw, groups):
    """Results the kernels write are allocated on a line whatever the allocator does."""
    x = rng.standard_normal((2, 8, 12, 12)).astype(np.float32)
    w = rng.standard_normal((8, 8 // groups, 3, 3)).astype(np.float32)
    for _ in range(3):
        y = F.conv2d(x, w, groups=groups, **kw)
        gx = F.conv2d_input_grad(x.shape, w, y, groups=groups, **kw)
        assert y.ctypes.data % _aligned.LINE == 0
        assert gx.ctypes.data % _aligned.LINE == 0
