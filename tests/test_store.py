"""The store: versioned schema, read-only SQL, a clear message when another process holds it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import agentsynth
from agentsynth.store import FileAccessRefused, ReadOnlyViolation, check_read_only, migrations
from agentsynth.store.connection import StoreError, connect

from conftest import cli, table_digest


@pytest.fixture
def filled(small_spec: Path, store: Path) -> Path:
    agentsynth.run(small_spec)
    return store


WRITES = [
    "DELETE FROM episodes",
    "DROP TABLE episodes",
    "INSERT INTO runs SELECT * FROM runs",
    "UPDATE episodes SET reward = 0",
    "CREATE TABLE x AS SELECT 1",
    "ATTACH '{tmp}/other.duckdb' AS other",
    "COPY (SELECT * FROM episodes) TO '{tmp}/leak.csv'",
    "COPY episodes TO '{tmp}/leak2.parquet'",
    "PRAGMA threads = 1",
    "SET threads = 1",
    "RESET threads",
    "SELECT 1; DELETE FROM episodes",
    "EXPLAIN ANALYZE DELETE FROM episodes",
    "CHECKPOINT",
    "INSTALL httpfs",
    "LOAD json",
    "EXPORT DATABASE '{tmp}/dump'",
    "CALL pragma_enable_profiling()",
]


@pytest.mark.parametrize("statement", WRITES)
def test_sql_refuses_anything_that_writes(filled: Path, tmp_path: Path, statement: str) -> None:
    before = table_digest(filled)
    r = cli("sql", statement.format(tmp=tmp_path), "--store", str(filled))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.startswith("error: refused:") and "only reads" in r.stderr and "Traceback" not in r.stderr
    assert table_digest(filled) == before
    assert not any(p.name in ("other.duckdb", "leak.csv", "leak2.parquet", "dump") for p in tmp_path.iterdir())


@pytest.mark.parametrize("statement", [
    "SELECT domain, avg(reward) FROM episodes GROUP BY 1",
    "DESCRIBE episodes",
    "SHOW TABLES",
    "SUMMARIZE signals",
    "PRAGMA table_info('episodes')",
    "PRAGMA show_tables",
    "EXPLAIN SELECT * FROM episodes",
    "WITH t AS (SELECT * FROM signals) SELECT count(*) FROM t",
])
def test_sql_allows_reads(filled: Path, statement: str) -> None:
    check_read_only(statement)
    r = cli("sql", statement, "--store", str(filled))
    assert r.returncode == 0, r.stderr


def test_sql_formats(filled: Path, tmp_path: Path) -> None:
    query = "SELECT feedback, count(*) AS n FROM episodes GROUP BY 1 ORDER BY 1"
    table = cli("sql", query, "--store", str(filled))
    assert "binary" in table.stdout and "2 rows" in table.stdout
    csv_out = cli("sql", query, "--store", str(filled), "--format", "csv")
    assert csv_out.stdout.splitlines() == ["feedback,n", "binary,20", "hint,20"]
    js = json.loads(cli("sql", query, "--store", str(filled), "--format", "json").stdout)
    assert js == [{"feedback": "binary", "n": 20}, {"feedback": "hint", "n": 20}]
    out = tmp_path / "x.parquet"
    assert cli("sql", query, "--store", str(filled), "--format", "parquet").returncode == 2
    assert cli("sql", query, "--store", str(filled), "--format", "parquet", "--out", str(out)).returncode == 0
    assert duckdb.sql(f"SELECT * FROM '{out}' ORDER BY 1").fetchall() == [("binary", 20), ("hint", 20)]
    bad = cli("sql", "SELECT nope FROM episodes", "--store", str(filled))
    assert bad.returncode == 2 and 'column "nope"' in bad.stderr.lower() or "nope" in bad.stderr


def test_runs_and_missing_store(filled: Path, tmp_path: Path) -> None:
    r = cli("runs", "--store", str(filled))
    assert r.returncode == 0 and "small" in r.stdout and "completed" in r.stdout
    missing = cli("sql", "SELECT 1", "--store", str(tmp_path / "nope.duckdb"))
    assert missing.returncode == 2 and "no store at" in missing.stderr


def test_a_store_held_by_another_process_gives_a_clear_message(filled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTSYNTH_LOCK_WAIT_S", "0.5")  # opens wait this long for the holder, then say who it is
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys, time; c = duckdb.connect({str(filled)!r}); print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        r = cli("sql", "SELECT count(*) FROM episodes", "--store", str(filled), env={"AGENTSYNTH_LOCK_WAIT_S": "0.5"})
        assert r.returncode == 2 and "is in use by another process (PID" in r.stderr and "Traceback" not in r.stderr
        with pytest.raises(StoreError, match=r"in use by another process \(PID"):
            agentsynth.open_store(filled)
    finally:
        holder.stdin.close()
        holder.wait()
    assert cli("sql", "SELECT 1", "--store", str(filled)).returncode == 0


def test_migrations_apply_once_and_a_newer_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    con = connect(path, read_only=False)
    assert migrations.applied(con) == migrations.known()
    con.close()
    con = connect(path, read_only=False)  # reopening applies nothing twice
    assert con.execute("SELECT count(*) FROM _migrations").fetchone()[0] == len(migrations.known())
    con.execute("INSERT INTO _migrations VALUES ('m999_from_the_future', 999, now()::TIMESTAMP)")
    con.close()
    with pytest.raises(StoreError, match="written by a newer agentsynth"):
        agentsynth.open_store(path)
    foreign = tmp_path / "foreign.duckdb"
    duckdb.connect(str(foreign)).execute("CREATE TABLE t AS SELECT 1").close()
    with pytest.raises(StoreError, match="not an agentsynth store"):
        agentsynth.open_store(foreign)


def test_a_store_from_before_m002_upgrades_to_the_schema_a_new_store_gets(tmp_path: Path) -> None:
    """m002 adds ``runs.kind`` in two statements (DuckDB 1.x refuses a NOT NULL in ADD COLUMN): a
    store written before it gets the same table a new store gets, its old run marked 'synthesis'."""
    old = tmp_path / "old.duckdb"
    con = duckdb.connect(str(old))
    con.execute("CREATE TABLE _migrations (name VARCHAR PRIMARY KEY, applied_order INTEGER, applied_at TIMESTAMP)")
    migrations.MIGRATIONS[0](con)
    con.execute("INSERT INTO _migrations VALUES (?, 0, now()::TIMESTAMP)", [migrations.MIGRATIONS[0].__name__])
    con.execute("INSERT INTO runs VALUES ('r-1', 'old', '{}', 'h', 'sim', NULL, 'completed', 1, 1, now()::TIMESTAMP, NULL, '0.1.0')")
    con.execute("INSERT INTO messages VALUES ('e-1', 0, 0, 'assistant', 'so... Answer: 42', NULL, NULL)")
    con.close()
    con = connect(old, read_only=False)
    assert migrations.applied(con) == migrations.known()
    assert con.execute("SELECT name, kind FROM runs").fetchall() == [("old", "synthesis")]
    assert con.execute("SELECT answer FROM messages").fetchall() == [("42",)]
    with pytest.raises(duckdb.ConstraintException):
        con.execute("UPDATE runs SET kind = NULL")
    ddl = "SELECT table_name, sql FROM duckdb_tables() ORDER BY 1"
    upgraded = con.execute(ddl).fetchall()
    con.close()
    con = connect(tmp_path / "new.duckdb", read_only=False)
    assert upgraded == con.execute(ddl).fetchall()
    con.close()


def test_store_api_refuses_writes_too(filled: Path) -> None:
    with agentsynth.open_store(filled) as s:
        with pytest.raises(ReadOnlyViolation):
            s.sql("DELETE FROM episodes")
        assert s.sql("SELECT count(*) FROM episodes WHERE status = ?", ["ok"]).fetchall() == [(40,)]


FILE_READS = [
    "SELECT * FROM read_csv('{secret}')",
    "SELECT * FROM read_csv_auto('{secret}')",
    "SELECT * FROM read_text('{secret}')",
    "SELECT * FROM read_blob('{secret}')",
    "SELECT * FROM read_json('{secret}')",
    "SELECT * FROM read_parquet('{secret}')",
    "SELECT * FROM sniff_csv('{secret}')",
    "SELECT * FROM glob('{dir}/*')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM glob('/root/*')",
]


@pytest.fixture
def outside_file(tmp_path: Path) -> Path:
    """A file beside the store that queries must not read by default."""
    p = tmp_path / "outside" / "private.csv"
    p.parent.mkdir()
    p.write_text("name,token\nalice,PRIVATE-TOKEN-42\n")
    return p


@pytest.mark.parametrize("statement", FILE_READS)
def test_sql_reads_no_file_but_the_store_by_default(filled: Path, outside_file: Path, statement: str) -> None:
    query = statement.format(secret=outside_file, dir=outside_file.parent)
    r = cli("sql", query, "--store", str(filled), "--format", "csv")
    assert r.returncode == 2, (r.stdout, r.stderr)
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: refused: store queries read only the store"), err
    assert "--allow-files" in err and "PRIVATE-TOKEN" not in r.stdout + r.stderr
    with agentsynth.open_store(filled) as s:  # refused when the query binds, or (lazy relations) when fetched
        with pytest.raises((FileAccessRefused, duckdb.PermissionException), match="read only the store|disabled by configuration"):
            s.sql(query).fetchall()


def test_sql_reads_files_with_allow_files(filled: Path, outside_file: Path) -> None:
    r = cli("sql", f"SELECT token FROM read_csv('{outside_file}')", "--store", str(filled), "--format", "csv", "--allow-files")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["token", "PRIVATE-TOKEN-42"]
    listing = cli("sql", f"SELECT file FROM glob('{outside_file.parent}/*')", "--store", str(filled), "--format", "csv",
                  "--allow-files")
    assert listing.stdout.split() == ["file", str(outside_file)]
    with agentsynth.open_store(filled, allow_files=True) as s:
        joined = s.sql(f"SELECT count(*) FROM episodes, read_csv('{outside_file}') WHERE status = 'ok'").fetchall()
        assert joined == [(40,)]


def test_sql_parquet_output_still_works_without_file_access(filled: Path, tmp_path: Path) -> None:
    out = tmp_path / "e.parquet"
    r = cli("sql", "SELECT episode_id FROM episodes", "--store", str(filled), "--format", "parquet", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert duckdb.sql(f"SELECT count(*) FROM '{out}'").fetchall() == [(40,)]


def test_sql_table_prints_values_as_they_are(filled: Path) -> None:
    """Stored text is data: no rich markup ([/INST] raised, [bold] was styled), no emoji codes."""
    values = ["[/INST]", "[bold]x[/bold]", "root:x:0"]
    query = "SELECT " + ", ".join(f"'{v}' AS c{i}" for i, v in enumerate(values))
    for env in ({}, {"FORCE_COLOR": "1", "COLUMNS": "200"}):
        r = cli("sql", query, "--store", str(filled), env=env)
        assert r.returncode == 0, r.stderr
        for v in values:
            assert v in r.stdout, (v, r.stdout)
        assert "\N{CROSS MARK}" not in r.stdout
