"""Time numconv against PyTorch side by side, in one process, interleaved.

Timings on shared machines drift, so each repetition times numconv and then
PyTorch back to back, and the figures are medians over repetitions; the speed
ratio is PyTorch's median over numconv's.
"""

from __future__ import annotations

import importlib
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

from .. import functional as F
from .suite import ConvCase, PoolCase

# fwd: forward; dx: input gradient (a pooling's backward); dw: weight and bias
# gradients (convolution only).
OPS = ("fwd", "dx", "dw")


def applies(case, op: str) -> bool:
    """Whether ``op`` exists for ``case`` (pooling has no weight gradient)."""
    return not (isinstance(case, PoolCase) and op == "dw")


def numconv_op(case, op: str, *arrays):
    """A zero-argument callable running ``op`` on ``case.arrays()``."""
    if isinstance(case, PoolCase):
        return _numconv_pool_op(case, op, *arrays)
    return _numconv_conv_op(case, op, *arrays)


def torch_op(torch, case, op: str, *arrays):
    """The same op through PyTorch's ATen kernels directly (no autograd overhead)."""
    if isinstance(case, PoolCase):
        return _torch_pool_op(torch, case, op, *arrays)
    return _torch_conv_op(torch, case, op, *arrays)


def _numconv_pool_op(case: PoolCase, op: str, x, gy):
    name = f"{case.kind}_pool{case.nd}d"
    forward, backward = getattr(F, name), getattr(F, f"{name}_backward")
    if op == "fwd":
        return lambda: forward(x, **case.kwargs)
    if case.kind == "max":  # backward from the forward's indices, as the layers do
        _, indices = forward(x, **case.kwargs, return_indices=True)
        return lambda: backward(gy, x, **case.kwargs, indices=indices)
    return lambda: backward(gy, x, **case.kwargs)


def _torch_pool_op(torch, case: PoolCase, op: str, x, gy):
    tx, tgy = torch.from_numpy(x), torch.from_numpy(gy)
    nd, aten, kw = case.nd, torch.ops.aten, case.kwargs
    if case.kind == "adaptive_avg":
        forward = getattr(torch.nn.functional, f"adaptive_avg_pool{nd}d")
        if op == "fwd":
            return lambda: forward(tx, kw["output_size"])
        backward = getattr(aten, f"_adaptive_avg_pool{nd}d_backward")
        return lambda: backward(tgy, tx)
    k, s, p = ([kw[key]] * nd for key in ("kernel_size", "stride", "padding"))
    if case.kind == "max":
        forward = getattr(aten, f"max_pool{nd}d_with_indices")
        if op == "fwd":
            return lambda: forward(tx, k, s, p, [1] * nd, False)
        _, indices = forward(tx, k, s, p, [1] * nd, False)
        backward = getattr(aten, f"max_pool{nd}d_with_indices_backward")
        return lambda: backward(tgy, tx, k, s, p, [1] * nd, False, indices)
    if op == "fwd":
        forward = getattr(aten, f"avg_pool{nd}d")
        return lambda: forward(tx, k, s, p, False, True, None)
    backward = getattr(aten, f"avg_pool{nd}d_backward")
    return lambda: backward(tgy, tx, k, s, p, False, True, None)


def _numconv_conv_op(case: ConvCase, op: str, x, w, b, gy):
    """A zero-argument callable running ``op`` (dw includes the bias gradient)."""
    nd, kw = case.nd, case.kwargs
    if op == "fwd":
        f = getattr(F, f"conv{nd}d")
        return lambda: f(x, w, b, **kw)
    if op == "dx":
        f = getattr(F, f"conv{nd}d_input_grad")
        return lambda: f(x.shape, w, gy, **kw)
    if op == "dw":
        f = getattr(F, f"conv{nd}d_weight_grad")
        return lambda: (f(x, w.shape, gy, **kw), F.conv_bias_grad(gy))
    raise ValueError(f"op must be one of {OPS}; got {op!r}")


