"""The kernels' innermost loops compile to packed FMAs (PERFORMANCE.md's first lesson)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

PROBE = r"""
import numpy as np
from numconv.kernels.direct import conv_forward, conv_input_grad, conv_weight_grad
xp = np.zeros((1, 1, 4, 4, 8), np.float32)
wt = np.zeros((1, 1, 3, 3, 8, 8), np.float32)
y = np.zeros((1, 1, 2, 2, 8), np.float32)
conv_forward(xp, wt, y, 1, 1, 1, 1, 1, 1)
conv_input_grad(y, wt, xp, 1, 1, 1, 1, 1, 1)
conv_weight_grad(xp, y, np.zeros((2, *wt.shape), np.float32), 1, 1, 1, 1, 1, 1)
KERNELS = (conv_forward, conv_input_grad, conv_weight_grad)
"""


def _cpu_has(flag: str) -> bool:
    """Whether /proc/cpuinfo lists ``flag`` (False where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            return f" {flag}" in f.read()
    except OSError:
        return False


def _has_avx2() -> bool:
    return _cpu_has("avx2")


def _run_probe(probe: str) -> dict[str, str]:
    """Run a probe in a fresh interpreter; its ``name count`` lines as a dict."""
    env = {**os.environ, "NUMCONV_NO_CACHE": "1"}  # inspect_asm needs freshly compiled code
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True,
        timeout=600,
    ).stdout  # fmt: skip
    return dict(line.split() for line in out.strip().splitlines())


# Ends a probe that lists its compiled kernels in KERNELS: each one's packed FMAs.
COUNT_PACKED_FMA = r"""
import re
for kernel in KERNELS:
    asm = kernel.inspect_asm(kernel.signatures[0])
    print(kernel.__name__, len(re.findall(r"vfmadd\w*ps\s[^\n]*%(?:ymm|zmm)", asm)))
"""


def _assert_packed_fma(counts: dict[str, str], names) -> None:
    assert set(counts) == set(names)
    for name, count in counts.items():
        assert int(count) > 0, f"{name}: no packed FMA on ymm/zmm registers"


@pytest.mark.skipif(
    platform.machine() != "x86_64" or not _has_avx2(), reason="checks x86-64 AVX2 assembly"
)
def test_kernels_use_packed_fma():
    counts = _run_probe(PROBE + COUNT_PACKED_FMA)
    _assert_packed_fma(counts, ["conv_forward", "conv_input_grad", "conv_weight_grad"])


WINOGRAD_PROBE = r"""
import re
import numpy as np
from numconv.kernels import winograd as f2, winograd4 as f4
for module, m in ((f2, 2), (f4, 4)):
    side = m + 2
    src = np.zeros((1, 2, 1, 4 * m + 2, 4 * m + 2), np.float32)
    v = np.zeros((side * side, 2, 16), np.float32)
    dst = np.zeros((1, 2, 1, 4 * m, 4 * m), np.float32)
    module.input_tiles(src, v, 0, 4, 4, 0, 0)
    module.output_tiles(v, np.zeros(2, np.float32), dst, 0, 4, 4, 0, 0)
    module.gradient_tiles(dst, v, 0, 4, 4, 0, 0)
    for kernel in (module.input_tiles, module.output_tiles, module.gradient_tiles):
        asm = kernel.inspect_asm(kernel.signatures[0])
        packed = re.findall(r"v(?:add|sub)ps\s[^\n]*%(?:ymm|zmm)", asm)
        gathers = re.findall(r"vgather", asm)
        print(f"F{m}.{kernel.__name__}", f"{len(packed)},{len(gathers)}")
"""


