"""Every public function and layer is documented, and every docstring example runs."""

from __future__ import annotations

import doctest

import pytest

import numconv
import numconv.functional as F

PUBLIC = [(F, name) for name in F.__all__] + [
    (numconv, name) for name in numconv.__all__ if name not in ("__version__", "functional")
]


@pytest.mark.parametrize(("module", "name"), PUBLIC, ids=[name for _, name in PUBLIC])
def test_documented_and_examples_pass(module, name):
    obj = getattr(module, name)
    assert obj.__doc__ and len(obj.__doc__.strip()) > 40, f"{name} lacks a docstring"
    runner = doctest.DocTestRunner()
    for test in doctest.DocTestFinder(recurse=False).find(obj, name, globs={}):
        runner.run(test)
    assert runner.failures == 0