def _torch_conv_op(torch, case: ConvCase, op: str, x, w, b, gy):
    tx, tw, tb, tgy = (torch.from_numpy(a) for a in (x, w, b, gy))
    nd = case.nd
    stride, padding, dilation = [case.stride] * nd, [case.padding] * nd, [case.dilation] * nd
    if op == "fwd":
        conv = getattr(torch.nn.functional, f"conv{nd}d")
        return lambda: conv(tx, tw, tb, stride, padding, dilation, case.groups)
    mask = [True, False, False] if op == "dx" else [False, True, True]
    backward = torch.ops.aten.convolution_backward
    return lambda: backward(
        tgy, tx, tw, [case.out_channels], stride, padding, dilation,
        False, [0] * nd, case.groups, mask,
    )  # fmt: skip


def optional_torch(threads: int):
    """PyTorch with ``threads`` threads if it is installed, else None.

    The only place numconv loads PyTorch: the benchmark command compares
    against it when present. Library code (functional, layers, kernels) never
    does; importlib keeps that boundary visible to the repository's checks.
    """
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def gemm_ceiling(size: int = 2048, repeats: int = 3) -> float:
    """float32 GFLOP/s of one BLAS matrix product of ``size``³, best of ``repeats``."""
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    a @ a  # warm-up (thread pool start)
    best = min(_time(lambda: a @ a) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


@dataclass
class Row:
    case: str
    op: str
    numconv_ms: float
    torch_ms: float | None
    gflops: float | None  # None for memory-bound ops (pooling)

    @property
    def ratio(self) -> float | None:
        return None if self.torch_ms is None else self.torch_ms / self.numconv_ms


def run(cases, ops=OPS, repeats: int = 5, torch=None, progress=None) -> list[Row]:
    """Median times per (case, op) for numconv and, if ``torch`` is given, PyTorch."""
    rows = []
    for case in cases:
        arrays = case.arrays()
        for op in filter(lambda op: applies(case, op), ops):
            if progress:
                progress(f"{case.name} {op}")
            ours = numconv_op(case, op, *arrays)
            theirs = torch_op(torch, case, op, *arrays) if torch is not None else None
            ours()  # warm-up: Numba compilation and caches
            if theirs:
                theirs()
            t_ours, t_theirs = [], []
            for _ in range(repeats):
                t_ours.append(_time(ours))
                if theirs:
                    t_theirs.append(_time(theirs))
            ms = statistics.median(t_ours) * 1e3
            torch_ms = statistics.median(t_theirs) * 1e3 if theirs else None
            gflops = None if case.flops is None else case.flops / ms / 1e6
            rows.append(Row(case.name, op, ms, torch_ms, gflops))
    return rows


def geomean(values) -> float:
    values = list(values)
    return math.exp(sum(map(math.log, values)) / len(values))


def format_table(rows: list[Row], ceiling: float) -> str:
    """A Markdown table with one row per (case, op) and a geomean row per op."""
    lines = [
        "| case | op | numconv ms | PyTorch ms | speed ratio | GFLOP/s | % of GEMM |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        torch_ms = "—" if r.torch_ms is None else f"{r.torch_ms:.2f}"
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}"
        rate, share = ("—", "—") if r.gflops is None else (
            f"{r.gflops:.1f}", f"{100 * r.gflops / ceiling:.0f}%"
        )  # fmt: skip
        lines.append(
            f"| {r.case} | {r.op} | {r.numconv_ms:.2f} | {torch_ms} | {ratio} | {rate} | {share} |"
        )
    for op in dict.fromkeys(r.op for r in rows):
        ratios = [r.ratio for r in rows if r.op == op and r.ratio is not None]
        if ratios:
            lines.append(f"| **geomean** | {op} | | | **{geomean(ratios):.2f}** | | |")
    return "\n".join(lines)


def as_json(rows: list[Row], ceiling: float, threads: int) -> dict:
    return {
        "gemm_ceiling_gflops": ceiling,
        "threads": threads,
        "rows": [{**asdict(r), "ratio": r.ratio} for r in rows],
    }


def progress_to_stderr(message: str) -> None:
    print(f"  ... {message}", file=sys.stderr, flush=True)
