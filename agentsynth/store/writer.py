"""The single store writer: finished episodes stream in, batched transactions go out.

One thread writes while a run is going. Each batch (up to ``batch_size`` episodes or ``interval``
seconds' worth) is one transaction holding the episodes, their tasks, messages and signals, so
after a crash (even SIGKILL) an episode is either wholly in the store or not at all. Rows go in as
Arrow tables: ~100x faster than row-by-row inserts in DuckDB.

The thread opens the store's file only to write what is queued and closes it at once (tens of
milliseconds a second), so other processes (``agentsynth view``, ``sql``, ``runs``, ``audit``,
``export``, a notebook's :func:`~agentsynth.open_store`) read the store while the run goes on and
see episodes at most ``interval`` plus a batch's write old. When a reader holds the file, what is
queued waits for the next try (the runner stops taking new episodes while too much is queued).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from collections import deque
from operator import itemgetter
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from .connection import StoreLocked, connect
from .transaction import transaction

_SCHEMAS = {
    "tasks": pa.schema([
        ("task_id", pa.string()), ("env_id", pa.string()), ("domain", pa.string()), ("seed", pa.int64()),
        ("prompt", pa.string()), ("answer", pa.string()), ("metadata", pa.string()),
    ]),
    "episodes": pa.schema([
        ("episode_id", pa.string()), ("run_id", pa.string()), ("task_id", pa.string()), ("env_id", pa.string()),
        ("env_config", pa.string()), ("feedback", pa.string()), ("domain", pa.string()), ("seed", pa.int64()),
        ("sample", pa.int32()), ("status", pa.string()), ("error", pa.string()), ("turns", pa.int32()),
        ("reward", pa.float64()), ("terminated", pa.bool_()), ("truncated", pa.bool_()),
        ("passed_first", pa.bool_()), ("passed_last", pa.bool_()), ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()), ("judge_tokens", pa.int64()), ("attempts", pa.int32()),
        ("tries", pa.int32()), ("latency_s", pa.float64()),
        ("started_at", pa.timestamp("us")), ("finished_at", pa.timestamp("us")),
    ]),
    "messages": pa.schema([
        ("episode_id", pa.string()), ("position", pa.int32()), ("turn", pa.int32()), ("role", pa.string()),
        ("content", pa.string()), ("tool_calls", pa.string()), ("tool_call_id", pa.string()),
        ("answer", pa.string()),
    ]),
    "signals": pa.schema([
        ("episode_id", pa.string()), ("turn", pa.int32()), ("name", pa.string()), ("role", pa.string()),
        ("value", pa.float64()), ("passed", pa.bool_()), ("feedback", pa.string()), ("details", pa.string()),
        ("tokens", pa.int32()),
    ]),
}


MESSAGE_COLUMNS = tuple(_SCHEMAS["messages"].names)
SIGNAL_COLUMNS = tuple(_SCHEMAS["signals"].names)
_GETTERS = {name: itemgetter(*schema.names) for name, schema in _SCHEMAS.items()}


@dataclass(slots=True)
class EpisodeRecord:
    """Everything one finished episode adds to the store.

    ``episode`` and ``task`` are dicts keyed by column; ``messages`` and ``signals`` (the many
    rows) are tuples in :data:`MESSAGE_COLUMNS` / :data:`SIGNAL_COLUMNS` order. ``task`` may be
    None when this session already sent that task.
    """

    episode: dict[str, Any]
    task: dict[str, Any] | None
    messages: list[tuple[Any, ...]] = field(default_factory=list)
    signals: list[tuple[Any, ...]] = field(default_factory=list)
    replaces: bool = False  # an earlier failed attempt of this episode is stored (or queued): replace it
    retryable: bool = False  # failed on a transient model error: the run may run it again (not a column)


def arrow_table(name: str, rows: list[tuple[Any, ...]]) -> pa.Table:
    """Rows (tuples in schema order) as an Arrow table: transpose in C, one array per column."""
    schema = _SCHEMAS[name]
    columns = list(zip(*rows))
    return pa.Table.from_arrays([pa.array(c, f.type) for c, f in zip(columns, schema)], schema=schema)


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple[Any, ...]], *, or_ignore: bool = False,
                seq: list[int | None] | None = None) -> None:
    """Insert rows (tuples in the table's column order) in one Arrow scan; nothing if empty.
    ``seq``: each row's ``episode_seq`` (migration m006), aligned with ``rows``."""
    if not rows:
        return
    data = arrow_table(table, rows)
    if seq is not None:
        data = data.append_column("episode_seq", pa.array(seq, pa.int64()))
    con.register("_rows", data)
    try:
        con.execute(f"INSERT {'OR IGNORE ' if or_ignore else ''}INTO {table} BY NAME SELECT * FROM _rows")
    finally:
        con.unregister("_rows")


class StoreWriter:
    """Writes a run's episodes into the store at ``path``: :meth:`submit` from the event loop,
    :meth:`close` at the end.

    Submitting is a deque append (no lock, no wake-up); every ``interval`` seconds the thread opens
    the file, writes what is queued at that moment (in transactions of up to ``batch_size``
    episodes) and closes it, so the file is free at least ``interval`` seconds between writes
    however fast episodes finish (the runner bounds what is queued).
    While another process holds the file it retries each ``interval``; :meth:`close` waits up to
    ``close_wait`` seconds for it before giving up (what is not written then is run again when
    the same command is re-run).
    """

    def __init__(self, path: str | Path, *, batch_size: int = 1000, interval: float = 1.0, close_wait: float = 600.0):
        self.path = Path(path)
        self.batch_size = batch_size
        self.interval = interval
        self.close_wait = close_wait
        self.written = 0
        self.held_by: str | None = None  # why the last try could not open the file (None: it could)
        self.error: BaseException | None = None
        self._pending: deque[EpisodeRecord] = deque()
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="agentsynth-store-writer", daemon=True)
        self._thread.start()

    def submit(self, record: EpisodeRecord) -> None:
        """Queue one finished episode; raises if the writer has failed."""
        if self.error is not None:
            raise RuntimeError(f"store writer failed: {self.error}") from self.error
        self._pending.append(record)

    def pending(self) -> int:
        """Episodes queued but not yet committed."""
        return len(self._pending)

    def close(self) -> None:
        """Flush everything queued and stop the thread; re-raise a writer failure."""
        self._closing = True
        self._wake.set()
        self._thread.join()
        if self.error is not None:
            raise RuntimeError(f"store writer failed: {self.error}") from self.error

    def _loop(self) -> None:
        closing_since: float | None = None
        while True:
            self._wake.wait(self.interval if closing_since is None else 0.05)  # closing: retry a held file soon
            self._wake.clear()
            if self._closing and closing_since is None:
                closing_since = time.monotonic()
            if self._pending and self.error is None:
                self._write_queued()
            if closing_since is not None and (not self._pending or self.error is not None):
                return
            if closing_since is not None and time.monotonic() - closing_since > self.close_wait:
                self.error = StoreLocked(f"{len(self._pending)} finished episode(s) not written: {self.held_by}")
                return

    def _write_queued(self) -> None:
        """Open the file (without waiting: a held file is retried next time), write the episodes
        queued now in transactions of up to ``batch_size``, close it."""
        try:
            con = connect(self.path, read_only=False, create=False, wait=0, migrate=False)
        except StoreLocked as exc:
            self.held_by = str(exc)
            return
        except BaseException as exc:  # noqa: BLE001 - surfaced through submit/close
            self.error = exc
            return
        self.held_by = None
        todo = len(self._pending)  # what is queued now: episodes finishing meanwhile wait for the next time
        try:
            while todo > 0 and self.error is None:
                batch = [self._pending.popleft() for _ in range(min(self.batch_size, todo))]
                todo -= len(batch)
                try:
                    self._flush(con, batch)
                    self.written += len(batch)
                except BaseException as exc:  # noqa: BLE001 - surfaced through submit/close
                    self.error = exc
        finally:
            con.close()

    def _flush(self, con: duckdb.DuckDBPyConnection, batch: list[EpisodeRecord]) -> None:
        tasks = {r.task["task_id"]: r.task for r in batch if r.task is not None}
        if any(r.replaces for r in batch):  # a run's own retry of an episode may share its batch: the last wins
            last = {r.episode["episode_id"]: i for i, r in enumerate(batch)}
            batch = [r for i, r in enumerate(batch) if last[r.episode["episode_id"]] == i]
        episodes = list(map(_GETTERS["episodes"], (r.episode for r in batch)))
        messages = [m for r in batch for m in r.messages]
        signals = [s for r in batch for s in r.signals]
        replaced = [r.episode["episode_id"] for r in batch if r.replaces]
        with transaction(con):
            if replaced:
                ids = pa.table({"episode_id": pa.array(replaced, pa.string())})
                con.register("_replaced", ids)
                for t in ("signals", "messages", "episodes"):
                    con.execute(f"DELETE FROM {t} WHERE episode_id IN (SELECT episode_id FROM _replaced)")
                con.unregister("_replaced")
            insert_rows(con, "tasks", list(map(_GETTERS["tasks"], tasks.values())), or_ignore=True)
            # episode_seq: the order episodes are committed in, carried by their rows (migration m006)
            top = con.execute("SELECT coalesce(max(episode_seq), 0) FROM episodes").fetchall()[0][0]
            seqs = {row[0]: top + i for i, row in enumerate(episodes, 1)}
            for name, rows in (("episodes", episodes), ("messages", messages), ("signals", signals)):
                insert_rows(con, name, rows, seq=[seqs[r[0]] for r in rows])
