"""A task set opened: its rows checked against the column mapping, split by content hash into a
train part and a held-out part, each part ordered by a seeded permutation, rows fetched on demand.

**The split.** A row's *content* is the text of its prompt column (and of any other column its
prompt template reads), case-folded with whitespace collapsed. A row is held out when a hash of its
content falls below the declared share. The split depends on nothing else (not the row's position,
the file, its format or the other rows), so reordering or appending rows never moves a row across
it, the same question in two files lands on the same side, and two rows with the same content
always share a side: duplicates cannot leak. They are counted (:attr:`TaskTable.duplicates`).

**Seeds to rows.** Each part is ordered by a second hash of the content, salted with
``shuffle_seed`` (a seeded permutation that also does not depend on row order); task seed ``s`` of
a synthesis run is the ``s``-th train row, and eval seed ``EVAL_SEED_START + k`` the ``k``-th
held-out row. Only two int64 arrays of row indexes stay in memory.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .source import MISSING, Source, TaskSetError, open_source

BLOCK = 256
"""Rows fetched together (consecutive seeds of one part), and kept in a small cache."""
CACHED_BLOCKS = 16


def content_key(values: Sequence[Any]) -> bytes:
    """The comparison form of a row's content: each value's text, case-folded, whitespace collapsed."""
    return "\x1f".join(" ".join(str(v).casefold().split()) for v in values).encode()


def content_hash(key: bytes) -> bytes:
    """16 bytes of a content key's hash: the first 8 place it in the split, the last 8 identify it."""
    return hashlib.blake2b(key, digest_size=16, person=b"as-tasks").digest()


def split_hash(key: bytes) -> float:
    """Where a content key falls in [0, 1): held out when below the held-out share."""
    return int.from_bytes(content_hash(key)[:8], "big") / 2.0**64


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, vectorized: a bijection of uint64 that scrambles every bit."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def order_keys(ids: np.ndarray, shuffle_seed: int) -> np.ndarray:
    """The seeded order of content ids (uint64): sorting by it is a permutation that depends on the
    content and ``shuffle_seed`` only."""
    seed = _mix(np.asarray([shuffle_seed & (2**64 - 1)], dtype=np.uint64))[0]
    with np.errstate(over="ignore"):
        return _mix(ids ^ seed)


BatchCheck = Callable[[list[list[Any]]], tuple[int, str] | None]
"""``check(columns) -> (offset in the batch, error text) or None``: a column mapping's check of a
batch of rows (one list of values per column: the content columns, then the others)."""


@dataclass(frozen=True)
class TableKey:
    """What decides an opened task set (its cache key)."""

    path: Path
    stamp: tuple[int, int]
    columns: tuple[str, ...]
    content: tuple[str, ...]
    held_out: float
    shuffle_seed: int


class TaskTable:
    """An opened task set shared by every environment instance built on it (thread-safe)."""

    def __init__(self, source: Source, key: TableKey, check: BatchCheck, label: str):
        self.source = source
        self.key = key
        ncontent = len(key.content)
        digests: list[bytes] = []  # 16 bytes a row: the only per-row state kept while scanning
        for start, cols in source.scan([*key.content, *key.columns]):
            problem = check(cols)
            if problem:
                raise TaskSetError(f"{label}: {source.where(start + problem[0])}: {problem[1]}")
            content = cols[:ncontent]
            keys = map(content_key, zip(*content)) if ncontent > 1 else (
                " ".join((v if type(v) is str else str(v)).casefold().split()).encode() for v in content[0])  # content_key, inlined
            digests.append(b"".join(map(content_hash, keys)))
        pa.default_memory_pool().release_unused()  # the scan's decoded pages: hand them back
        hashes = np.frombuffer(b"".join(digests), dtype=">u8").astype(np.uint64).reshape(-1, 2)
        del digests
        if not len(hashes):
            raise TaskSetError(f"{label}: no rows")
        self.rows = len(hashes)
        held_mask = hashes[:, 0] < np.uint64(min(int(key.held_out * 2.0**64), 2**64 - 1))
        ids = np.ascontiguousarray(hashes[:, 1])
        del hashes
        order = order_keys(ids, key.shuffle_seed)
        index = np.arange(self.rows, dtype=np.int64)
        self.parts: dict[str, np.ndarray] = {}
        for part, mask in (("train", ~held_mask), ("held_out", held_mask)):
            mine = index[mask]
            self.parts[part] = mine[np.lexsort((mine, order[mask]))]
        ids.sort()
        self.duplicates = int(np.count_nonzero(ids[1:] == ids[:-1]))
        """Rows whose content repeats an earlier row's (always on the same side of the split)."""
        self._lock = threading.Lock()
        self._blocks: OrderedDict[tuple[str, int], dict[int, dict[str, Any]]] = OrderedDict()

    def size(self, part: str) -> int:
        """Rows in ``part`` (``train`` or ``held_out``)."""
        return len(self.parts[part])

    def row(self, part: str, position: int) -> tuple[int, dict[str, Any]]:
        """The row at ``position`` of ``part``'s order: its index and its values (fetched in
        blocks of :data:`BLOCK` consecutive positions, a few blocks cached)."""
        order = self.parts[part]
        block = position // BLOCK
        with self._lock:
            got = self._blocks.get((part, block))
            if got is None:
                got = self.source.fetch(order[block * BLOCK:(block + 1) * BLOCK].tolist())
                self._blocks[(part, block)] = got
                while len(self._blocks) > CACHED_BLOCKS:
                    self._blocks.popitem(last=False)
            else:
                self._blocks.move_to_end((part, block))
        index = int(order[position])
        return index, got[index]


_tables: dict[TableKey, TaskTable] = {}
_tables_lock = threading.Lock()


def open_table(path: str | Path, *, columns: Sequence[str], content: Sequence[str], held_out: float,
               shuffle_seed: int, check: BatchCheck, check_columns: Callable[[list[str]], str | None]) -> TaskTable:
    """The :class:`TaskTable` of ``path`` (relative: from the working directory), opened once per
    process for each (file version, mapping). ``check_columns(file_columns)`` may refuse the
    mapping before any row is read; ``check`` is run on every batch of rows."""
    p = Path(path)
    full = p.resolve()
    try:
        st = os.stat(full)
    except FileNotFoundError:
        where = "" if p.is_absolute() else f" (a relative path is read from the working directory, {Path.cwd()})"
        raise TaskSetError(f"no task set file {p}{where}") from None
    stamp = (st.st_mtime_ns, st.st_size)
    if full.is_dir():
        state = full / "state.json"
        stamp = (state.stat().st_mtime_ns, state.stat().st_size) if state.exists() else stamp
    key = TableKey(full, stamp, tuple(columns), tuple(content), float(held_out), int(shuffle_seed))
    with _tables_lock:
        table = _tables.get(key)
        if table is None:
            source = open_source(full)
            problem = check_columns(source.columns)
            if problem:
                raise TaskSetError(f"{p}: {source.where(0)}: {problem}")
            if len(_tables) >= 8:  # an earlier version of a changed file, or another mapping
                _tables.pop(next(iter(_tables)))
            table = _tables[key] = TaskTable(source, key, check, str(p))
        return table


__all__ = ["BLOCK", "MISSING", "TableKey", "TaskTable", "content_key", "open_table", "split_hash"]
