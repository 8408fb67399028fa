"""Shared fixtures: temporary stores and specs, and a helper to run the CLI as a user would."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
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


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    """A running `agentsynth serve`: its base URL (``…/v1``), port and process."""

    url: str
    port: int
    proc: subprocess.Popen[str]


@contextlib.contextmanager
def agentsynth_serve(*args: str, port: int | None = None, cwd: Path | None = None) -> Iterator[Served]:
    """`agentsynth serve --port PORT ARGS` as a user starts it (on a free port unless given); ready
    when it answers /v1/models; stopped with SIGINT (killed if it does not stop) afterwards."""
    port = port or free_port()
    proc = subprocess.Popen([sys.executable, "-m", "agentsynth", "serve", "--port", str(port), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, cwd=cwd or ROOT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/models", timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, "agentsynth serve exited"
                assert time.monotonic() < deadline, "agentsynth serve did not start"
                time.sleep(0.05)
        yield Served(url, port, proc)
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """Stop a server process as a user would (SIGINT), killing it if it does not stop in 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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


def export_source_store(path: Path, system_prompt: str) -> Path:
    """A store for export tests, on the sim: run "src" (the system prompt; arithmetic x
    binary/reference/rubric, units x none, tools x binary, 3 samples) and "plain" (no system prompt)."""
    import agentsynth

    agentsynth.Runner(agentsynth.RunSpec(name="src", store=str(path), samples=3, system_prompt=system_prompt, envs=[
        agentsynth.EnvSpec(id="arithmetic", tasks=15, feedback=["binary", "reference", "rubric"]),
        agentsynth.EnvSpec(id="units", tasks=15, feedback=["none"]),
        agentsynth.EnvSpec(id="tools", tasks=5, feedback=["binary"], max_turns=4),
    ])).run()
    agentsynth.Runner(agentsynth.RunSpec(name="plain", store=str(path), samples=2, envs=[
        agentsynth.EnvSpec(id="arithmetic", tasks=5, feedback=["binary"]),
    ])).run()
    return path


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


def assert_sim_writes_many_correct_answers(env_cls, difficulties=(1, 2, 3), seeds=range(10), samples: int = 24) -> None:
    """For a domain with many correct answers: the sim, sampled repeatedly on one task, writes
    several different correct answers (distinct answer keys) on at least 80% of the tasks, the
    greedy (temperature-0) reply is always the same, and with ``variety = 0`` every correct reply
    is that one answer."""
    from agentsynth.sim import SimModel, SimParams

    skill = {env_cls.name: 0.95}  # mostly right: the question is which right answer it writes
    varied, fixed = SimModel(SimParams(skill=skill)), SimModel(SimParams(skill=skill, variety=0.0))
    for d in difficulties:
        env = env_cls(difficulty=d)
        several = 0
        for seed in seeds:
            env.reset(seed=seed)
            msgs = [{"role": "user", "content": env.task.prompt}]
            keys = {m: {env.canonical(r) for r in (m.reply(msgs, seed=s) for s in range(samples)) if env.verify(env.task, r)}
                    for m in (varied, fixed)}
            several += len(keys[varied]) > 1
            assert len(keys[fixed]) <= 1, (env.task.prompt, keys[fixed])
            assert len({varied.reply(msgs, temperature=0, seed=s) for s in range(4)}) == 1
        assert several >= 0.8 * len(seeds), (d, several)
