"""Shared fixtures: temporary stores and specs, and a helper to run the CLI as a user would."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120,
        input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m agentsynth ARGS`` in a subprocess; returns the completed process."""
    e = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "agentsynth", *args], cwd=cwd or ROOT, env=e, capture_output=True,
        text=True, timeout=timeout, input=input,
    )


def q(store: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Run a query on a store file through a read-only DuckDB connection; all rows."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def write_spec(path: Path, body: str) -> Path:
    """Write a TOML spec (dedented) and return its path."""
    path.write_text(textwrap.dedent(body))
    return path


def table_digest(store: Path) -> str:
    """A digest of every row of the store's tables, to prove a command left it unchanged."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        h = hashlib.sha256()
        for (t,) in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall():
            for row in con.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall():
                h.update(repr(row).encode())
        return h.hexdigest()
    finally:
        con.close()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store.duckdb"


@pytest.fixture
def small_spec(tmp_path: Path, store: Path) -> Path:
    return write_spec(tmp_path / "small.toml", f"""
        name = "small"
        model = "sim"
        samples = 2
        concurrency = 8
        store = "{store}"

        [[envs]]
        id = "arithmetic"
        tasks = 10
        max_turns = 3
        feedback = ["binary", "hint"]
        """)


def assert_seeded(env_cls, difficulties, seeds, min_distinct: int) -> None:
    """Same seed, same task (prompt, id, answer, JSON-serialisable metadata), for two instances;
    at least ``min_distinct`` different prompts over ``seeds`` at each difficulty."""
    for d in difficulties:
        a, b = env_cls(difficulty=d), env_cls(difficulty=d)
        prompts = set()
        for seed in seeds:
            pa, ia = a.reset(seed=seed)
            pb, ib = b.reset(seed=seed)
            assert (pa, ia["task_id"], a.task.answer, a.task.metadata) == (pb, ib["task_id"], b.task.answer, b.task.metadata)
            json.dumps(a.task.metadata)
            prompts.add(pa)
        assert len(prompts) >= min_distinct, (d, len(prompts))


def assert_runs_and_reference_helps(tmp_path: Path, env_id: str, name: str) -> None:
    """10 tasks x 2 samples x none/binary/reference/hint/self through the real runner: every
    episode ok, and the last-turn pass rate under `reference` above the first-turn rate."""
    import agentsynth

    spec = agentsynth.RunSpec(name=name, store=str(tmp_path / "s.duckdb"), samples=2, envs=[agentsynth.EnvSpec(
        id=env_id, tasks=10, feedback=["none", "binary", "reference", "hint", "self"])])
    res = agentsynth.Runner(spec).run()
    assert res.ok == res.planned == 10 * 2 * 5 and res.errors == 0
    with agentsynth.open_store(spec.store) as s:
        assert s.sql("SELECT count(*) FROM episodes WHERE status <> 'ok'").fetchall() == [(0,)]
        first, last = s.sql("SELECT avg(passed_first::INT), avg(passed_last::INT) FROM episodes "
                            "WHERE feedback = 'reference'").fetchall()[0]
    assert last > first
