"""numconv: NumPy-native convolution and pooling with Numba kernels.

Functions live in :mod:`numconv.functional` (``import numconv.functional as F``);
stateful layers with ``forward``/``backward`` are exported here.
"""

from . import functional, layers
from .layers import *  # noqa: F403

__version__ = "0.1.0"
__all__ = [*layers.__all__, "__version__", "functional"]
