"""Fresh arrays that start on a cache line.

NumPy allocates through ``malloc``, which promises 16-byte alignment. A
large block comes from ``mmap`` 16 bytes past a page start, a smaller one
from the heap at whatever 16-byte boundary is free, and which of the two a
given size gets depends on the process's history (glibc moves its mmap
threshold as blocks are freed). With 64-byte vectors, an array that starts
off a 64-byte line turns every aligned-offset vector load or store into
two line accesses, so the same call ran at two speeds in different
processes: dw3x3's masked forward 0.29 or 0.53 ms, b1_3x3_14's Winograd
forward 0.72 or 1.14, odd29_3x3's weight gradient 1.36 or 1.9; with every
large array on a line, each ran at the fast speed in every process
(docs/performance.md §39).

The arrays the algorithms allocate for kernels to write (results, partial
sums, transformed filters, copies) come from here. They are views of a
byte buffer, so ``owndata`` is false; nothing else differs.
"""

from __future__ import annotations

import ctypes
import math

import numpy as np

LINE = 64  # bytes: one cache line, one AVX-512 vector


_BYTES = np.dtype(np.uint8)


def empty(shape, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose first element starts a cache line.

    About 1 µs against ``np.empty``'s 0.15 for small arrays: the address comes
    through ``ctypes.addressof`` (``.ctypes.data`` alone took 0.8 µs, and
    slicing and viewing another 0.4). Small arrays written one value at a time
    (a global pooling's output) gain nothing from the line and keep
    ``np.empty``.
    """
    try:
        shape = tuple(shape)
    except TypeError:  # one length, a Python or NumPy integer
        shape = (int(shape),)
    dtype = np.dtype(dtype)
    raw = np.empty(math.prod(shape) * dtype.itemsize + LINE, _BYTES)
    start = -ctypes.addressof(ctypes.c_char.from_buffer(raw)) % LINE
    return np.ndarray(shape, dtype, raw, start)


def zeros(shape, dtype) -> np.ndarray:
    """:func:`empty`, filled with zeros."""
    array = empty(shape, dtype)
    array.fill(0)
    return array


def copy(a, dtype) -> np.ndarray:
    """A C-contiguous copy of ``a`` in ``dtype``, on a cache line."""
    out = empty(np.shape(a), dtype)
    np.copyto(out, a, casting="unsafe")
    return out
