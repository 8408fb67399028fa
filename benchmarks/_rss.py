"""Current resident set size of this process, shared by the memory-measuring benchmarks."""

from __future__ import annotations

import os


def rss_mb() -> float:
    """Current RSS in MiB (Linux /proc), else NaN."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return float("nan")
