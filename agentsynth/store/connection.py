"""Opening a store file: clear errors for a locked, missing, foreign or newer store.

DuckDB lets one process write a file, or any number of processes read it, never both at once. No
agentsynth process holds the file longer than it needs: a run's writer opens it for each batch
(tens of milliseconds a second), commands and the viewer for one query or one command. So an open
that finds the file held waits (``wait``, default :data:`LOCK_WAIT_S`, or the environment's
``AGENTSYNTH_LOCK_WAIT_S``) for it to be released before giving up with a message that names the
holder.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import duckdb

from . import migrations


LOCK_WAIT_S = 10.0


class StoreError(RuntimeError):
    """The store cannot be opened or used as asked (the message says why)."""


class StoreLocked(StoreError):
    """Another process held the store's file for longer than the open was willing to wait."""


def lock_wait() -> float:
    """Seconds an open waits for another process to release the file: ``AGENTSYNTH_LOCK_WAIT_S``
    when set (a number of seconds, 0 = do not wait), else :data:`LOCK_WAIT_S`."""
    raw = os.environ.get("AGENTSYNTH_LOCK_WAIT_S")
    if raw is None:
        return LOCK_WAIT_S
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise StoreError(f"AGENTSYNTH_LOCK_WAIT_S must be a number of seconds, not {raw!r}") from None


def connect(path: str | Path, *, read_only: bool, create: bool | None = None, allow_files: bool = False,
            wait: float | None = None, migrate: bool = True) -> duckdb.DuckDBPyConnection:
    """Open ``path``; writable opens apply pending migrations (unless ``migrate`` is False: the
    run's writer, which opens the store once per batch after the run applied them). A missing
    file is created when ``create`` (default: for writable opens), else refused with a clear
    :class:`StoreError`.

    While another process holds the file, retry for up to ``wait`` seconds (default
    :func:`lock_wait`), then raise :class:`StoreLocked` naming that process.

    A read-only connection reads the store and nothing else: DuckDB's ``enable_external_access``
    is off (no ``read_csv``, ``read_blob``, ``glob``, ``COPY``, ``ATTACH``, extension loading),
    unless ``allow_files``. Queries a user types run on such connections only."""
    deadline = time.monotonic() + (lock_wait() if wait is None else wait)
    delay = 0.005
    while True:
        try:
            return _connect(Path(path), read_only, create, allow_files, migrate)
        except _Held as held:
            if time.monotonic() + delay > deadline:
                raise StoreLocked(_locked(Path(path), held.message, read_only)) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


class _Held(Exception):
    def __init__(self, message: str):
        self.message = message


def _connect(p: Path, read_only: bool, create: bool | None, allow_files: bool, migrate: bool) -> duckdb.DuckDBPyConnection:
    if create is None:
        create = not read_only
    if not create and not p.exists():
        raise StoreError(f"no store at {p} (run `agentsynth run` first, or pass --store PATH)")
    if create:
        p.parent.mkdir(parents=True, exist_ok=True)
    try:
        config = {"enable_external_access": False} if read_only and not allow_files else {}
        con = duckdb.connect(str(p), read_only=read_only, config=config)
    except duckdb.ConnectionException as exc:
        if "different configuration" not in str(exc):
            raise StoreError(f"cannot open store {p}: {exc}") from None
        raise StoreError(
            f"store {p} is already open in this process with other settings (writable, or file access "
            f"{'off' if allow_files else 'on'}); close that connection first"
        ) from None
    except duckdb.IOException as exc:
        msg = str(exc)
        if "lock" in msg.lower():
            raise _Held(msg) from None
        raise StoreError(f"cannot open store {p}: {msg}") from None
    except duckdb.Error as exc:
        raise StoreError(f"cannot open store {p}: {exc}") from None
    try:
        if read_only:
            pending = migrations.check(con)
            if pending and migrations.applied(con) == []:
                raise StoreError(f"{p} is not an agentsynth store (no _migrations table)")
            if pending:
                raise StoreError(
                    f"store {p} uses an older schema (missing {', '.join(pending)}); "
                    "any writing command (e.g. `agentsynth run`) upgrades it"
                )
        elif migrate:
            migrations.migrate(con)
    except RuntimeError as exc:
        con.close()
        raise StoreError(str(exc)) from None
    return con


def _locked(p: Path, msg: str, read_only: bool) -> str:
    """Why DuckDB refused the file lock, naming the process that holds it (DuckDB's message gives
    its PID and program; /proc gives its command line) and what to do about it."""
    pid = re.search(r"PID (\d+)", msg)
    program = re.search(r"held in (\S+)", msg)
    who = "another process"
    if pid:
        cmd = _command_line(int(pid.group(1))) or (Path(program.group(1)).name if program else "")
        who = f"another process (PID {pid.group(1)}{': ' + cmd if cmd else ''})"
    if not read_only and "read-only mode" in msg:  # DuckDB adds this when the holder only reads
        return (f"store {p} is in use by {who}, which has kept it open read-only (a notebook or script holding "
                "duckdb.connect(...)?); DuckDB cannot write a store that another process has open: close that "
                "connection (con.close()), or read with agentsynth.open_store, which holds the file only while a "
                "query runs; then run again")
    return (f"store {p} is in use by {who}, which has kept it open for writing (a long export, regrade or audit, "
            "or a script holding duckdb.connect(...)?); DuckDB allows one writer and no readers meanwhile: try again "
            "when it finishes (AGENTSYNTH_LOCK_WAIT_S sets how long commands wait), or end that process")


def _command_line(pid: int, limit: int = 80) -> str:
    """The process's command line, shortened (empty when it cannot be read, e.g. not on Linux)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    cmd = " ".join(raw.decode(errors="replace").replace("\0", " ").split())
    return cmd if len(cmd) <= limit else cmd[: limit - 1] + "…"
