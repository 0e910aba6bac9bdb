"""The benchmark's two sides compute the same thing: numconv's op equals PyTorch's.

A speed ratio is only meaningful if both callables do the same work; each
(case, op) of every small suite is run once on both sides and compared.
"""

from __future__ import annotations

import numpy as np
import pytest

import numconv.functional as F
from numconv.bench.ops import OPS, applies, numconv_op, torch_op
from numconv.bench.suite import SUITES, PoolCase, suite_cases

torch = pytest.importorskip("torch")

CASES_AND_OPS = [
    pytest.param(case, op, id=f"{case.name}-{op}")
    for case in suite_cases("all", quick=True)
    for op in OPS
    if applies(case, op)
]


def arrays_of(result):
    """A result as a list of NumPy arrays (PyTorch's unrequested gradients dropped)."""
    if isinstance(result, (tuple, list)):
        return [a for item in result if item is not None for a in arrays_of(item)]
    return [result.numpy() if isinstance(result, torch.Tensor) else np.asarray(result)]


@pytest.mark.parametrize("case, op", CASES_AND_OPS)
def test_numconv_and_torch_ops_agree(case, op):
    arrays = case.arrays()
    ours = arrays_of(numconv_op(case, op, *arrays)())
    theirs_op = torch_op(torch, case, op, *arrays)
    if theirs_op is None:
        assert case.nd != 2  # only 3-d unfold/fold lacks a PyTorch counterpart
        return
    theirs = arrays_of(theirs_op())
    # PyTorch's pooling forwards may also return indices; compare what both return.
    assert len(theirs) >= len(ours) >= 1
    for a, b in zip(ours, theirs, strict=False):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4 * np.abs(b).max())


def test_pool_cases_output_sizes_match_the_library():
    for case in SUITES["pooling"][0] + SUITES["pooling-variants"][0]:
        x, gy = case.arrays()
        y = numconv_op(case, "fwd", x, gy)()
        assert y.shape == gy.shape == (case.batch, case.channels, *case.out_spatial)


def test_pool_case_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        PoolCase("bad", "median", 1, 1, (4, 4), 2)


def test_transpose_cases_invert_their_convolution_sizes():
    for case in SUITES["transpose"][0]:
        x, w, _, gy = case.arrays()
        y = F.conv_transpose2d(gy, w, stride=case.stride, padding=case.padding,
                               output_padding=case.output_padding)  # fmt: skip
        assert y.shape == x.shape
