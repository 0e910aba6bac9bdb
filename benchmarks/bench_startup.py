"""Compile time and first-call time, each in a fresh process.

A user's first call pays either Numba's compilation (cold cache) or loading
the cached machine code (warm cache). Both are timed in a new interpreter, the
cold one with an empty NUMBA_CACHE_DIR so that no earlier run can help it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

# Import, then time one small call of each family (the timed part only).
_FIRST_CALLS = """
import time, numpy as np
import numconv.functional as F
x = np.ones((1, 2, 8, 8), np.float32)
w = np.ones((2, 2, 3, 3), np.float32)
start = time.perf_counter()
F.conv2d(x, w)
F.max_pool2d(x, 2)
F.avg_pool2d(x, 2)
print(time.perf_counter() - start)
"""


def _first_call_seconds(cache_dir: str) -> float:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    out = subprocess.run([sys.executable, "-c", _FIRST_CALLS], env=env, check=True,
                         capture_output=True, text=True)  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


class FirstCall:
    """Seconds for the first conv2d + max_pool2d + avg_pool2d call of a new process."""

    timeout = 900
    number = 1
    repeat = 1

    def setup(self):
        self.warm_dir = tempfile.mkdtemp(prefix="numconv-numba-")
        _first_call_seconds(self.warm_dir)  # fills the cache

    def track_cold_cache(self):
        """Compilation included: an empty Numba cache."""
        with tempfile.TemporaryDirectory(prefix="numconv-numba-") as empty:
            return _first_call_seconds(empty)

    def track_warm_cache(self):
        """Machine code loaded from the cache filled in setup."""
        return _first_call_seconds(self.warm_dir)

    track_cold_cache.unit = track_warm_cache.unit = "seconds"
