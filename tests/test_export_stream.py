"""Exports stream: an export built in many small batches and chunks of the run writes the same
file, byte for byte, and the same lineage as one built in one go; DuckDB's memory is capped while
an export runs and set back after. (Memory figures: ``benchmarks/bench_export_memory.py``.)"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import export_source_store, q, table_digest

from agentsynth.exports import ExportError, export


@pytest.fixture(scope="module")
def sim_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runs of test_export.py's store: "src" (arithmetic x binary/reference/rubric, units x
    none, tools x binary, 3 samples) and "plain", on the sim."""
    return export_source_store(tmp_path_factory.mktemp("stream") / "s.duckdb", "Be careful.")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _recorded(path: Path, export_id: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The export's ``exports`` row (without created_at) and all its ``export_items`` rows."""
    x = q(path, "SELECT * EXCLUDE (created_at) FROM exports WHERE export_id = ?", [export_id])
    return x, q(path, "SELECT * FROM export_items WHERE export_id = ? ORDER BY item, part", [export_id])


@pytest.mark.parametrize(("select", "fmt", "kw"), [
    ("correct", "sft", {}),
    ("correct", "sft", {"trajectory": "full"}),
    ("reference", "sft", {"trajectory": "reference", "min_value": 0.0}),
    ("correct", "dpo", {}),
    ("rubric", "dpo", {"min_value": 0.5}),
    ("correct", "parquet", {}),
    ("rubric", "parquet", {"min_value": 0.5, "domains": ["arithmetic", "tools"]}),
])
def test_streamed_export_writes_what_one_batch_writes(sim_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       select: str, fmt: str, kw: dict[str, Any]) -> None:
    """An export streamed in many small batches and chunks (duplicates spread across them, dpo
    tasks whole in each) writes the same file, byte for byte, and the same lineage as one built
    from a single chunk in a single batch."""
    from agentsynth.exports import staging, writing
    from agentsynth.store.connection import connect

    monkeypatch.setattr(writing, "ROW_GROUP_ROWS", 7)  # parquet: several row groups, still batch-independent
    out = tmp_path / f"out.{'parquet' if fmt == 'parquet' else 'jsonl'}"
    got = {}
    for batch_size, chunk in ((1, 10), (3, 40), (10**9, 10**9)):
        monkeypatch.setattr(staging, "CHUNK_EPISODES", chunk)
        copy = tmp_path / f"copy-{batch_size}.duckdb"
        shutil.copy(sim_store, copy)
        if batch_size == 3:  # the selection really is split: several chunks, many batches
            con = connect(copy, read_only=False, create=False)
            try:
                (run_id,), = con.execute("SELECT run_id FROM runs WHERE name = 'src'").fetchall()
                selection = staging.Selection(con, fmt, run_id, select, kw.get("min_value"), kw.get("domains"), 3)
                assert selection.chunks >= 3 and sum(1 for _ in selection.batches()) >= 5
            finally:
                con.close()
        r = export(copy, "src", select, format=fmt, out=out, batch_size=batch_size, **kw)
        got[batch_size] = (r, out.read_bytes(), _recorded(copy, r.export_id))
        out.unlink()
    (one, one_bytes, one_lineage) = got[10**9]
    assert one.rows >= 3 and one_lineage[1]
    if fmt == "sft":
        assert one.skipped_duplicates > 0  # duplicates across batches and chunks are found too
    if fmt == "parquet":
        out.write_bytes(one_bytes)
        assert pq.ParquetFile(out).num_row_groups == -(-one.rows // 7)
    for batch_size in (1, 3):
        r, data, lineage = got[batch_size]
        assert (r.export_id, r.sha256, r.rows, r.skipped_duplicates, r.skipped_tool_episodes, r.domains) == (
            one.export_id, one.sha256, one.rows, one.skipped_duplicates, one.skipped_tool_episodes, one.domains)
        assert data == one_bytes and _sha(data) == one.sha256
        assert lineage == one_lineage


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_batch_size_must_be_a_positive_integer(sim_store: Path, tmp_path: Path, batch_size: Any) -> None:
    before = table_digest(sim_store)
    with pytest.raises(ExportError, match="batch_size must be a positive integer"):
        export(sim_store, "src", "correct", format="sft", out=tmp_path / "x.jsonl", batch_size=batch_size)
    assert list(tmp_path.iterdir()) == [] and table_digest(sim_store) == before


def test_export_caps_duckdb_memory_and_sets_it_back(sim_store: Path, tmp_path: Path) -> None:
    """While it runs, an export holds DuckDB to its memory budget; afterwards a connection that
    shares the database instance finds the limit as it was (DuckDB's default, or the user's)."""
    from agentsynth.exports import staging

    copy = tmp_path / "copy.duckdb"
    shutil.copy(sim_store, copy)
    mine = duckdb.connect(str(copy))  # same file, same settings: export's connection shares this instance
    try:
        def limit() -> str:
            return mine.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]

        default = limit()
        seen = []
        original = staging.Selection.batches

        def batches(self: staging.Selection) -> Any:
            seen.append(limit())
            return original(self)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(staging.Selection, "batches", batches)  # observe the limit mid-export
            export(copy, "src", "correct", format="sft", out=tmp_path / "a.jsonl")
            assert seen == [f"{staging.DUCKDB_MEMORY_MIB:.1f} MiB"] and limit() == default
            mine.execute("SET memory_limit = '64MB'")  # a lower limit of the user's is kept, never raised
            export(copy, "src", "correct", format="dpo", out=tmp_path / "b.jsonl")
            assert seen[1] == limit() == "61.0 MiB"
    finally:
        mine.close()
