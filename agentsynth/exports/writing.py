"""Writing an export's output incrementally: the rows to a temporary file (JSONL lines, or Parquet
row groups through a ``pyarrow`` ``ParquetWriter``), and the lineage rows (``export_items``, with
each row's content hash) staged batch by batch in a temp table, then recorded with the
``exports`` row inside the caller's transaction (the one that renames the file) once the file's
hash, and so the export id, is known. The orchestration (temp file, transaction, rename) is :func:`agentsynth.exports.export`'s.

What a file holds does not depend on the batches it was written in: lines are lines, and Parquet
row groups always hold ``ROW_GROUP_ROWS`` rows (the last one fewer), so the same rows give the
same bytes whatever the batch size.

Package-internal API: ``ROW_GROUP_ROWS``, :class:`FileWriter`, :class:`Lineage`, :func:`fsync_dir`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from .formats import Row

ROW_GROUP_ROWS = 10_000  # Parquet rows per row group: bounds the rows held before they are written


def fsync_dir(path: Path) -> None:
    """Sync the directory ``path`` (so a rename in it is durable); a no-op where that is not possible."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class FileWriter:
    """Writes rows to ``tmp`` as they come (format ``sft``/``dpo``: a line each; ``parquet``: rows
    of ``schema``, in row groups of ``ROW_GROUP_ROWS``). :meth:`finish` syncs the file and returns
    the sha256 of its bytes; used as a context manager, the file is closed on the way out either way."""

    def __init__(self, tmp: Path, fmt: str, schema: pa.Schema | None = None) -> None:
        self._tmp = tmp
        self._schema = schema
        self._pending: list[pa.Table] = []  # parquet rows not yet in a row group, as Arrow (compact)
        self._pending_rows = 0
        self._parquet: pq.ParquetWriter | None = None
        self._lines: IO[str] | None = None
        if fmt == "parquet":
            if schema is None:
                raise ValueError("a parquet file needs its schema")
            self._parquet = pq.ParquetWriter(tmp, schema)
        else:
            self._lines = open(tmp, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 - closed in close()

    def write(self, rows: Iterable[Row]) -> None:
        """Append ``rows`` to the file."""
        if self._lines is not None:
            self._lines.writelines(r.text + "\n" for r in rows)
            return
        table = pa.Table.from_pylist([r.data for r in rows], schema=self._schema)
        self._pending.append(table)
        self._pending_rows += table.num_rows
        while self._pending_rows >= ROW_GROUP_ROWS:
            self._row_group(ROW_GROUP_ROWS)

    def _row_group(self, n: int) -> None:
        """Write the first ``n`` pending rows as one row group (contiguous, so the bytes do not
        depend on how the rows were batched)."""
        assert self._parquet is not None
        pending = pa.concat_tables(self._pending)
        self._parquet.write_table(pending.slice(0, n).combine_chunks(), row_group_size=n)
        rest = pending.slice(n).combine_chunks()  # a copy: the written rows' buffers go now
        self._pending, self._pending_rows = ([rest] if rest.num_rows else []), rest.num_rows
        del pending
        pa.default_memory_pool().release_unused()  # else Arrow's allocator keeps each group's peak

    def finish(self) -> str:
        """Write what is pending, close the file (Parquet: its footer) and sync it; the sha256 of its bytes."""
        if self._pending_rows:
            self._row_group(self._pending_rows)
        self.close()
        h = hashlib.sha256()
        with open(self._tmp, "rb+") as f:
            os.fsync(f.fileno())
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._lines is not None:
            self._lines.close()
            self._lines = None
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


_ITEM_COLUMNS = [
    ("item", pa.int64()), ("part", pa.string()), ("episode_id", pa.string()), ("turn", pa.int32()),
    ("task_id", pa.string()), ("domain", pa.string()), ("content_hash", pa.string()),
]


class Lineage:
    """The ``export_items`` rows of an export, staged batch by batch in the temp table
    ``_export_items_staged`` (item numbers continue across batches; a temp table is not the
    store, and it goes with the connection) until :meth:`record` inserts them, under the export
    id, with the ``exports`` row, in the transaction that renames the file."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self.rows = 0  # file rows staged so far
        cols = ", ".join(f"{c} {'BIGINT' if t == pa.int64() else 'INTEGER' if t == pa.int32() else 'VARCHAR'}"
                         for c, t in _ITEM_COLUMNS)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _export_items_staged ({cols})")

    def add(self, rows: list[tuple[Row, str]]) -> None:
        """Stage the items of file rows ``rows`` (each with its content hash), the next rows of the file."""
        items: dict[str, list[Any]] = {c: [] for c, _ in _ITEM_COLUMNS}
        for i, (r, h) in enumerate(rows, start=self.rows):
            for part, g in r.parts:
                for col, v in (("item", i), ("part", part), ("episode_id", g.episode_id), ("turn", g.turn),
                               ("task_id", g.task_id), ("domain", g.domain), ("content_hash", h)):
                    items[col].append(v)
        self.rows += len(rows)
        if not rows:
            return
        self._con.register("_export_items_batch", pa.table({c: pa.array(items[c], t) for c, t in _ITEM_COLUMNS}))
        try:
            self._con.execute("INSERT INTO _export_items_staged SELECT * FROM _export_items_batch")
        finally:
            self._con.unregister("_export_items_batch")

    def record(self, export_id: str, export_row: dict[str, Any]) -> bool:
        """Insert the ``exports`` row and the staged items (in the caller's transaction) and drop
        the staging table; False (nothing inserted) if the export is already recorded."""
        con = self._con
        try:
            if con.execute("SELECT 1 FROM exports WHERE export_id = ?", [export_id]).fetchone():
                return False
            con.execute(f"INSERT INTO exports ({', '.join(export_row)}) VALUES ({', '.join('?' * len(export_row))})",
                        list(export_row.values()))
            con.execute("INSERT INTO export_items BY NAME SELECT ? AS export_id, * FROM _export_items_staged "
                        "ORDER BY item, part", [export_id])
            return True
        finally:
            con.execute("DROP TABLE _export_items_staged")
