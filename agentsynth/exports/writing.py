"""Writing an export's output: the rows to a synced temporary file (JSONL or Parquet) and the
lineage rows (one ``exports`` row, ``export_items`` rows with each row's content hash) inside the
caller's transaction. The orchestration (temp file, transaction, rename) is
:func:`agentsynth.exports.export`'s.

Package-internal API: :func:`write_tmp`, :func:`record_lineage`, :func:`fsync_dir`.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from .formats import Row, sha256_text


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


def write_tmp(tmp: Path, fmt: str, rows: list[Row], schema: pa.Schema | None) -> str:
    """Write the rows to ``tmp`` and sync it; return the sha256 of its bytes."""
    if fmt == "parquet":
        assert schema is not None
        pq.write_table(pa.Table.from_pylist([r.data for r in rows], schema=schema), tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    else:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            for r in rows:
                f.write(r.text + "\n")
            f.flush()
            os.fsync(f.fileno())
    h = hashlib.sha256()
    with open(tmp, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def record_lineage(con: duckdb.DuckDBPyConnection, export_id: str, row: dict[str, Any], rows: list[Row]) -> bool:
    """Insert the export and its items (in the caller's transaction); False if already recorded."""
    if con.execute("SELECT 1 FROM exports WHERE export_id = ?", [export_id]).fetchone():
        return False
    con.execute(f"INSERT INTO exports ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    items: dict[str, list[Any]] = defaultdict(list)
    for i, r in enumerate(rows):
        h = sha256_text(r.text)
        for part, g in r.parts:
            for col, v in (("export_id", export_id), ("item", i), ("part", part), ("episode_id", g.episode_id),
                           ("turn", g.turn), ("task_id", g.task_id), ("domain", g.domain), ("content_hash", h)):
                items[col].append(v)
    con.register("_export_items", pa.table({
        "export_id": pa.array(items["export_id"], pa.string()), "item": pa.array(items["item"], pa.int64()),
        "part": pa.array(items["part"], pa.string()), "episode_id": pa.array(items["episode_id"], pa.string()),
        "turn": pa.array(items["turn"], pa.int32()), "task_id": pa.array(items["task_id"], pa.string()),
        "domain": pa.array(items["domain"], pa.string()), "content_hash": pa.array(items["content_hash"], pa.string()),
    }))
    try:
        con.execute("INSERT INTO export_items BY NAME SELECT * FROM _export_items")
    finally:
        con.unregister("_export_items")
    return True
