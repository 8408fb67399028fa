"""Current and peak resident set size of this process, shared by the memory-measuring benchmarks."""

from __future__ import annotations

import os
import sys


def rss_mb() -> float:
    """Current RSS in MiB (Linux /proc), else NaN."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return float("nan")


def peak_rss_mb() -> float:
    """Peak RSS of this process in MiB: ``VmHWM`` (Linux), else ``ru_maxrss``. On Linux ``ru_maxrss``
    would not do in a child: it keeps the parent's RSS at the time of the fork."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 1024  # bytes on macOS, KiB on Linux
