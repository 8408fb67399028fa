"""Regrading stored trajectories: new signals and types, idempotent, no policy calls."""

from __future__ import annotations

from pathlib import Path

import pytest

import agentsynth

from conftest import cli, q, table_digest, write_spec



def test_regrade_adds_signals_once(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    spec = write_spec(tmp_path / "r.toml", f"""
        name = "r"
        store = "{store}"
        samples = 4
        [[envs]]
        id = "arithmetic"
        tasks = 15
        feedback = ["binary", "none"]
        """)
    assert cli("run", str(spec), "-q").returncode == 0
    turns = q(store, "SELECT sum(turns) FROM episodes")[0][0]
    graders = ["--grader", "rubrics:exact_match", "--grader", "env:hint", "--grader", "self_consistency"]
    r = cli("regrade", "--run", "r", *graders, "--store", str(store))
    assert r.returncode == 0, r.stderr
    assert f"rubrics:exact_match: {turns} signal(s) added" in r.stdout
    counts = dict(q(store, "SELECT name, count(*) FROM signals WHERE role = 'score' GROUP BY 1"))
    assert counts["exact"] == turns and counts["hint"] == turns and counts["self_consistency"] == 15 * 4 * 2
    labels = dict((n, (s, o, m)) for n, s, o, m in q(store, "SELECT name, source, openness, meta_level FROM signal_types"))
    assert labels["exact"] == ("reference", "open", 0) and labels["self_consistency"] == ("self", "closed", 2)
    # the hint regraded equals the hint shown live where the hint was the feedback channel
    assert q(store, """SELECT count(*) FROM signals a JOIN signals b USING (episode_id, turn, name)
                       WHERE a.role = 'feedback' AND b.role = 'score' AND a.name = 'hint' AND a.feedback <> b.feedback""") == [(0,)]
    # episode_seq (m006): 1..n in commit order, carried by every message and signal, regraded ones too
    n = 15 * 4 * 2
    assert q(store, "SELECT count(DISTINCT episode_seq), min(episode_seq), max(episode_seq) FROM episodes") == [(n, 1, n)]
    for table in ("messages", "signals"):
        assert q(store, f"""SELECT count(*) FILTER (t.episode_seq IS DISTINCT FROM e.episode_seq), count(*)
                            FROM {table} t JOIN episodes e USING (episode_id)""")[0][0] == 0
    before = table_digest(store)
    again = cli("regrade", "--run", "r", *graders, "--store", str(store))
    assert again.returncode == 0 and "0 signal(s) added" in again.stdout
    assert table_digest(store) == before


def test_self_consistency_agrees_with_the_plurality(tmp_path: Path) -> None:
    spec = agentsynth.RunSpec(name="sc", store=str(tmp_path / "s.duckdb"), samples=5,
                              envs=[agentsynth.EnvSpec(id="arithmetic", tasks=20, max_turns=1)])
    agentsynth.Runner(spec).run()
    from agentsynth.regrade import regrade

    regrade(spec.store, "sc", ["self_consistency"])
    rows = q(Path(spec.store), """SELECT e.task_id, count(*) FILTER (s.passed), count(*) FROM signals s JOIN episodes e USING (episode_id)
                                  WHERE s.name = 'self_consistency' GROUP BY 1""")
    assert len(rows) == 20 and all(0 < agree <= n for _, agree, n in rows)


def test_regrade_errors_are_clear_and_leave_the_store_alone(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    agentsynth.Runner(agentsynth.RunSpec(name="x", store=str(store), envs=[agentsynth.EnvSpec(id="arithmetic", tasks=3)])).run()
    before = table_digest(store)
    for args, msg in (
        (["--run", "nope", "--grader", "self_consistency"], "no run named 'nope'"),
        (["--run", "x", "--grader", "rubrics:nothing_here"], "has no attribute 'nothing_here'"),
        (["--run", "x", "--grader", "env:telepathy"], "has no grader 'telepathy'"),
        (["--run", "x", "--grader", "env:self"], "calls a model"),
    ):
        r = cli("regrade", *args, "--store", str(store))
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    assert table_digest(store) == before
    missing = tmp_path / "missing.duckdb"
    r = cli("regrade", "--run", "x", "--grader", "self_consistency", "--store", str(missing))
    assert r.returncode == 2 and "no store at" in r.stderr and not missing.exists()


@pytest.mark.parametrize("order", [("a", "b"), ("b", "a")])
def test_regrade_one_grader_on_two_runs_of_one_store(tmp_path: Path, order: tuple[str, str]) -> None:
    """The signal type is stored by the first run's regrade; the second run's must still add its
    rows (it crashed with "connection has an unfinished result"), and each repeat adds none."""
    store = tmp_path / "s.duckdb"
    for name in ("a", "b"):
        spec = write_spec(tmp_path / f"{name}.toml", f"""
            name = "{name}"
            store = "{store}"
            samples = 3
            [[envs]]
            id = "arithmetic"
            tasks = 12
            feedback = ["binary"]
            """)
        assert cli("run", str(spec), "-q").returncode == 0
    for name in order:
        for attempt in range(2):
            r = cli("regrade", "--run", name, "--grader", "self_consistency", "--grader", "env:hint", "--store", str(store))
            assert r.returncode == 0, r.stderr
            added = 0 if attempt else 36
            assert f"self_consistency: {added} signal(s) added" in r.stdout, r.stdout
    rows = q(store, """SELECT r.name, count(*) FROM signals JOIN episodes USING (episode_id) JOIN runs r USING (run_id)
                       WHERE signals.name = 'self_consistency' GROUP BY 1 ORDER BY 1""")
    assert rows == [("a", 36), ("b", 36)]


def test_keep_all_accepts_every_answer_and_is_labelled_closed(tmp_path: Path) -> None:
    spec = agentsynth.RunSpec(name="ka", store=str(tmp_path / "s.duckdb"), samples=3,
                              envs=[agentsynth.EnvSpec(id="arithmetic", tasks=10, max_turns=2, feedback="binary")])
    agentsynth.Runner(spec).run()
    r = cli("regrade", "--run", "ka", "--grader", "keep_all", "--store", spec.store)
    assert r.returncode == 0, r.stderr
    store = Path(spec.store)
    turns = q(store, "SELECT sum(turns) FROM episodes")[0][0]
    assert q(store, "SELECT count(*), count(*) FILTER (passed) FROM signals WHERE name = 'keep_all'") == [(turns, turns)]
    assert q(store, "SELECT source, openness, task_relevant FROM signal_types WHERE name = 'keep_all'") == [("self", "closed", False)]
