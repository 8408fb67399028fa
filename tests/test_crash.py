"""Crash safety: SIGKILL a run at random points; the store opens and a re-run completes it."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from conftest import ROOT, cli, write_spec

pytestmark = pytest.mark.timeout(300)


def test_sigkill_at_random_points_then_resume(tmp_path: Path, store: Path) -> None:
    spec = write_spec(tmp_path / "crash.toml", f"""
        name = "crash"
        samples = 4
        concurrency = 32
        store = "{store}"
        [[envs]]
        id = "arithmetic"
        tasks = 2500
        max_turns = 3
        feedback = ["binary", "hint"]
        """)
    planned = 2500 * 4 * 2
    rng = random.Random(20261121)
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    seen = []
    sessions = 0
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-m", "agentsynth", "run", str(spec), "-q"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.8, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not store.exists():  # killed before the store was created (a loaded machine imports slowly)
            seen.append(0)
            continue
        con = duckdb.connect(str(store), read_only=True)  # opens after every kill
        n, distinct = con.execute("SELECT count(*), count(DISTINCT episode_id) FROM episodes").fetchone()
        orphans = con.execute("SELECT count(*) FROM messages m ANTI JOIN episodes e USING (episode_id)").fetchone()[0]
        # on a loaded machine a kill can land before the run began (still importing): count the sessions begun
        sessions = con.execute("SELECT coalesce(max(sessions), 0) FROM runs").fetchone()[0] if con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'runs'").fetchone()[0] else 0
        con.close()
        assert n == distinct and orphans == 0
        seen.append(n)
    assert seen[-1] < planned, f"the kills came too late to interrupt anything: {seen}"
    print("episodes stored after each kill:", seen)
    r = cli("run", str(spec), "-q")
    assert r.returncode == 0, r.stderr
    con = duckdb.connect(str(store), read_only=True)
    try:
        assert con.execute("SELECT count(*), count(DISTINCT episode_id), count(*) FILTER (status = 'ok') FROM episodes").fetchone() == (planned, planned, planned)
        # every episode is whole: 2 messages a turn plus the prompt, signals for each turn
        broken = con.execute("""
            SELECT count(*) FROM episodes e
            LEFT JOIN (SELECT episode_id, count(*) n FROM messages GROUP BY 1) m USING (episode_id)
            LEFT JOIN (SELECT episode_id, count(DISTINCT turn) t FROM signals GROUP BY 1) s USING (episode_id)
            WHERE m.n IS DISTINCT FROM 2 * e.turns + 1 OR s.t IS DISTINCT FROM e.turns""").fetchone()[0]
        assert broken == 0
        assert con.execute("SELECT sessions FROM runs").fetchone()[0] == sessions + 1
    finally:
        con.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_flushes_finished_episodes_and_marks_the_run(tmp_path: Path, store: Path, sig: int) -> None:
    spec = write_spec(tmp_path / "int.toml", f"""
        name = "int"
        store = "{store}"
        [[envs]]
        id = "arithmetic"
        tasks = 20000
        max_turns = 3
        """)
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    # SIGINT as a terminal delivers it: a shell's background job (e.g. `pytest &`) starts with SIGINT ignored,
    # and a Python started that way keeps ignoring it
    proc = subprocess.Popen([sys.executable, "-m", "agentsynth", "run", str(spec), "-q"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60  # not a fixed sleep: on a loaded machine the imports alone can take 2 s
    while not store.exists():  # the run has started (its handlers are in place) once it created the store
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(1.0)  # let some episodes finish
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted; run the same command again to resume" in err, err
    con = duckdb.connect(str(store), read_only=True)
    try:
        status, = con.execute("SELECT status FROM runs").fetchone()
        n, distinct = con.execute("SELECT count(*), count(DISTINCT episode_id) FROM episodes").fetchone()
    finally:
        con.close()
    assert status == "interrupted" and 0 < n == distinct < 20000
