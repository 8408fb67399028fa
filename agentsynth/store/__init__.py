"""The trajectory store: one DuckDB file. Read it with :func:`open_store`.

Tables (documented in the README): runs, tasks, episodes, messages, signals, signal_types, and
the analysis tables audits, audit_results, exports, export_items, evaluations, loops, probes (view:
generalization).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb

from .connection import StoreError, StoreLocked, connect

DEFAULT_STORE = Path("runs") / "agentsynth.duckdb"

# Statement types a read-only query may contain. PRAGMA/CALL only for the read-only pragmas below.
_READ_TYPES = {"SELECT", "EXPLAIN"}
_READ_PRAGMAS = {
    "show_tables", "show_tables_expanded", "table_info", "show", "storage_info", "database_size",
    "version", "platform", "functions", "collations", "database_list", "metadata_info",
}
_PRAGMA = re.compile(r"^\s*(?:pragma|call)\s+(?:pragma_)?([a-z_]+)\s*(\(|;|$)", re.I)


class ReadOnlyViolation(StoreError):
    """A query that would change the store, its settings or files."""


def check_read_only(sql: str) -> None:
    """Raise :class:`ReadOnlyViolation` unless every statement in ``sql`` only reads."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise StoreError(f"cannot parse query: {str(exc).splitlines()[0]}") from None
    if not statements:
        raise StoreError("empty query")
    for st in statements:
        kind = st.type.name
        text = st.query.strip()
        if kind in _READ_TYPES:
            if kind == "EXPLAIN" and re.match(r"^\s*explain\s+analy[sz]e\b", text, re.I):
                check_read_only(re.sub(r"^\s*explain\s+analy[sz]e\s+", "", text, flags=re.I))
            continue
        if kind in ("PRAGMA", "CALL"):
            m = _PRAGMA.match(text)
            if m and m.group(1).lower() in _READ_PRAGMAS and "=" not in text.split("(")[0]:
                continue
        first = text.split(None, 1)[0].upper() if text else kind
        raise ReadOnlyViolation(
            f"refused: {first} statements can change the store or its files; `agentsynth sql` only reads "
            "(SELECT, EXPLAIN, DESCRIBE, SHOW, SUMMARIZE and read-only PRAGMAs)"
        )


class FileAccessRefused(ReadOnlyViolation):
    """A query that reads a file (or a directory listing) other than the store, on a store opened
    without ``allow_files``."""


class Store:
    """A read-only view of a store file. Queries return DuckDB relations (``.to_arrow_table()``,
    ``.df()``, ``.pl()``, ``.fetchall()``) over their fetched result.

    The file is held only while a query runs: each :meth:`sql` opens it read-only, runs the query,
    fetches the result and closes it. So a Store kept open in a notebook never keeps a run from
    starting or writing, and a query made while a run writes sees the episodes it has committed
    (up to about a second old). The price: a result is held in memory, so select what you need.

    Queries read the store only: file-reading functions (``read_csv``, ``read_parquet``,
    ``read_blob``, ``glob``, ...), ``ATTACH`` and extensions are refused unless ``allow_files``."""

    def __init__(self, path: str | Path = DEFAULT_STORE, *, allow_files: bool = False):
        self.path = Path(path)
        self.allow_files = allow_files
        connect(self.path, read_only=True, allow_files=allow_files).close()  # fail now: missing, foreign, newer
        self._results = duckdb.connect()  # in memory: holds fetched results, never the store

    def sql(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> duckdb.DuckDBPyRelation:
        """Run a read-only query; raise :class:`ReadOnlyViolation` for anything that writes and
        :class:`FileAccessRefused` for a file read without ``allow_files``."""
        check_read_only(query)
        con = connect(self.path, read_only=True, allow_files=self.allow_files)
        try:
            rel = con.sql(query) if params is None else con.sql(query, params=params)
            if rel is None:
                return None  # type: ignore[return-value]  # a statement without a result set
            table = rel.to_arrow_table()
        except duckdb.PermissionException as exc:
            raise FileAccessRefused(file_refusal(exc)) from None
        finally:
            con.close()
        return self._results.from_arrow(table)

    def table(self, name: str) -> duckdb.DuckDBPyRelation:
        """One table as a relation (e.g. ``store.table("episodes").filter("status = 'ok'")``); the
        whole table is fetched, so prefer :meth:`sql` with a ``WHERE`` on a large store."""
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise StoreError(f"not a table name: {name!r}")
        return self.sql(f'SELECT * FROM "{name}"')

    def close(self) -> None:
        """Drop fetched results (the store's file is not held between queries)."""
        self._results.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def file_refusal(exc: BaseException) -> str:
    """The one-line message for a query refused because it reads files."""
    detail = str(exc).splitlines()[0].removeprefix("Permission Error: ")
    return (f"refused: store queries read only the store ({detail}); "
            "pass --allow-files (open_store(..., allow_files=True)) to read your own files")


def open_store(path: str | Path = DEFAULT_STORE, *, allow_files: bool = False) -> Store:
    """Open a store read-only: ``with open_store("runs/agentsynth.duckdb") as s: s.sql(...)``.

    ``allow_files``: let queries read other files too (``read_csv``, ``read_parquet``, ``glob``, ...),
    e.g. to join your own data; off by default, so a query cannot read the rest of the disk."""
    return Store(path, allow_files=allow_files)


__all__ = ["DEFAULT_STORE", "FileAccessRefused", "ReadOnlyViolation", "Store", "StoreError", "StoreLocked", "check_read_only",
           "file_refusal", "open_store"]
