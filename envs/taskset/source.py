"""Reading a task set's file: JSONL, CSV, Parquet, or a directory written by
``datasets.Dataset.save_to_disk``, streamed.

A :class:`Source` does two things: :meth:`Source.scan` streams the columns the split needs, row by
row, once (when the task set is opened), and :meth:`Source.fetch` reads whole rows by row index,
on demand. Nothing holds the file in memory: JSONL and CSV keep one byte offset per row (an int64
array) and seek; Parquet reads only the row groups that hold the rows asked for (through pyarrow);
a ``datasets`` directory is Arrow IPC, memory-mapped. Row indexes are 0-based; :meth:`Source.where`
names a row for an error message as a person counts (``line 17``, ``row 17``).
"""

from __future__ import annotations

import csv
import io
import json
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

BATCH = 8192
"""Rows per batch when scanning Arrow data."""

MISSING = object()
"""A column the row does not have (JSONL rows may differ in their keys)."""


class TaskSetError(ValueError):
    """The task set cannot be used as configured: one line naming the file, and the row and column
    when one is at fault."""


class Source:
    """A task set file, opened for streaming (one subclass per format)."""

    kind = ""

    def __init__(self, path: Path):
        self.path = path

    @property
    def columns(self) -> list[str]:
        """The file's column names (for JSONL: those of its first row)."""
        raise NotImplementedError

    def scan(self, columns: Sequence[str]) -> Iterator[tuple[int, list[list[Any]]]]:
        """Every row's values of ``columns`` (:data:`MISSING` for an absent key), in batches: the
        index of the batch's first row, and one list of values per column."""
        raise NotImplementedError

    def fetch(self, rows: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Whole rows by index, as dicts."""
        raise NotImplementedError

    def where(self, row: int) -> str:
        """A row as a person counts it, for error messages."""
        return f"row {row + 1}"


class _OffsetSource(Source):
    """A text format read by seeking: :meth:`scan` keeps one byte offset per row."""

    def __init__(self, path: Path):
        super().__init__(path)
        self._offsets: np.ndarray | None = None
        self._fh: io.BufferedReader | None = None

    def _read_at(self, row: int, fh: io.BufferedReader) -> dict[str, Any]:
        """The row starting at ``fh``'s position."""
        raise NotImplementedError

    def fetch(self, rows: Sequence[int]) -> dict[int, dict[str, Any]]:
        assert self._offsets is not None, "scan() first"
        if self._fh is None:
            self._fh = self.path.open("rb")
        out = {}
        for r in sorted(set(rows)):
            self._fh.seek(int(self._offsets[r]))
            out[r] = self._read_at(r, self._fh)
        return out


class JsonlSource(_OffsetSource):
    """JSON Lines: one object per line (blank lines skipped); one byte offset per row is kept."""

    kind = "jsonl"

    def __init__(self, path: Path):
        super().__init__(path)
        self._lines: np.ndarray | None = None

    @property
    def columns(self) -> list[str]:
        with self.path.open("rb") as fh:
            for i, line in enumerate(fh):
                if line.strip():
                    return list(self._parse(line, i).keys())
        return []

    def _parse(self, line: bytes, lineno: int) -> dict[str, Any]:
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TaskSetError(f"{self.path}: line {lineno + 1}: not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise TaskSetError(f"{self.path}: line {lineno + 1}: a JSON {type(obj).__name__}, not an object")
        return obj

    def scan(self, columns: Sequence[str]) -> Iterator[tuple[int, list[list[Any]]]]:
        offsets, lines = array("q"), array("q")
        pos = 0
        batch: list[list[Any]] = [[] for _ in columns]
        with self.path.open("rb") as fh:
            for lineno, line in enumerate(fh):
                if line.strip():
                    obj = self._parse(line, lineno)
                    offsets.append(pos)
                    lines.append(lineno)
                    for values, c in zip(batch, columns):
                        values.append(obj.get(c, MISSING))
                    if batch and len(batch[0]) >= BATCH:
                        yield len(offsets) - len(batch[0]), batch
                        batch = [[] for _ in columns]
                pos += len(line)
        if batch and batch[0]:
            yield len(offsets) - len(batch[0]), batch
        self._offsets = np.asarray(offsets, dtype=np.int64)
        self._lines = np.asarray(lines, dtype=np.int64)

    def _read_at(self, row: int, fh: io.BufferedReader) -> dict[str, Any]:
        return self._parse(fh.readline(), int(self._lines[row]))  # type: ignore[index]

    def where(self, row: int) -> str:
        line = int(self._lines[row]) + 1 if self._lines is not None and row < len(self._lines) else row + 1
        return f"line {line}"


class _Lines:
    """The lines of a binary file as text for :mod:`csv`, tracking the byte offset read so far."""

    def __init__(self, fh: io.BufferedReader):
        self.fh = fh
        self.pos = fh.tell()

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        line = self.fh.readline()
        if not line:
            raise StopIteration
        self.pos += len(line)
        return line.decode("utf-8-sig" if self.pos == len(line) else "utf-8")


class CsvSource(_OffsetSource):
    """CSV with a header row; every value is text. One byte offset per record is kept (records may
    span lines inside quotes)."""

    kind = "csv"

    def __init__(self, path: Path):
        super().__init__(path)
        self._header: list[str] | None = None

    @property
    def columns(self) -> list[str]:
        if self._header is None:
            with self.path.open("rb") as fh:
                try:
                    self._header = next(csv.reader(_Lines(fh)), [])
                except UnicodeDecodeError as exc:
                    raise TaskSetError(f"{self.path}: not UTF-8 text ({exc})") from None
        return self._header

    def scan(self, columns: Sequence[str]) -> Iterator[tuple[int, list[list[Any]]]]:
        header = self.columns
        idx = [header.index(c) if c in header else -1 for c in columns]
        offsets = array("q")
        batch: list[list[Any]] = [[] for _ in columns]
        with self.path.open("rb") as fh:
            lines = _Lines(fh)
            reader = csv.reader(lines)
            next(reader, None)
            row = 0
            while True:
                start = lines.pos
                try:
                    rec = next(reader)
                except StopIteration:
                    break
                except (csv.Error, UnicodeDecodeError) as exc:
                    raise TaskSetError(f"{self.path}: row {row + 1}: unreadable CSV ({exc})") from None
                if not rec:
                    continue
                offsets.append(start)
                for values, i in zip(batch, idx):
                    values.append(rec[i] if 0 <= i < len(rec) else MISSING)
                row += 1
                if batch and len(batch[0]) >= BATCH:
                    yield row - len(batch[0]), batch
                    batch = [[] for _ in columns]
        if batch and batch[0]:
            yield row - len(batch[0]), batch
        self._offsets = np.asarray(offsets, dtype=np.int64)

    def _read_at(self, row: int, fh: io.BufferedReader) -> dict[str, Any]:
        return dict(zip(self.columns, next(csv.reader(_Lines(fh)))))


class ArrowSource(Source):
    """Parquet (read a row group at a time, only the groups holding the rows asked for) or the Arrow
    IPC files of a ``datasets`` directory (memory-mapped, so rows are read in place)."""

    def __init__(self, path: Path):
        super().__init__(path)
        if path.is_dir():
            self.kind = "datasets"
            self._parquet = None
            self._table = _datasets_table(path)
            self._schema = self._table.schema
            self._starts = np.zeros(1, dtype=np.int64)
        else:
            self.kind = "parquet"
            try:
                self._parquet = pq.ParquetFile(path)
            except (pa.ArrowException, OSError) as exc:
                raise TaskSetError(f"{path}: not a readable Parquet file ({exc})") from None
            self._schema = self._parquet.schema_arrow
            meta = self._parquet.metadata
            sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
            self._starts = np.cumsum([0, *sizes], dtype=np.int64)

    @property
    def columns(self) -> list[str]:
        return list(self._schema.names)

    def field_type(self, column: str) -> pa.DataType:
        """The Arrow type of a column."""
        return self._schema.field(column).type

    def scan(self, columns: Sequence[str]) -> Iterator[tuple[int, list[list[Any]]]]:
        present = [c for c in columns if c in self._schema.names]
        if self._parquet is not None:
            batches: Iterator[pa.RecordBatch] = self._parquet.iter_batches(batch_size=BATCH, columns=present)
        else:
            batches = iter(self._table.select(present).to_batches(max_chunksize=BATCH))
        row = 0
        for batch in batches:
            yield row, [batch.column(c).to_pylist() if c in present else [MISSING] * batch.num_rows for c in columns]
            row += batch.num_rows

    def fetch(self, rows: Sequence[int]) -> dict[int, dict[str, Any]]:
        wanted = np.asarray(sorted(set(rows)), dtype=np.int64)
        if self._parquet is None:
            part = self._table.take(pa.array(wanted)).to_pylist()
            return {int(r): d for r, d in zip(wanted, part)}
        out: dict[int, dict[str, Any]] = {}
        groups = np.searchsorted(self._starts, wanted, side="right") - 1
        for g in np.unique(groups):
            mine = wanted[groups == g]
            table = self._parquet.read_row_group(int(g)).take(pa.array(mine - self._starts[g]))
            out.update({int(r): d for r, d in zip(mine, table.to_pylist())})
        return out


def _datasets_table(path: Path) -> pa.Table:
    """The memory-mapped table of a ``datasets.Dataset.save_to_disk`` directory (its
    ``state.json`` lists the Arrow files in order)."""
    state = path / "state.json"
    try:
        files = [f["filename"] for f in json.loads(state.read_text())["_data_files"]]
    except FileNotFoundError:
        raise TaskSetError(f"{path}: a directory without state.json, so not a saved datasets.Dataset "
                           "(a DatasetDict? give the directory of one split, e.g. {path}/train)") from None
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise TaskSetError(f"{path}/state.json: not a datasets state file ({exc})") from None
    tables = []
    for name in files:
        mm = pa.memory_map(str(path / name))  # left open: the table's buffers point into it
        tables.append(pa.ipc.open_stream(mm).read_all())
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def open_source(path: Path) -> Source:
    """The :class:`Source` for ``path`` by its suffix (``.jsonl``/``.ndjson``, ``.csv``,
    ``.parquet``/``.pq``) or a ``datasets`` directory."""
    if path.is_dir():
        return ArrowSource(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return JsonlSource(path)
    if suffix == ".csv":
        return CsvSource(path)
    if suffix in (".parquet", ".pq"):
        return ArrowSource(path)
    raise TaskSetError(f"{path}: unknown task set format {suffix or '(no suffix)'!r}; use .jsonl, .csv, .parquet "
                       "or a directory written by datasets.Dataset.save_to_disk")
