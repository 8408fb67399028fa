"""The viewer's only way into the store: a read-only connection per request, in a worker thread.

The viewer never holds the DuckDB file between requests: each request opens the store with
:func:`agentsynth.store.connection.connect` (``read_only=True``: DuckDB's external access off, so
queries read the store and nothing else), runs its queries in a thread of a small pool (the
aiohttp event loop never waits on DuckDB) and closes the connection in ``finally``. A run that
opens the store for each batch of episodes can therefore write between two page loads, and a
reader never keeps a run from starting.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from ..store.connection import StoreError, connect

T = TypeVar("T")
Params = Mapping[str, Any] | Sequence[Any] | None

WORKERS = 4
"""Requests that may read the store at once (the others wait for a thread)."""

MEMORY_LIMIT = "256MB"
SETTINGS = ("SET enable_progress_bar = false", f"SET memory_limit = '{MEMORY_LIMIT}'")
"""Run on each connection (constants): no progress bar on the server's terminal for a slow query,
and DuckDB's buffer memory capped (shared by the requests reading at once; a large join spills to
DuckDB's temporary directory beside the store instead), so the server stays well under 500 MB
on a store of a million episodes."""


class Reader:
    """One request's read-only connection, with row helpers (named ``$parameters``, never values
    formatted into SQL)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path):
        self.con = con
        self.path = path

    def rows(self, sql: str, params: Params = None) -> list[dict[str, Any]]:
        """Every row of ``sql`` as a dict keyed by column name."""
        cur = self.con.execute(sql, params or {})
        cols = [d[0] for d in cur.description or []]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    def one(self, sql: str, params: Params = None) -> dict[str, Any] | None:
        """The first row of ``sql`` as a dict, or None."""
        cur = self.con.execute(sql, params or {})
        row = cur.fetchone()
        return None if row is None else dict(zip([d[0] for d in cur.description], row))

    def value(self, sql: str, params: Params = None) -> Any:
        """The first column of the first row (None when there is no row)."""
        row = self.con.execute(sql, params or {}).fetchone()
        return None if row is None else row[0]


class StoreDB:
    """Reads of the store at ``path``, each with its own connection, in a pool of ``workers`` threads."""

    def __init__(self, path: str | Path, *, workers: int = WORKERS):
        self.path = Path(path)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="agentsynth-view")

    def check(self) -> None:
        """Open and close the store once (before serving): :class:`StoreError` says why it cannot be read."""
        with self._open():
            pass

    @contextlib.contextmanager
    def _open(self) -> Iterator[Reader]:
        con = _connect(self.path)
        try:
            yield Reader(con, self.path)
        finally:
            con.close()

    def _call(self, fn: Callable[[Reader], T]) -> T:
        with self._open() as r:
            return fn(r)

    async def read(self, fn: Callable[[Reader], T]) -> T:
        """``fn(reader)`` in a worker thread on a fresh read-only connection, closed when it returns."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._call, fn)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator["Session"]:
        """A connection for one streamed response (a CSV download): open for the ``async with``
        block only, every call on it in a worker thread."""
        loop = asyncio.get_running_loop()
        con = await loop.run_in_executor(self._pool, _connect, self.path)
        try:
            yield Session(con, self._pool)
        finally:
            await loop.run_in_executor(self._pool, con.close)

    def close(self) -> None:
        """Stop the worker threads (waiting for the reads in progress)."""
        self._pool.shutdown(wait=True)


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to ``path`` with :data:`SETTINGS` applied."""
    con = connect(path, read_only=True)
    try:
        for statement in SETTINGS:
            con.execute(statement)
    except BaseException:
        con.close()
        raise
    return con


class Session:
    """A connection that lives for one streamed request; its calls run in the pool's threads."""

    def __init__(self, con: duckdb.DuckDBPyConnection, pool: ThreadPoolExecutor):
        self.con = con
        self._pool = pool

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)


@contextlib.contextmanager
def time_limit(con: duckdb.DuckDBPyConnection, seconds: float) -> Iterator[None]:
    """Interrupt the query running on ``con`` after ``seconds`` (DuckDB raises
    ``duckdb.InterruptException`` in the thread running it): a typed query cannot keep the store
    open, and a run from writing, for longer."""
    timer = threading.Timer(seconds, con.interrupt)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


__all__ = ["Reader", "Session", "StoreDB", "StoreError", "time_limit"]