@pytest.mark.skipif(
    platform.machine() != "x86_64" or not _has_avx2(), reason="checks x86-64 AVX2 assembly"
)
def test_winograd_transforms_are_vectorised_over_tiles():
    """Packed adds in every transform, and no gathers (F(4×4)'s stride-4 reads are split first).

    F(2×2): each loop writes 8 of the 16 values (with all 16 LLVM kept it
    scalar). F(4×4): each loop writes at most 6; its input transform reads
    six values with a stride of four only after splitting the row into its
    four phases, which LLVM otherwise compiles to gathers.
    """
    counts = _run_probe(WINOGRAD_PROBE)
    kernels = ("input_tiles", "output_tiles", "gradient_tiles")
    assert set(counts) == {f"F{m}.{name}" for m in (2, 4) for name in kernels}
    for name, count in counts.items():
        packed, gathers = map(int, count.split(","))
        assert packed > 0, f"{name}: no packed add/sub on ymm/zmm registers"
        assert gathers == 0, f"{name}: {gathers} gathers"


FILTER_PROBE = r"""
import numpy as np
from numconv.kernels.winograd_filters import transform_filters, transform_filters_adjoint
g = np.ones((4, 3), np.float32)
u = np.zeros((16, 300), np.float32)
transform_filters(np.zeros((300, 9), np.float32), g, False, u, 0, 300)
transform_filters_adjoint(u, g, np.zeros((300, 9), np.float32), 0, 300)
KERNELS = (transform_filters, transform_filters_adjoint)
"""


@pytest.mark.skipif(
    platform.machine() != "x86_64" or not _has_avx2(), reason="checks x86-64 AVX2 assembly"
)
def test_winograd_filter_transforms_run_on_vectors_of_filters():
    counts = _run_probe(FILTER_PROBE + COUNT_PACKED_FMA)
    _assert_packed_fma(counts, ["transform_filters", "transform_filters_adjoint"])


DEPTHWISE_PROBE = r"""
import numpy as np
import numconv.functional as F
from numconv.kernels import depthwise as D
from numconv.kernels import depthwise_masked as M
from numconv.kernels import depthwise_rows as R
from numconv.kernels import depthwise_split as S
w = np.zeros((2, 1, 3, 3), np.float32)
# the flat kernels, the masked ones, the row blocks and split ones (the split
# forward takes planes past 64²)
for mode, stride, size in (("circular", 1, 6), ("zeros", 1, 6), ("zeros", 2, 6), ("zeros", 2, 66)):
    x = np.zeros((1, 2, size, size), np.float32)
    kw = dict(padding=1, stride=stride, groups=2, padding_mode=mode)
    y = F.conv2d(x, w, **kw)
    F.conv2d_input_grad(x.shape, w, y, **kw)
    F.conv2d_weight_grad(x, w.shape, y, **kw)
KERNELS = (D.depthwise_forward_flat, D.depthwise_input_grad_flat,
           D.depthwise_weight_grad_flat, M.masked_forward, M.masked_weight_grad,
           R.rows_forward, R.rows_input_grad, S.split_forward, S.split_weight_grad)
"""


@pytest.mark.skipif(
    platform.machine() != "x86_64" or not _has_avx2(), reason="checks x86-64 AVX2 assembly"
)
def test_depthwise_flat_plane_kernels_are_vectorised():
    """The depthwise kernels' one long loop per plane (or stack) runs on vectors."""
    counts = _run_probe(DEPTHWISE_PROBE + COUNT_PACKED_FMA)
    names = {
        "depthwise_forward_flat",
        "depthwise_input_grad_flat",
        "depthwise_weight_grad_flat",
        "masked_forward",
        "masked_weight_grad",
        "rows_forward",
        "rows_input_grad",
        "split_forward",
        "split_weight_grad",
    }
    _assert_packed_fma(counts, names)


TAP_SUMS_PROBE = r"""
import numpy as np
import numconv.functional as F
from numconv import _dispatch
from numconv.kernels.tap_sums import forward_sums, weight_grad_sums
x = np.zeros((1, 2, 6, 6), np.float32)
w = np.zeros((3, 2, 3, 3), np.float32)
with _dispatch.forced("tap_sums"):
    F.conv2d(x, w, padding=1)
    F.conv2d_weight_grad(x, w.shape, np.zeros((1, 3, 6, 6), np.float32), padding=1)
KERNELS = (forward_sums, weight_grad_sums)
"""

