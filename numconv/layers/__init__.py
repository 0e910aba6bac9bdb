"""Stateful layers with ``forward``/``backward`` on the shared :class:`Layer` base."""

from . import pool
from .base import Layer
from .conv import Conv1d, Conv2d, Conv3d
from .pool import *  # noqa: F403

__all__ = ["Conv1d", "Conv2d", "Conv3d", "Layer", *pool.__all__]
