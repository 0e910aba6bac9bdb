"""Pooling and unpooling: public functions re-exported by :mod:`numconv.functional`.

``plan`` validates and sizes, ``windows`` turns a plan into per-dim window
arrays, and one module per family (``extreme``, ``average``, ``power``,
``unpool``) runs the kernels of :mod:`numconv.kernels.pool`.
"""

from . import average, extreme, power, unpool
from .average import *  # noqa: F403
from .extreme import *  # noqa: F403
from .power import *  # noqa: F403
from .unpool import *  # noqa: F403

__all__ = [*extreme.__all__, *average.__all__, *power.__all__, *unpool.__all__]
