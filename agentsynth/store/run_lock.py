"""One run at a time per store, and a way for readers to tell that one is live.

A run no longer holds the DuckDB file for its whole length (its writer opens it per batch, so
readers can read meanwhile), so the file's own lock cannot keep two runs from writing one store at
once. A run holds this lock instead: ``flock`` on ``<store>.run-lock`` beside the store, released
by the kernel when the process ends, however it ends (even SIGKILL). The file holds the holder's
PID and command line for messages; it is left in place (removing it would let a second run lock a
new file while a first still holds the old one).
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from .connection import StoreError


def lock_path(store: str | Path) -> Path:
    """The lock file of ``store``."""
    return Path(f"{store}.run-lock")


class RunLock:
    """Held by the process running a spec into a store: ``with RunLock(store): ...``.

    A second run on the same store is refused at once with :class:`StoreError` naming the first."""

    def __init__(self, store: str | Path):
        self.path = lock_path(store)
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        """Take the lock or raise :class:`StoreError` naming the process that has it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise StoreError(
                f"store {str(self.path)[: -len('.run-lock')]} is being written by another run ({holder}); one run at "
                "a time writes a store: wait for it to finish (read it meanwhile: `agentsynth view`, `sql`, `runs`), "
                "or use another --store"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n{' '.join(sys.argv)[:200].replace(chr(10), ' ')}\n".encode(errors="replace"), 0)
        self._fd = fd
        return self

    def name_run(self, run_id: str) -> None:
        """Record which run this is (after the store gave it an id), for :func:`live_run_id`."""
        if self._fd is not None:
            os.pwrite(self._fd, f"{run_id}\n".encode(), len(os.pread(self._fd, 4096, 0)))

    def release(self) -> None:
        """Let the next run start (also done by the kernel when this process ends)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _live_lines(store: str | Path) -> list[str] | None:
    """The lock file's lines while a run holds it (None when no run is live)."""
    try:
        fd = os.open(lock_path(store), os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _lines(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def live_run(store: str | Path) -> int | None:
    """The PID of the process running into ``store`` right now, or None when no run is live
    (a run whose process died shows as not live, whatever the ``runs`` table says)."""
    lines = _live_lines(store)
    if lines is None:
        return None
    return int(lines[0]) if lines and lines[0].strip().isdigit() else -1  # -1: live, PID not written yet


def live_run_id(store: str | Path) -> str | None:
    """The ``run_id`` of the run writing ``store`` right now (None when none is, or it has not
    got one yet). A run stored as ``running`` with another id is not running: its process ended
    before it finished (re-running the same command resumes it)."""
    lines = _live_lines(store)
    return lines[2].strip() or None if lines is not None and len(lines) > 2 else None


def shown_status(status: str, run_id: str, live: str | None) -> str:
    """A run's status as readers should show it: ``running`` only while its process runs; a run
    whose process ended without finishing shows as ``interrupted`` (as after Ctrl-C)."""
    return "interrupted" if status == "running" and run_id != live else status


def _lines(fd: int) -> list[str]:
    try:
        return os.pread(fd, 400, 0).decode(errors="replace").split("\n")
    except OSError:
        return []


def _pid(fd: int) -> int | None:
    lines = _lines(fd)
    return int(lines[0]) if lines and lines[0].strip().isdigit() else None


def _read(fd: int) -> str:
    """``PID N: command`` from the lock file (or what is known)."""
    pid = _pid(fd)
    if pid is None:
        return "another process"
    lines = _lines(fd)
    cmd = lines[1].strip() if len(lines) > 1 else ""
    return f"PID {pid}" + (f": {cmd}" if cmd else "")
