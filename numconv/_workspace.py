"""Scratch arrays kept between calls, one set per thread.

Why: a large temporary allocated and freed on every call does not keep its
memory. glibc hands blocks above its mmap threshold back to the system when
they are freed, and shrinks a worker thread's arena when its top is free, so
the next call's temporaries of the same size are fresh pages: the kernel
zeroes each 4 KiB page on its first touch, one page fault apiece. g8_3x3's
forward took 2,250-2,970 faults a call that way, most of them in Winograd's
chunk buffers on the worker threads (``docs/performance.md`` §25).

A scratch slot keeps its memory instead. Each (thread, slot name) holds one
buffer, grown to the largest request it has seen, and hands out views of it:

- a slot's array is valid until the same thread asks for that slot again,
  so it must not outlive the call that asked for it (results the caller
  keeps are always fresh arrays);
- a slot's contents are whatever the last user left: callers that need
  zeros write them (:func:`zeroed`, or only the parts they do not overwrite);
- one name per use site. Code that may run nested inside itself must not
  share a name between the levels (none does today: the algorithms that go
  back through the dispatch, polyphase and depth slices, only ever reach
  other algorithms).

Threads: slots are thread-local, so concurrent calls from several Python
threads never share one; each of the GEMM pool's workers runs one task at a
time. The memory kept is, per thread, each slot's largest request;
:func:`release` drops it.
"""

from __future__ import annotations

import math
import threading

import numpy as np

# Cache-line alignment: the kernels' vector loads never straddle a line at a
# slot's start, whatever the allocator returned.
_ALIGN = 64

_local = threading.local()
# Bumped by release(): a thread whose slots are older drops them on its next
# request, which is how release() reaches the pool's worker threads.
_generation = 0


def scratch(name: str, shape, dtype) -> np.ndarray:
    """This thread's slot ``name`` as an uninitialised C-contiguous array.

    Parameters
    ----------
    name : str
        The use site's slot; see the module docstring for the rules.
    shape : tuple of int
    dtype : numpy dtype

    Returns
    -------
    ndarray
        A view of the slot's buffer, valid until this thread asks for
        ``name`` again.
    """
    state = _local.__dict__
    if state.get("generation") != _generation:
        state["slots"] = {}
        state["generation"] = _generation
    slots = state["slots"]
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    slot = slots.get(name)
    if slot is None or slot[0].nbytes - slot[1] < nbytes:
        raw = np.empty(nbytes + _ALIGN, dtype=np.uint8)
        slot = slots[name] = (raw, -raw.ctypes.data % _ALIGN)
    raw, offset = slot
    return raw[offset : offset + nbytes].view(dtype).reshape(shape)


def zeroed(name: str, shape, dtype) -> np.ndarray:
    """:func:`scratch` filled with zeros."""
    array = scratch(name, shape, dtype)
    array.fill(0)
    return array


def release() -> None:
    """Let every thread's scratch memory go.

    The calling thread's slots are freed at once; other threads drop theirs
    the next time they ask for a slot.
    """
    global _generation
    _generation += 1
    _local.__dict__.clear()