PHASE_SUMS_PROBE = r"""
import numpy as np
import numconv.functional as F
from numconv import _dispatch
from numconv.kernels.phase_sums import (
    forward_phase_sums, input_grad_phase_sums, weight_grad_phase_sums,
)
x, w = np.zeros((1, 4, 6, 6), np.float32), np.zeros((4, 2, 3, 3), np.float32)
with _dispatch.forced("phase_sums"):
    F.conv2d(x, w, groups=2)
    F.conv2d_input_grad(x.shape, w, np.zeros((1, 4, 4, 4), np.float32), groups=2)
    F.conv2d_weight_grad(x, w.shape, np.zeros((1, 4, 4, 4), np.float32), groups=2)
KERNELS = (forward_phase_sums, input_grad_phase_sums, weight_grad_phase_sums)
"""


@pytest.mark.skipif(
    platform.machine() != "x86_64" or not _has_avx2(), reason="checks x86-64 AVX2 assembly"
)
@pytest.mark.parametrize(
    "probe, names",
    [
        (TAP_SUMS_PROBE, ("forward_sums", "weight_grad_sums")),
        (
            PHASE_SUMS_PROBE,
            ("forward_phase_sums", "input_grad_phase_sums", "weight_grad_phase_sums"),
        ),
    ],
    ids=["tap_sums", "phase_sums"],
)
def test_tap_blocks_run_on_vectors(probe, names):
    """Each kernel's shared block loop on vectors (the tap sums' and the phase sums').

    With AVX-512's 32 registers, the weight gradient's 8 × 3 sums become 24
    vector accumulators and the forwards (the phase sums' input gradient is
    forwards of ``gy``) link the register blocks' 8 × 3 block (24 FMAs a
    tap); with AVX2's 16, both blocks are 4 × 3 (12).
    """
    from numconv.kernels import simd

    least = 24 if simd.REGISTERS >= 32 else 12
    counts = _run_probe(probe + COUNT_PACKED_FMA)
    _assert_packed_fma(counts, names)
    for name in names:
        assert int(counts[name]) >= least


REGISTER_BLOCK_PROBE = r"""
import re
import numpy as np
import numconv.functional as F
from numconv import _dispatch
from numconv.kernels.register_blocks import _passes_8
with _dispatch.forced("phase_sums"):
    F.conv2d(np.zeros((1, 4, 6, 6), np.float32), np.zeros((16, 2, 3, 3), np.float32), groups=2)
asm = _passes_8.inspect_asm(_passes_8.signatures[0])
# The basic blocks (split at labels) of the tap loop: the ones with the FMAs.
blocks = [b for b in re.split(r"\n\.LBB\w+:", asm) if re.search(r"vfmadd\w*ps\s[^\n]*%zmm", b)]
print("fma", max(len(re.findall(r"vfmadd\w*ps\s[^\n]*%zmm", b)) for b in blocks))
print("stores", sum(len(re.findall(r"vmov\w*\s+%[xyz]mm\d+, [^\n]*\)", b)) for b in blocks))
"""


@pytest.mark.skipif(
    platform.machine() != "x86_64" or not _cpu_has("avx512f"),
    reason="checks x86-64 AVX-512 assembly",
)
def test_register_block_keeps_its_sums_in_registers():
    """The 8 × 3 block's tap loop: 24 FMAs a tap on zmm registers and not one store.

    Its 24 accumulators are SSA vector values (numconv.kernels.simd); a
    spill or a store of a partial sum in the loop would show as a store
    in the blocks with the FMAs.
    """
    counts = _run_probe(REGISTER_BLOCK_PROBE)
    assert int(counts["fma"]) >= 24
    assert int(counts["stores"]) == 0
