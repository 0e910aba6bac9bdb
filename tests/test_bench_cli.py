"""``python -m numconv bench`` runs and reports; it asserts no timing, only structure."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import numconv
from numconv._params import plan_conv
from numconv.bench.suite import PERFORMANCE_SUITE, SUITES, suite_cases

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(numconv.__file__)))


def run_bench(tmp_path, *args, block_torch=False):
    path = [ROOT]
    if block_torch:
        (tmp_path / "torch.py").write_text("raise ImportError('blocked for this test')\n")
        path.insert(0, str(tmp_path))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    return subprocess.run(
        [sys.executable, "-m", "numconv", "bench", "--quick", *args],
        capture_output=True, text=True, env=env, check=True, timeout=600,
    )  # fmt: skip


def test_bench_quick_with_torch_writes_ratios(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "bench.json"
    result = run_bench(tmp_path, "--ops", "fwd,dw", "--json", str(out))
    report = json.loads(out.read_text())
    assert {r["op"] for r in report["rows"]} == {"fwd", "dw"}
    assert all(r["ratio"] > 0 and r["numconv_ms"] > 0 for r in report["rows"])
    assert "| **geomean** | fwd |" in result.stdout
    assert "res3x3_small" in result.stderr  # progress
    # the BLAS kernel timed, as threadpoolctl reports it for NumPy's library
    assert report["blas"].startswith("BLAS ") and report["blas"] in result.stderr


def test_blas_description_names_numpys_library_and_a_pinned_kernel(monkeypatch):
    from threadpoolctl import threadpool_info

    from numconv.bench.runner import blas_description

    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    blas = [info for info in threadpool_info() if info["user_api"] == "blas"]
    text = blas_description()
    assert all(info["internal_api"] in text for info in blas) and "pins" not in text
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert blas_description().endswith("OPENBLAS_CORETYPE=Haswell pins OpenBLAS's kernel")


def test_bench_without_torch_reports_numconv_alone(tmp_path):
    result = run_bench(tmp_path, "--ops", "dx", block_torch=True)
    assert "numconv's figures only" in result.stderr
    assert "geomean" not in result.stdout and "| dx |" in result.stdout


def test_bench_rejects_unknown_ops(tmp_path):
    with pytest.raises(subprocess.CalledProcessError):
        run_bench(tmp_path, "--ops", "fwd,bogus")


def test_pooling_suite_with_torch(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "bench.json"
    run_bench(tmp_path, "--suite", "pooling", "--json", str(out))
    rows = json.loads(out.read_text())["rows"]
    assert {(r["case"], r["op"]) for r in rows} == {
        (case.name, op) for case in SUITES["pooling"][True] for op in ("fwd", "dx")
    }  # --quick's small shapes; no weight gradient for pooling
    assert all(r["ratio"] > 0 and r["gflops"] is None for r in rows)


def test_all_suites_with_torch(tmp_path):
    """Every suite runs; the only row without a PyTorch time is 3-d unfold/fold."""
    pytest.importorskip("torch")
    out = tmp_path / "bench.json"
    run_bench(tmp_path, "--suite", "all", "--ops", "fwd,dx", "--json", str(out))
    rows = json.loads(out.read_text())["rows"]
    assert [r["case"] for r in rows[::2]] == [case.name for case in suite_cases("all", True)]
    without_torch = {r["case"] for r in rows if r["torch_ms"] is None}
    assert without_torch == {c.name for c in suite_cases("unfold", True) if c.nd != 2}


def test_quick_suites_are_small_twins():
    """Each suite has small shapes of every kind its full version has."""
    for full, small in SUITES.values():
        assert small and {type(c) for c in small} == {type(c) for c in full}
        assert {getattr(c, "kind", None) for c in small} == {getattr(c, "kind", None) for c in full}


def test_suite_flops_match_the_library_plan():
    """The suite's output sizes and FLOP counts agree with the library's plan."""
    for case in PERFORMANCE_SUITE + SUITES["conv-variants"][0]:
        x_shape = (case.batch, case.in_channels, *case.spatial)
        w_shape = (case.out_channels, case.in_channels // case.groups) + (case.kernel,) * case.nd
        plan = plan_conv(case.nd, x_shape, w_shape, **case.kwargs, padding_mode="zeros")
        assert plan.output_shape[2:] == case.out_spatial
        assert plan.flops == case.flops


def test_table_has_a_forward_plus_backward_row_per_step():
    """fwd+bwd: per case, PyTorch's summed time over numconv's, then the geomean."""
    from numconv.bench.runner import Row, format_table, step_ratios

    rows = [
        Row("a", "fwd", 1.0, 2.0, None),
        Row("a", "dx", 2.0, 2.0, None),
        Row("a", "dw", 1.0, 4.0, None),  # step: 8 / 4 = 2
        Row("b", "fwd", 4.0, 2.0, None),
        Row("b", "dx", 4.0, 2.0, None),  # step: 4 / 8 = 0.5
        Row("c", "fwd", 1.0, 9.0, None),  # one op only: no step
    ]
    assert step_ratios(rows) == [2.0, 0.5]
    assert "| **geomean** | fwd+bwd | | | **1.00** | | |" in format_table(rows, 100.0)
    assert step_ratios([Row("a", "fwd", 1.0, None, None), Row("a", "dx", 1.0, None, None)]) == []
