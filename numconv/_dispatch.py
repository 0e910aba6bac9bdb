"""The one place that chooses an algorithm for a convolution call.

``select(op, plan, dtype)`` returns an algorithm module (see
:mod:`numconv._algorithms`). New algorithms are registered in ``ALGORITHMS``
and chosen in ``select``; the public API never changes. Tests pin each path
with :func:`forced`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ._algorithms import direct
from ._params import ConvPlan

ALGORITHMS = {direct.NAME: direct}
OPS = ("forward", "input_grad", "weight_grad")

_forced: str | None = None


def select(op: str, plan: ConvPlan, dtype):
    """Return the algorithm module that computes ``op`` for ``plan`` in ``dtype``."""
    if _forced is not None:
        return ALGORITHMS[_forced]
    return direct  # the only algorithm so far; selection by shape goes here


@contextlib.contextmanager
def forced(name: str) -> Iterator[None]:
    """Run every convolution in the block with algorithm ``name`` (for tests)."""
    global _forced
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; known: {sorted(ALGORITHMS)}")
    previous, _forced = _forced, name
    try:
        yield
    finally:
        _forced = previous
