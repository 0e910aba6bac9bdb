"""The demo's sections, and the command line as a user runs it."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import numpy as np

from numconv import demo


def test_learned_kernel_approaches_the_edge_kernel():
    losses, kernel = demo.learn_edge_kernel()
    assert losses[-1] < 0.02 * losses[0]
    assert all(b < a for a, b in itertools.pairwise(losses))  # falls every epoch
    np.testing.assert_allclose(kernel, [[1.0, -1.0]], atol=0.05)


def test_sections_compute_what_they_claim():
    _, edges = demo.detect_edges()
    assert set(np.unique(edges)) == {-1.0, 0.0, 1.0}
    by_conv, by_matmul = demo.pointwise_as_matmul()
    np.testing.assert_allclose(by_conv, by_matmul, rtol=1e-12)
    shapes = dict((repr(s), shape) for s, shape in demo.output_shapes())
    assert shapes[repr(dict(stride=2, padding="same", dilation=1))] == (4, 4)
    assert shapes[repr(dict(stride=1, padding=0, dilation=2))] == (4, 4)


def test_pooling_section_shows_the_seeds_results():
    results = dict(demo.pooling_examples())
    expected = {
        "max, kernel 2, stride 2": [[7, 6, 8], [7, 9, 5], [9, 9, 9]],
        "max, kernel 2, stride 2, padding 1": [[2, 7, 6, 5], [0, 4, 8, 5], [9, 9, 9, 9],
                                               [2, 5, 9, 4]],
        "max, kernel 2, stride 2, padding 1, dilation 2": [[4, 4, 4], [6, 6, 6], [6, 9, 9]],
        "min, kernel 2, stride 2": [[0, 0, 4], [0, 1, 1], [0, 1, 3]],
        "average, kernel 2": [[3.25, 3.25, 5.75], [4.25, 4.5, 3.5], [3.5, 6, 5.75]],
    }  # fmt: skip
    for label, values in expected.items():
        np.testing.assert_array_equal(results[label], values)
    restored = demo.unpool_round_trip()
    kept = restored != 0
    assert kept.sum() == 9
    np.testing.assert_array_equal(restored[kept], demo.POOL_IMAGE[kept])


def test_upsampling_doubles_the_image():
    nearest, linear, back = demo.upsampling_examples()
    image = demo.UPSAMPLE_IMAGE
    np.testing.assert_array_equal(nearest, np.kron(image, np.ones((2, 2))))
    # even positions keep the pixels; odd ones sit halfway between two neighbours
    np.testing.assert_allclose(linear[::2, ::2], image, rtol=1e-15)
    np.testing.assert_allclose(linear[1:-1:2, :-1:2], (image[:-1] + image[1:]) / 2, rtol=1e-15)
    np.testing.assert_allclose(linear[-1, :-1:2], image[-1] / 2, rtol=1e-15)  # one neighbour
    np.testing.assert_allclose(back, image, rtol=1e-15)


def test_cli_demo_runs_without_torch(tmp_path):
    """Run ``python -m numconv demo`` with torch made unimportable."""
    (tmp_path / "torch.py").write_text("raise ImportError('torch is blocked for this test')\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(demo.__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), root])}
    out = subprocess.run(
        [sys.executable, "-m", "numconv", "demo"],
        capture_output=True, text=True, env=env, check=True, timeout=300,
    ).stdout  # fmt: skip
    assert "learned kernel" in out and "epoch 10" in out
    assert "average, kernel 2:" in out and "3.25" in out


def test_readme_example_runs():
    """The README's Python examples run as written, in order, as a reader meets them."""
    import pathlib
    import re

    readme = pathlib.Path(__file__).resolve().parents[1] / "README.md"
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)
    assert len(blocks) >= 2
    namespace = {}
    for block in blocks:
        exec(compile(block, str(readme), "exec"), namespace)
