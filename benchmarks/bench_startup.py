"""Compile time and first-call time, each in a fresh process.

A user's first call pays either Numba's compilation (cold cache) or loading
the cached machine code (warm cache). Both are timed in a new interpreter, the
cold one with an empty NUMBA_CACHE_DIR so that no earlier run can help it;
the compile time is the part of a cold first call that Numba reports as
compiling (its "numba:compile" events).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

# Import, then time one small call of each family (the timed part only), and
# the part of it Numba spent compiling: the outermost "numba:compile" event
# intervals (compiling a kernel compiles the helpers it calls inside its own).
_FIRST_CALLS = """
import time, numpy as np
from numba.core import event
import numconv.functional as F
x = np.ones((1, 2, 8, 8), np.float32)
w = np.ones((2, 2, 3, 3), np.float32)
with event.install_recorder("numba:compile") as recorder:
    start = time.perf_counter()
    F.conv2d(x, w)
    F.max_pool2d(x, 2)
    F.avg_pool2d(x, 2)
    elapsed = time.perf_counter() - start
depth, compiling = 0, 0.0
for stamp, ev in recorder.buffer:
    if ev.is_start:
        opened = stamp if depth == 0 else opened
        depth += 1
    else:
        depth -= 1
        compiling += stamp - opened if depth == 0 else 0.0
print(elapsed, compiling)
"""


def _first_call_seconds(cache_dir: str) -> tuple[float, float]:
    """(first-call seconds, of which compiling) in a new interpreter using ``cache_dir``."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    out = subprocess.run([sys.executable, "-c", _FIRST_CALLS], env=env, check=True,
                         capture_output=True, text=True)  # fmt: skip
    elapsed, compiling = out.stdout.strip().splitlines()[-1].split()
    return float(elapsed), float(compiling)


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
            return _first_call_seconds(empty)[0]

    def track_warm_cache(self):
        """Machine code loaded from the cache filled in setup."""
        return _first_call_seconds(self.warm_dir)[0]

    def track_compile_time(self):
        """Seconds Numba spends compiling the kernels of those first calls (empty cache)."""
        with tempfile.TemporaryDirectory(prefix="numconv-numba-") as empty:
            return _first_call_seconds(empty)[1]

    track_cold_cache.unit = track_warm_cache.unit = track_compile_time.unit = "seconds"
