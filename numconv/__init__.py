"""numconv: NumPy-native convolution and pooling with Numba kernels.

Functions live in :mod:`numconv.functional` (``import numconv.functional as F``);
stateful layers with ``forward``/``backward`` are exported here.
"""

from . import _workspace, functional, layers
from .layers import *  # noqa: F403

__version__ = "0.1.0"
__all__ = [*layers.__all__, "__version__", "functional", "release_scratch"]


def release_scratch() -> None:
    """Free the scratch memory numconv keeps between calls.

    Algorithms that need large temporaries (Winograd's padded copies and
    transformed tiles, the GEMMs' column tiles) keep them per thread from one
    call to the next, so a training loop does not pay a page fault per 4 KiB
    of fresh memory on every call. The memory kept is each temporary's
    largest size so far, for each thread that ran a convolution. Call this
    to give it back, e.g. after a run of unusually large layers; later calls
    allocate it anew.

    The calling thread's scratch is freed at once, other threads' the next
    time they run a convolution.
    """
    _workspace.release()
