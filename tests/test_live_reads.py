"""Reading a store while `agentsynth run` writes it: the read commands work, see committed episodes
a second or two old, cannot write, and a reader never keeps a run from starting or finishing.

Each test runs a real `agentsynth run` subprocess against a real `agentsynth serve` (40 ms a
request, 4 in flight: ~100 episodes/s, a run of several seconds) and reads the store from other
processes while it goes, as a user would.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import agentsynth
from agentsynth.store.run_lock import live_run
from conftest import ROOT, Served, agentsynth_serve, cli, q, write_spec

pytestmark = pytest.mark.timeout(300)


def spec_for(tmp_path: Path, store: Path, url: str, *, name: str = "live", tasks: int = 150, concurrency: int = 4) -> Path:
    return write_spec(tmp_path / f"{name}.toml", f"""
        name = "{name}"
        model = "sim"
        base_url = "{url}"
        samples = 4
        concurrency = {concurrency}
        store = "{store}"

        [[envs]]
        id = "arithmetic"
        tasks = {tasks}
        max_turns = 2
        feedback = "binary"
        """)


def start_run(spec: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "agentsynth", "run", str(spec), "-q"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(pred, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def sql(store: Path, query: str) -> list[list[str]]:
    r = cli("sql", query, "--store", str(store), "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    with agentsynth_serve("--latency-ms", "40") as served:
        yield served


def test_read_commands_work_while_a_run_writes(tmp_path: Path, server: Served) -> None:
    store = tmp_path / "s.duckdb"
    run = start_run(spec_for(tmp_path, store, server.url, tasks=400, concurrency=3))
    try:
        wait_for(lambda: store.exists() and live_run(store) == run.pid, what="the run to start")
        counts, lags = [], []
        while run.poll() is None and len(counts) < 5:
            rows = sql(store, "SELECT count(*) AS n, max(finished_at) AS last FROM episodes")
            n, last = rows[0]["n"], rows[0]["last"]
            if run.poll() is not None:
                break
            counts.append(n)
            if last is not None:
                lags.append((dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.datetime.fromisoformat(last)).total_seconds())
        assert run.poll() is None, "the run ended before the readers could read during it; make it longer"
        assert len(counts) >= 3 and counts == sorted(counts) and counts[-1] > counts[0], counts
        assert max(lags) < 4.0, lags  # committed episodes are seen a second or two after they finish

        runs = cli("runs", "--store", str(store))
        assert runs.returncode == 0 and "running" in runs.stdout, runs.stderr
        audit = cli("audit", "--store", str(store), "--no-save", "--bootstrap", "50")
        assert audit.returncode == 0, audit.stderr
        out = tmp_path / "sft.jsonl"
        export = cli("export", "--store", str(store), "--run", "live", "--select", "correct", "--format", "sft",
                     "--out", str(out))
        assert export.returncode == 0, export.stderr
        exported = len(out.read_text().splitlines())
        assert run.poll() is None, "the run ended before every read command had its turn"
        refused = cli("sql", "DELETE FROM episodes", "--store", str(store))
        assert refused.returncode == 2 and "refused" in refused.stderr
        _, err = run.communicate(timeout=240)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err
    # nothing lost or doubled by the readers; the export mid-run saw part of the run and recorded it
    assert q(store, "SELECT count(*), count(DISTINCT episode_id), any_value(r.status) FROM episodes JOIN runs r USING (run_id)") \
        == [(1600, 1600, "completed")]
    assert 0 < exported and q(store, "SELECT count(*) FROM exports") == [(1,)]
    assert live_run(store) is None


def test_a_reader_holding_open_store_never_blocks_a_run(tmp_path: Path, server: Served) -> None:
    store = tmp_path / "s.duckdb"
    first = cli("run", str(spec_for(tmp_path, store, server.url, name="first", tasks=5)), "-q")
    assert first.returncode == 0, first.stderr
    # a notebook: open_store kept open, queried before, during and after a run
    with agentsynth.open_store(store) as s:
        assert s.sql("SELECT count(*) FROM episodes").fetchall() == [(20,)]
        run = start_run(spec_for(tmp_path, store, server.url, name="second", tasks=40))
        seen = []
        while run.poll() is None:
            seen.append(s.sql("SELECT count(*) FROM episodes").fetchall()[0][0])
            time.sleep(0.2)
        assert run.returncode == 0, run.stderr.read()
        assert s.sql("SELECT count(*) FROM episodes").fetchall() == [(180,)]
        assert seen == sorted(seen) and seen[0] >= 20


def test_a_reader_holding_the_file_delays_writes_and_loses_none(tmp_path: Path, server: Served) -> None:
    import duckdb

    store = tmp_path / "s.duckdb"
    run = start_run(spec_for(tmp_path, store, server.url, tasks=60))
    try:
        wait_for(lambda: store.exists() and live_run(store) == run.pid and sql(store, "SELECT count(*) AS n FROM episodes")[0]["n"] > 0,
                 what="first episodes")
        con = duckdb.connect(str(store), read_only=True)  # a script holding the file: the writer waits
        held = con.execute("SELECT count(*) FROM episodes").fetchone()[0]
        time.sleep(2.0)
        assert con.execute("SELECT count(*) FROM episodes").fetchone()[0] == held  # nothing written meanwhile
        con.close()
        _, err = run.communicate(timeout=240)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err
    assert q(store, "SELECT count(*), count(DISTINCT episode_id) FROM episodes") == [(240, 240)]


def test_a_second_run_on_a_live_store_is_refused_at_once(tmp_path: Path, server: Served) -> None:
    store = tmp_path / "s.duckdb"
    run = start_run(spec_for(tmp_path, store, server.url, tasks=60))
    try:
        wait_for(lambda: live_run(store) == run.pid, what="the run to start")
        t0 = time.monotonic()
        other = cli("run", str(spec_for(tmp_path, store, server.url, name="other", tasks=5)), "-q")
        assert other.returncode == 2 and "is being written by another run (PID" in other.stderr, other.stderr
        assert "Traceback" not in other.stderr and time.monotonic() - t0 < 30
        _, err = run.communicate(timeout=240)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err
    assert q(store, "SELECT name FROM runs") == [("live",)]


def test_a_killed_run_is_not_live_and_resumes(tmp_path: Path, server: Served) -> None:
    store = tmp_path / "s.duckdb"
    spec = spec_for(tmp_path, store, server.url, tasks=60)
    run = start_run(spec)
    wait_for(lambda: store.exists() and live_run(store) == run.pid and sql(store, "SELECT count(*) AS n FROM episodes")[0]["n"] > 0,
             what="first episodes")
    run.kill()
    run.wait()
    assert live_run(store) is None
    assert q(store, "SELECT status FROM runs") == [("running",)]  # as the killed process left it
    shown = cli("runs", "--store", str(store))
    assert shown.returncode == 0 and "interrupted" in shown.stdout and "running" not in shown.stdout, shown.stdout
    again = cli("run", str(spec), "-q")
    assert again.returncode == 0, again.stderr
    assert q(store, "SELECT count(*), count(DISTINCT episode_id) FROM episodes") == [(240, 240)]
