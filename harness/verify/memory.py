"""Give freed column arrays back to the system at once (glibc's malloc), not keep them.

Why: glibc serves an allocation of 128 KB or more with its own mmap, returned on free, until
one such block is freed: then it raises that threshold to the block's size (up to 32 MB), and
from there on arrays of that size come from the heap, whose freed middle is kept. A
verification makes and frees many transient arrays of a few MB (a check's codes, a slice's
columns), so the heap grew by ~60 MB at a million events that no live object used. A fixed
threshold keeps every large array its own mapping. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["return_freed_arrays"]

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
_THRESHOLD = 128 * 1024  # glibc's default, fixed


def return_freed_arrays() -> bool:
    """Fix glibc's mmap threshold at its default for this process; whether it was set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
