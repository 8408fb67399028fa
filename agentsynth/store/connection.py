"""Opening a store file: clear errors for a locked, missing, foreign or newer store."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from . import migrations


class StoreError(RuntimeError):
    """The store cannot be opened or used as asked (the message says why)."""


def connect(path: str | Path, *, read_only: bool, create: bool | None = None,
            allow_files: bool = False) -> duckdb.DuckDBPyConnection:
    """Open ``path``; writable opens apply pending migrations. A missing file is created when
    ``create`` (default: for writable opens), else refused with a clear :class:`StoreError`.

    A read-only connection reads the store and nothing else: DuckDB's ``enable_external_access``
    is off (no ``read_csv``, ``read_blob``, ``glob``, ``COPY``, ``ATTACH``, extension loading),
    unless ``allow_files``. Queries a user types run on such connections only."""
    p = Path(path)
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
            raise StoreError(_locked(p, msg, read_only)) from None
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
        else:
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
        return (f"store {p} is in use by {who}, which has it open read-only (a notebook or script?); DuckDB cannot "
                "write a store that another process has open: close that connection (con.close()) or end that "
                "process, then run again")
    return (f"store {p} is in use by {who}, which has it open for writing (a running `agentsynth run`?); "
            "DuckDB allows one writer and no readers meanwhile: try again when it finishes, or end that process")


def _command_line(pid: int, limit: int = 80) -> str:
    """The process's command line, shortened (empty when it cannot be read, e.g. not on Linux)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    cmd = " ".join(raw.decode(errors="replace").replace("\0", " ").split())
    return cmd if len(cmd) <= limit else cmd[: limit - 1] + "…"
