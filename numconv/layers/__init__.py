"""Stateful layers with ``forward``/``backward`` on the shared :class:`Layer` base."""

from .base import Layer
from .conv import Conv1d, Conv2d, Conv3d

__all__ = ["Conv1d", "Conv2d", "Conv3d", "Layer"]
