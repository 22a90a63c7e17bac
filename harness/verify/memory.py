"""Give the heap's free memory back to the system between the verifier's phases (glibc).

Why: glibc serves an allocation of 128 KB or more with its own mmap, returned on free, until
one such block is freed: then it raises that threshold to the block's size (up to 32 MB), and
from there on arrays of that size come from the heap, whose freed space stays in the process.
A check makes and frees many transient arrays of a few MB (codes, masks, group sums), so each
left ~5-20 MB at 300K events that no live object used, and the next check's peak stood on it.
`malloc_trim` after each phase returns it (a few ms); fixing the threshold instead returned it
as well but cost ~20% more CPU time (every large array's pages faulted in anew). Elsewhere
than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from typing import Any

__all__ = ["release_free_memory"]


@functools.cache
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None  # not glibc: musl has none
    except OSError:
        return None


def release_free_memory() -> None:
    """Return the heap's free pages to the system (glibc's malloc_trim)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
