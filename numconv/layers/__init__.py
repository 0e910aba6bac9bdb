"""Stateful layers with ``forward``/``backward`` on the shared :class:`Layer` base."""

from . import pool, unfold
from .base import Layer
from .conv import (
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
)
from .pool import *  # noqa: F403
from .unfold import *  # noqa: F403

__all__ = [
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "Layer",
    *unfold.__all__,
    *pool.__all__,
]
