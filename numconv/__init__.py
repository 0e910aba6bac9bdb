"""numconv: NumPy-native convolution and pooling with Numba kernels.

Functions live in :mod:`numconv.functional` (``import numconv.functional as F``);
stateful layers with ``forward``/``backward`` are exported here.
"""

from . import functional
from .layers import Conv1d, Conv2d, Conv3d, Layer

__version__ = "0.1.0"
__all__ = ["Conv1d", "Conv2d", "Conv3d", "Layer", "__version__", "functional"]
