"""Runs in process and through the CLI: counts, resume, refusal, rows per turn, bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import agentsynth
from agentsynth.spec import load_spec, planned_count

from conftest import cli, q, table_digest, write_spec



def test_run_stores_exactly_the_plan_with_messages_and_signals_per_turn(small_spec: Path, store: Path) -> None:
    result = agentsynth.run(small_spec)
    assert result.status == "completed" and result.ok == result.planned == 10 * 2 * 2
    assert q(store, "SELECT count(*), count(DISTINCT episode_id) FROM episodes") == [(40, 40)]
    # one assistant message and one truth signal per turn; the prompt first
    bad = q(store, """
        SELECT e.episode_id FROM episodes e
        LEFT JOIN (SELECT episode_id, count(*) n FROM messages WHERE role = 'assistant' GROUP BY 1) m USING (episode_id)
        LEFT JOIN (SELECT episode_id, count(*) n FROM signals WHERE role = 'truth' GROUP BY 1) s USING (episode_id)
        WHERE m.n IS DISTINCT FROM e.turns OR s.n IS DISTINCT FROM e.turns""")
    assert bad == []
    assert q(store, "SELECT DISTINCT role, turn FROM messages WHERE position = 0") == [("user", 0)]
    assert q(store, "SELECT count(*) FROM tasks") == [(10,)]
    assert q(store, "SELECT count(*) FROM episodes e LEFT JOIN tasks t USING (task_id) WHERE t.prompt IS NULL") == [(0,)]
    labels = dict((n, (s, o, m, r)) for n, s, o, m, r in q(store, "SELECT name, source, openness, meta_level, task_relevant FROM signal_types"))
    assert labels["correct"] == ("verifier", "open", 2, True)
    assert labels["hint"] == ("verifier", "open", 1, True)
    assert labels["format"] == ("rubric", "open", 0, False)
    # feedback channels differ in what they buy: hint beats binary on the last turn
    rates = dict(q(store, "SELECT feedback, avg(passed_last::INT) FROM episodes GROUP BY 1"))
    assert set(rates) == {"binary", "hint"}


def test_same_spec_resumes_without_duplicates_and_changed_spec_is_refused(small_spec: Path, store: Path) -> None:
    first = agentsynth.run(small_spec)
    again = agentsynth.run(small_spec)
    assert (again.ran, again.skipped, again.ok) == (0, first.planned, first.planned)
    assert q(store, "SELECT sessions FROM runs") == [(2,)]
    before = table_digest(store)
    spec = load_spec(small_spec, samples=3)
    with pytest.raises(agentsynth.StoreError, match="already stored with a different spec; pass --restart"):
        agentsynth.Runner(spec).run()
    assert table_digest(store) == before
    restarted = agentsynth.Runner(spec, restart=True).run()
    assert restarted.ok == planned_count(spec) == 60
    assert q(store, "SELECT count(*) FROM episodes") == [(60,)]


def test_runs_are_deterministic_given_the_spec(tmp_path: Path, small_spec: Path) -> None:
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    for s in (a, b):
        agentsynth.Runner(load_spec(small_spec, store=str(s))).run()
    sql = "SELECT episode_id, position, content FROM messages ORDER BY 1, 2"
    assert q(a, sql) == q(b, sql)


def test_programmatic_spec_and_relations(tmp_path: Path) -> None:
    spec = agentsynth.RunSpec(name="api", store=str(tmp_path / "s.duckdb"), samples=1,
                              envs=[agentsynth.EnvSpec(id="arithmetic", tasks=5, feedback="reference")])
    res = agentsynth.Runner(spec).run()
    assert res.ok == 5
    with agentsynth.open_store(spec.store) as s:
        rel = s.sql("SELECT feedback, count(*) AS n FROM episodes GROUP BY 1")
        assert rel.fetchall() == [("reference", 5)]
        assert s.table("episodes").filter("status = 'ok'").count("*").fetchall() == [(5,)]
        assert s.sql("SELECT * FROM episodes").to_arrow_table().num_rows == 5


PLUGIN = '''
from agentsynth import Task, TextEnv


class Echo(TextEnv):
    """Say the word back."""

    name = "echo"
    domain = "echo"

    def generate(self, rng):
        word = ["apple", "river", "stone"][int(rng.integers(0, 3))]
        return self.make_task(f"Repeat this word exactly: {word}", word)

    def verify(self, task, answer):
        return task.answer in answer
'''


def test_new_environment_by_module_path_and_file_path(tmp_path: Path) -> None:
    (tmp_path / "echo_env.py").write_text(PLUGIN)
    store = tmp_path / "s.duckdb"
    for i, ref in enumerate(("echo_env:Echo", str(tmp_path / "echo_env.py") + ":Echo")):
        spec = write_spec(tmp_path / f"echo{i}.toml", f"""
            name = "echo{i}"
            store = "{store}"
            [[envs]]
            id = "{ref}"
            tasks = 4
            max_turns = 1
            """)
        r = cli("run", str(spec), "-q", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    assert q(store, "SELECT env_id, domain, count(*) FROM episodes GROUP BY ALL ORDER BY ALL") == [("echo", "echo", 8)]


def test_third_party_package_registers_through_the_entry_point_group(tmp_path: Path) -> None:
    pkg = tmp_path / "site"
    (pkg / "echoplugin").mkdir(parents=True)
    (pkg / "echoplugin" / "__init__.py").write_text(PLUGIN)
    dist = pkg / "echoplugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: echoplugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[agentsynth.envs]\necho = echoplugin:Echo\n")
    env = {"PYTHONPATH": str(pkg)}
    r = cli("envs", "--format", "json", env=env)
    listed = {e["name"]: e for e in json.loads(r.stdout)}
    assert r.returncode == 0 and listed["echo"]["gymnasium_id"] == "agentsynth/echo-v0", r.stderr
    assert listed["echo"]["channels"] == ["none", "binary", "reference", "rubric", "judge", "self"]
    code = "import gymnasium as gym, agentsynth; e = gym.make('agentsynth/echo-v0').unwrapped; print(e.reset(seed=1)[0])"
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, **env}, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("Repeat this word exactly:"), out.stderr


# ---- bad input: a clear message, a non-zero exit, the store intact ----------------------------

@pytest.fixture
def filled(small_spec: Path, store: Path) -> str:
    agentsynth.run(small_spec)
    return table_digest(store)


def test_malformed_toml(tmp_path: Path, store: Path, filled: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(f'name = "x"\nstore = "{store}"\n[[envs]\nid = "arithmetic"\n')
    r = cli("run", str(bad))
    assert r.returncode == 2 and "malformed TOML" in r.stderr and "Traceback" not in r.stderr
    assert table_digest(store) == filled


@pytest.mark.parametrize("body, message", [
    ('name = "x"\n[[envs]]\nid = "arithmetic"\ntasks = 0\n', "envs.0.tasks: Input should be greater than 0"),
    ('name = "x"\n[[envs]]\nid = "arithmetic"\nbogus = 1\n', "envs.0.bogus: Extra inputs are not permitted"),
    ('name = "x"\nenvs = []\n', "envs: List should have at least 1 item"),
    ('name = "bad name!"\n[[envs]]\nid = "arithmetic"\n', "name: String should match pattern"),
    ('name = "x"\napi_key_env = "sk-live-123"\n[[envs]]\nid = "arithmetic"\n', "never put the key itself in a spec"),
])
def test_invalid_spec_fields(tmp_path: Path, store: Path, filled: str, body: str, message: str) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(body + '\n')
    r = cli("run", str(spec), "--store", str(store))
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert table_digest(store) == filled


def test_unknown_environment(tmp_path: Path, store: Path, filled: str) -> None:
    spec = write_spec(tmp_path / "s.toml", f'name = "x"\nstore = "{store}"\n[[envs]]\nid = "arithmetc"\n')
    r = cli("run", str(spec))
    assert r.returncode == 2 and "unknown environment 'arithmetc' (did you mean 'arithmetic'?); registered: algebra, arithmetic, code" in r.stderr
    assert table_digest(store) == filled


BROKEN = '''
from agentsynth import SignalType, Signal, Grader, TextEnv
from envs.arithmetic import ArithmeticEnv


class StepRaises(ArithmeticEnv):
    name = "step_raises"

    def step(self, action):
        if self.np_random.random() < 0.5:
            raise ZeroDivisionError("boom in step")
        return super().step(action)


class BadGrader(Grader):
    signal_type = SignalType("bad", "rubric", "open", 3, True)

    def grade(self, ctx):
        return {}["missing"]


class GraderRaises(ArithmeticEnv):
    name = "grader_raises"

    def scores(self):
        return [BadGrader()]
'''


@pytest.mark.parametrize("cls, needle", [
    ("StepRaises", "environment step_raises raised in step: ZeroDivisionError: boom in step at "),
    ("GraderRaises", "grader 'bad' raised KeyError: 'missing'"),
])
def test_environment_or_grader_that_raises(tmp_path: Path, store: Path, filled: str, cls: str, needle: str) -> None:
    (tmp_path / "broken.py").write_text(BROKEN)
    spec = write_spec(tmp_path / "s.toml", f"""
        name = "broken-{cls}"
        store = "{store}"
        [[envs]]
        id = "broken:{cls}"
        tasks = 10
        """)
    r = cli("run", str(spec), "-q", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "episode(s) failed" in r.stderr and "Traceback" not in r.stderr
    errors = q(store, "SELECT e.status, e.error FROM episodes e JOIN runs r USING (run_id) WHERE r.name = ?", [f"broken-{cls}"])
    assert errors and all(s == "error" for s, e in errors if e) and any(needle in (e or "") for _, e in errors), errors
    # what was stored before is untouched
    assert q(store, "SELECT count(*) FROM episodes e JOIN runs r USING (run_id) WHERE r.name = 'small'") == [(40,)]


def test_fail_fast_stops_a_run_that_cannot_succeed(tmp_path: Path, store: Path) -> None:
    (tmp_path / "broken.py").write_text(BROKEN)
    spec = write_spec(tmp_path / "s.toml", f"""
        name = "hopeless"
        store = "{store}"
        concurrency = 4
        [[envs]]
        id = "broken:GraderRaises"
        tasks = 500
        """)
    r = cli("run", str(spec), "-q", cwd=tmp_path)
    assert r.returncode == 1 and "hopeless failed" in r.stderr
    (n,) = q(store, "SELECT count(*) FROM episodes")[0]
    assert 25 <= n < 100


def test_spec_hash_ignores_defaults_and_runtime_fields() -> None:
    base = agentsynth.RunSpec(name="h", envs=[agentsynth.EnvSpec(id="arithmetic")])
    explicit = agentsynth.RunSpec(name="h", samples=1, temperature=1.0, concurrency=99, store="elsewhere.duckdb",
                                  envs=[agentsynth.EnvSpec(id="arithmetic", tasks=20, max_turns=3)])
    assert base.spec_hash() == explicit.spec_hash()
    assert base.spec_hash() != agentsynth.RunSpec(name="h", samples=2, envs=[agentsynth.EnvSpec(id="arithmetic")]).spec_hash()
