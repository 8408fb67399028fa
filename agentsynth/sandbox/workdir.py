"""Per-run directories on the host (only without bubblewrap, which keeps everything in memory), named
after the process that owns them, and the removal of those a killed owner left behind.

A directory is ``agentsynth-sandbox-<pid>-<start time>-<random>`` in the temp dir: the owner's pid
and its start time (field 22 of ``/proc/<pid>/stat``, so a reused pid does not pass for the owner).
:func:`clean_stale` removes the ones whose owner is gone; the sandbox calls it once per process,
when it first probes the machine.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

__all__ = ["PREFIX", "clean_stale", "make_run_dir"]

PREFIX = "agentsynth-sandbox-"
_OWNED = re.compile(re.escape(PREFIX) + r"(\d+)-(\d+)-")


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, as text), or None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19] if fields[0] != "Z" else None


def make_run_dir() -> str:
    """A fresh private directory for one run, named after this process."""
    return tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-{_start_time(os.getpid()) or 0}-")


def clean_stale(tmp: str | None = None) -> list[str]:
    """Remove the run directories in ``tmp`` (default: the temp dir) that belong to this user and
    whose owner process is gone; returns their paths."""
    base = tmp or tempfile.gettempdir()
    removed = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        m = _OWNED.match(entry.name)
        if not m or _start_time(int(m.group(1))) == m.group(2):
            continue
        try:
            if entry.is_symlink() or not entry.is_dir() or entry.stat().st_uid != os.geteuid():
                continue
        except OSError:
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.path)
    return removed
