"""numconv: NumPy-native convolution and pooling with Numba kernels.

Functions live in :mod:`numconv.functional` (``import numconv.functional as F``);
stateful layers with ``forward``/``backward`` are exported here.
"""

__version__ = "0.1.0"
