"""Process-level tuning that needs no torch (the CLI calls it before anything heavy is imported)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

__all__ = ["tune_malloc", "release_memory", "default_workers", "transferlab_home"]

_tuned = False


def tune_malloc() -> bool:
    """Keeps glibc from returning and re-faulting large buffers on every batch (a hidden CPU bottleneck).

    Sets M_MMAP_THRESHOLD=32 MiB, M_TRIM_THRESHOLD=huge and M_TOP_PAD=1 GiB through `mallopt`, the same as
    `MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=100000000000 MALLOC_TOP_PAD_=1073741824`. Does
    nothing (returns False) off glibc or when TRANSFERLAB_NO_MALLOC_TUNING is set.
    """
    global _tuned
    if _tuned or os.environ.get("TRANSFERLAB_NO_MALLOC_TUNING"):
        return _tuned
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # only glibc has it  # noqa: B018
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    ok = all(mallopt(opt, val) == 1 for opt, val in ((m_mmap_threshold, 32 * 1024 * 1024),
                                                      (m_trim_threshold, 2**31 - 1),
                                                      (m_top_pad, 1024 * 1024 * 1024)))
    _tuned = ok
    return ok


def release_memory() -> bool:
    """Hands memory that was freed back to the system (glibc's `malloc_trim(0)`): after a large image has been
    decoded and dropped, the process returns to its size instead of keeping the peak (with `tune_malloc`'s
    settings nothing would be trimmed otherwise). Returns False off glibc.
    """
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return False
    trim(0)
    return True


def default_workers() -> int:
    """Data-loading processes when the user chose none: half the CPUs, at most 4 (1 on 2 cores, 0 on 1)."""
    return min(4, max(0, (os.cpu_count() or 1) // 2))


def transferlab_home() -> Path:
    """Where transferlab keeps what outlives a run (feature and decoded caches, data sets, the studio's recent
    projects): $TRANSFERLAB_HOME, else ~/.cache/transferlab. Read at each call: tests and the budget's probes set it.

    Example:
        >>> transferlab_home()  # doctest: +SKIP
        PosixPath('/home/me/.cache/transferlab')
    """
    return Path(os.environ.get("TRANSFERLAB_HOME", Path.home() / ".cache" / "transferlab"))
