"""End to end over HTTP: CLI → `agentsynth serve`-style sim server → real openai client → store."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from agentsynth.sim.process import running_server
from agentsynth.sim.server import Faults

from conftest import agentsynth_serve, cli, q, write_spec

pytestmark = pytest.mark.timeout(300)



def stats(base_url: str) -> dict[str, int]:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats") as r:
        return json.loads(r.read())


def spec_for(tmp_path: Path, store: Path, url: str, name: str = "http", extra: str = "", tasks: int = 12,
             feedback: str = '["binary", "reference", "self"]') -> Path:
    return write_spec(tmp_path / f"{name}.toml", f"""
        name = "{name}"
        model = "sim"
        base_url = "{url}"
        samples = 3
        concurrency = 16
        store = "{store}"
        {extra}

        [[envs]]
        id = "arithmetic"
        tasks = {tasks}
        max_turns = 3
        feedback = {feedback}
        """)




def test_cli_against_agentsynth_serve_stores_the_whole_plan(tmp_path: Path, store: Path) -> None:
    with agentsynth_serve("--latency-ms", "5") as server:
        url = server.url
        r = cli("run", str(spec_for(tmp_path, store, url)), "-q")
        served = stats(url)
    assert r.returncode == 0, r.stderr
    assert "108 ok, 0 failed of 108 planned" in r.stdout and f"store: {store}" in r.stdout
    assert q(store, "SELECT count(*), count(DISTINCT episode_id), count(DISTINCT task_id) FROM episodes") == [(108, 108, 12)]
    assert q(store, "SELECT model, base_url, status FROM runs") == [("sim", url, "completed")]
    # each turn: one assistant message, a feedback message, truth/reward/feedback signals
    per_turn = q(store, """
        SELECT count(*) FILTER (WHERE m.n_assistant <> e.turns OR s.n_truth <> e.turns OR m.n <> 2 * e.turns + 1)
        FROM episodes e
        JOIN (SELECT episode_id, count(*) n, count(*) FILTER (role = 'assistant') n_assistant FROM messages GROUP BY 1) m USING (episode_id)
        JOIN (SELECT episode_id, count(*) FILTER (role = 'truth') n_truth FROM signals GROUP BY 1) s USING (episode_id)""")
    assert per_turn == [(0,)]
    # the self channel's grading calls went to the same server and their tokens are counted
    chat_calls = q(store, "SELECT sum(turns) FROM episodes")[0][0] + q(store, "SELECT count(*) FROM signals WHERE name = 'self' AND role = 'feedback'")[0][0]
    assert served["ok"] == served["requests"] == chat_calls
    assert q(store, "SELECT sum(judge_tokens) > 0 FROM episodes WHERE feedback = 'self'") == [(True,)]
    assert q(store, "SELECT DISTINCT name, openness FROM signal_types WHERE name = 'self'") == [("self", "closed")]


def test_faults_retried_until_every_episode_is_ok_or_recorded(tmp_path: Path, store: Path) -> None:
    faults = Faults(rate_429=0.15, rate_500=0.15, rate_hang=0.03, hang_s=5.0, retry_after_s=0.05, seed=7)
    with running_server(faults=faults) as url:
        spec = spec_for(tmp_path, store, url, extra="timeout_s = 0.75\nmax_retries = 12", feedback='"binary"', tasks=40)
        r = cli("run", str(spec), "-q")
        served = stats(url)
    planned = 40 * 3
    rows = q(store, "SELECT status, count(*), sum(attempts), sum(turns) FROM episodes GROUP BY 1")
    by = {s: (n, a, t) for s, n, a, t in rows}
    assert sum(n for n, _, _ in by.values()) == planned
    assert q(store, "SELECT count(*) FROM episodes WHERE status <> 'ok' AND (error IS NULL OR error = '')") == [(0,)]
    assert served["429"] > 0 and served["500"] > 0 and served["hang"] > 0
    # every HTTP attempt the server saw is accounted for in the store: retries are visible
    assert sum(a for _, a, _ in by.values()) == served["requests"]
    assert by["ok"][1] > by["ok"][2], "more attempts than turns: retries happened"
    assert r.returncode == (0 if set(by) == {"ok"} else 1), r.stderr


def test_malformed_replies_fail_episodes_without_retries_and_a_rerun_completes_them(tmp_path: Path, store: Path) -> None:
    with running_server(faults=Faults(rate_malformed=0.25, seed=3)) as url:  # retried by default: here no retries
        spec = spec_for(tmp_path, store, url, feedback='"binary"', tasks=10, extra="max_retries = 0\nepisode_retries = 0")
        r = cli("run", str(spec), "-q")
    assert r.returncode == 1 and "episode(s) failed" in r.stderr and "run again to retry" in r.stderr
    failed = q(store, "SELECT count(*), min(error) FROM episodes WHERE status = 'error'")[0]
    assert failed[0] > 0 and "malformed reply" in failed[1]
    tokens_before = q(store, "SELECT sum(prompt_tokens) FROM episodes WHERE status = 'error'")[0][0]
    with running_server() as url:  # the endpoint recovered (and moved: base_url may change)
        r = cli("run", str(spec), "-q", "--base-url", url)
    assert r.returncode == 0, r.stderr
    assert q(store, "SELECT count(*), count(DISTINCT episode_id), count(*) FILTER (status = 'ok') FROM episodes") == [(30, 30, 30)]
    retried = q(store, "SELECT count(*), min(tries), sum(prompt_tokens) FROM episodes WHERE tries > 1")[0]
    assert retried[0] == failed[0] and retried[1] == 2
    assert retried[2] >= tokens_before  # costs of the failed attempt carried over
    assert q(store, "SELECT sessions FROM runs") == [(2,)]


def _store_bytes(store: Path) -> bytes:
    data = store.read_bytes()
    wal = store.with_name(store.name + ".wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def test_no_api_key_in_store_or_output(tmp_path: Path, store: Path) -> None:
    key, wrong = "s3cret-KEY-0042-abcdef", "wrong-KEY-9999-zyxwvu"
    with running_server(api_key=key) as url:
        spec = spec_for(tmp_path, store, url, extra='api_key_env = "MY_ENDPOINT_KEY"', feedback='"binary"', tasks=5)
        ok = cli("run", str(spec), "-q", env={"MY_ENDPOINT_KEY": key})
        bad_spec = spec_for(tmp_path, store, url, name="badkey", extra='api_key_env = "MY_ENDPOINT_KEY"', feedback='"binary"', tasks=30)
        bad = cli("run", str(bad_spec), "-q", env={"MY_ENDPOINT_KEY": wrong})
    assert ok.returncode == 0, ok.stderr
    assert bad.returncode == 1 and "HTTP 401" in bad.stderr
    errors = q(store, "SELECT DISTINCT error FROM episodes WHERE status = 'error'")
    assert errors and all("[redacted]" in e for (e,) in errors), errors
    blob = _store_bytes(store)
    for secret in (key, wrong):
        assert secret.encode() not in blob
        assert secret not in ok.stdout + ok.stderr + bad.stdout + bad.stderr
    unset = cli("run", str(spec), "-q")
    assert unset.returncode == 2 and "MY_ENDPOINT_KEY (api_key_env) is not set" in unset.stderr
