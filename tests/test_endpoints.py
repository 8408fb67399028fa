"""Several endpoints for one model (``base_url`` a list): real ``agentsynth serve`` sim servers on
127.0.0.1, the real openai client, the real DuckDB store, the CLI as a user runs it.

- two servers: calls land on both, about evenly; the summary's per-endpoint counts are the
  servers' own; runs.base_url and evaluations.base_url hold the URLs joined by commas;
- one server killed mid-run: the run completes on the other, no episode fails, the dead one's
  breaker is open or down;
- both killed: the run ends ``failed`` with one line naming both (no credentials);
- a bad URL in a list (spec or repeated --base-url): one line, exit 2, nothing stored;
- the pool's choices (least-loaded by limit, a retry avoids the endpoint that failed, all down).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, agentsynth_serve, cli, q, write_spec

from agentsynth.credentials import stored_base_url
from agentsynth.models.base import EndpointDown
from agentsynth.models.breaker import CLOSED, DOWN
from agentsynth.models.endpoints import EndpointPool
from agentsynth.spec import EnvSpec, JudgeSpec, RunSpec

pytestmark = pytest.mark.timeout(300)

SECRET = "s3cret-query-value-0077"


def stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url.split("?")[0].removesuffix("/v1") + "/stats") as r:
        return json.loads(r.read())


def spec_text(name: str, store: Path, urls: list[str], *, tasks: int, concurrency: int = 8, extra: str = "") -> str:
    listed = ", ".join(f'"{u}"' for u in urls)
    return f"""
        name = "{name}"
        model = "sim"
        base_url = [{listed}]
        concurrency = {concurrency}
        store = "{store}"
        {extra}

        [[envs]]
        id = "arithmetic"
        tasks = {tasks}
        max_turns = 2
        feedback = "binary"
        """


def endpoint_lines(stdout: str) -> dict[str, tuple[int, str]]:
    """The summary's per-endpoint lines: URL -> (calls, state)."""
    found = re.findall(r"^endpoint (\S+): ([\d,]+) calls, .*, (up|down|silent, probing)", stdout, re.MULTILINE)
    return {url: (int(calls.replace(",", "")), state) for url, calls, state in found}


def test_calls_spread_across_two_endpoints_and_the_store_names_both(tmp_path: Path, store: Path) -> None:
    with agentsynth_serve("--latency-ms", "20") as a, agentsynth_serve("--latency-ms", "20") as b:
        urls = [a.url, f"{b.url}?api-version={SECRET}"]  # a query string is sent, never stored or printed
        spec = write_spec(tmp_path / "two.toml", spec_text("two", store, urls, tasks=120))
        r = cli("run", str(spec), "-q")
        assert r.returncode == 0, r.stderr
        sa, sb = stats(a.url), stats(b.url)
        ev = cli("eval", "--model", "sim", "--base-url", a.url, "--base-url", urls[1], "--envs", "arithmetic",
                 "--tasks", "40", "--store", str(store), "-q")
        assert ev.returncode == 0, ev.stderr
        ea, eb = stats(a.url)["requests"] - sa["requests"], stats(b.url)["requests"] - sb["requests"]
    assert q(store, "SELECT count(*) FILTER (e.status = 'ok'), count(*) FROM episodes e JOIN runs USING (run_id) "
                    "WHERE runs.name = 'two'") == [(120, 120)]
    total = sa["requests"] + sb["requests"]
    assert q(store, "SELECT sum(attempts) FROM episodes e JOIN runs USING (run_id) WHERE runs.name = 'two'") == [(total,)]
    assert 0.4 * total <= sa["requests"] <= 0.6 * total, (sa, sb)  # about evenly
    lines = endpoint_lines(r.stdout)
    assert lines == {a.url: (sa["requests"], "up"), b.url: (sb["requests"], "up")}, r.stdout
    assert q(store, "SELECT base_url FROM runs WHERE name = 'two'") == [(f"{a.url},{b.url}",)]
    assert ea > 0 and eb > 0 and ea + eb >= 40  # the evaluation spread too (its preflight call included)
    assert q(store, "SELECT DISTINCT base_url FROM evaluations") == [(f"{a.url},{b.url}",)]
    assert SECRET not in r.stdout + r.stderr + ev.stdout + ev.stderr
    assert not q(store, f"SELECT * FROM runs WHERE spec LIKE '%{SECRET}%' OR base_url LIKE '%{SECRET}%'")


def run_until(command: list[str], url: str, ok: int) -> subprocess.Popen[str]:
    """Start ``agentsynth COMMAND``; return once the server at ``url`` answered ``ok`` calls."""
    run = subprocess.Popen([sys.executable, "-m", "agentsynth", *command], cwd=ROOT, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while stats(url)["ok"] < ok:
        assert run.poll() is None, run.communicate()
        time.sleep(0.01)
    return run


def test_one_endpoint_killed_mid_run_the_other_finishes_it(tmp_path: Path, store: Path) -> None:
    planned = 300
    with agentsynth_serve("--latency-ms", "30") as a, agentsynth_serve("--latency-ms", "30") as b:
        spec = write_spec(tmp_path / "one.toml", spec_text("one-dies", store, [a.url, b.url], tasks=planned,
                                                           extra="unreachable_s = 2\ntimeout_s = 2"))
        run = run_until(["run", str(spec)], a.url, 40)
        a.proc.kill()
        a.proc.wait()
        out, err = run.communicate(timeout=180)
        served_b = stats(b.url)
    assert run.returncode == 0, (out, err)
    assert q(store, "SELECT count(*), count(*) FILTER (status = 'ok') FROM episodes") == [(planned, planned)]
    assert q(store, "SELECT status, sessions FROM runs") == [("completed", 1)]
    lines = endpoint_lines(out)
    assert lines[a.url][1] in ("down", "silent, probing") and lines[b.url] == (served_b["requests"], "up"), out
    assert lines[a.url][0] >= 40
    assert "stopped answering 1x" in next(x for x in out.splitlines() if x.startswith(f"endpoint {a.url}:"))
    assert "Traceback" not in err and "error:" not in err


def test_every_endpoint_down_ends_the_run_failed_with_one_line_naming_them(tmp_path: Path, store: Path) -> None:
    planned = 400
    with agentsynth_serve("--latency-ms", "40") as a, agentsynth_serve("--latency-ms", "40") as b:
        urls = [f"{a.url}?key={SECRET}", b.url]
        spec = write_spec(tmp_path / "both.toml", spec_text("both-die", store, urls, tasks=planned,
                                                            extra="unreachable_s = 2\ntimeout_s = 2"))
        run = run_until(["run", str(spec), "-q"], a.url, 30)
        for s in (a, b):
            s.proc.kill()
            s.proc.wait()
        out, err = run.communicate(timeout=180)
    assert run.returncode == 1, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: run both-die failed: all 2 endpoints ({a.url}, {b.url}) unreachable for 2s ("), err
    assert "run the same command again to resume" in lines[0] and SECRET not in out + err
    rows = q(store, "SELECT count(*), count(*) FILTER (status <> 'ok') FROM episodes")[0]
    assert 30 <= rows[0] < planned and rows[1] == 0  # no error rows: the rest is left for a re-run
    assert q(store, "SELECT status, base_url FROM runs") == [("failed", f"{a.url},{b.url}")]
    assert {state for _, state in endpoint_lines(out).values()} == {"down"}


@pytest.mark.parametrize("urls, says", [
    (["http://127.0.0.1:9/v1", "http://bob:hunter2pass@127.0.0.1:8/v1"], "item 2 of 2: credentials in a URL"),
    (["http://127.0.0.1:9/v1", "127.0.0.1:8/v1"], "item 2 of 2: not an http:// or https:// URL"),
    (["http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1?key=x"], "item 2 of 2: the same endpoint as item 1"),
    (["http://127.0.0.1:9/v1,http://127.0.0.1:8/v1"], "several URLs in one string"),
])
def test_a_bad_url_in_a_list_is_one_line_exit_2(tmp_path: Path, store: Path, urls: list[str], says: str) -> None:
    spec = write_spec(tmp_path / "bad.toml", spec_text("bad", store, urls, tasks=2))
    flags = [x for u in urls for x in ("--base-url", u)]
    plain = write_spec(tmp_path / "plain.toml", f'name = "bad"\nstore = "{store}"\n[[envs]]\nid = "arithmetic"\n')
    for args in (["run", str(spec)], ["run", str(plain), *flags],
                 ["eval", "--model", "sim", *flags, "--envs", "arithmetic", "--store", str(store)]):
        r = cli(*args)
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and r.stderr.startswith("error: "), (args, r.stderr)
        assert "base_url" in r.stderr and says in r.stderr and "hunter2pass" not in r.stderr, r.stderr
    assert not store.exists()


def test_one_url_as_a_list_is_the_same_run_and_a_judge_list_is_stored_without_credentials() -> None:
    env = [EnvSpec(id="arithmetic")]
    one, listed = RunSpec(name="x", base_url="http://h:1/v1", envs=env), RunSpec(name="x", base_url=["http://h:1/v1"], envs=env)
    assert listed.base_url == "http://h:1/v1" and listed.spec_hash() == one.spec_hash()
    two = RunSpec(name="x", base_url=["http://h:1/v1?key=abcdef", "http://h:2/v1"], envs=env)
    assert two.spec_hash() == one.spec_hash()  # the policy's endpoints may change between resumes (one more GPU)
    two = two.model_copy(update={"judge": JudgeSpec(base_url=["http://j:1/v1?key=abcdef", "http://j:2/v1"])})
    assert not two.judge_is_policy()
    assert two.content()["judge"]["base_url"] == ["http://j:1/v1", "http://j:2/v1"]
    assert stored_base_url(two.base_url) == "http://h:1/v1,http://h:2/v1"
    assert stored_base_url("http://u:p@h:1/v1?key=abcdef") == "http://h:1/v1" and stored_base_url(None) is None


def test_the_pool_spreads_by_limit_avoids_the_endpoint_that_failed_and_names_all_when_down() -> None:
    async def scenario() -> None:
        async def silent(index: int) -> bool:
            return False

        pool = EndpointPool(["http://a/v1", "http://b/v1"], silent, concurrency=12, unreachable_s=0.3, trip_s=0.0,
                            probe_every_s=0.01)
        a, b = pool.endpoints
        slots = [await pool.acquire() for _ in range(6)]  # equal limits: in turn
        assert [s.endpoint.index for s in slots] == [0, 1, 0, 1, 0, 1]
        for s in slots:
            pool.finish(s, answered=True)
        a.limiter.limit = 4  # a was throttling: its limit was cut; calls spread in proportion to the limits
        slots = [await pool.acquire() for _ in range(12)]
        assert (a.limiter.in_flight, b.limiter.in_flight, pool.in_flight, pool.limit) == (3, 9, 12, 12)
        waiting = asyncio.ensure_future(pool.acquire())  # the cap: the 13th waits for a slot
        await asyncio.sleep(0)
        assert not waiting.done()
        pool.finish(slots[0], answered=True)
        await waiting
        for s in [*slots[1:], waiting.result()]:
            pool.finish(s, answered=True)
        assert pool.in_flight == 0 and (a.calls, b.calls) == (3 + 3 + (waiting.result().endpoint is a),
                                                                3 + 9 + (waiting.result().endpoint is b))
        assert (await pool.acquire(avoid=a)).endpoint is b and (await pool.acquire(avoid=b)).endpoint is a
        # a retry avoids the endpoint that failed; a silent one trips and is skipped, then all are down
        for _ in range(3):
            pool.finish(await pool.acquire(avoid=b), answered=False, detail="APIConnectionError: Connection error.")
        assert a.breaker.state != CLOSED and pool.state == CLOSED
        assert [(await pool.acquire()).endpoint for _ in range(4)] == [b] * 4
        for _ in range(3):
            pool.finish(await pool.acquire(), answered=False, detail="APIConnectionError: Connection error.")
        with pytest.raises(EndpointDown) as down:
            await asyncio.wait_for(pool.acquire(), 5)
        assert pool.state == DOWN and a.breaker.state == b.breaker.state == DOWN
        assert str(down.value) == ("all 2 endpoints (http://a/v1, http://b/v1) unreachable for 0.3s "
                                   "(APIConnectionError: Connection error.)")
        stats = pool.stats()
        assert [e.breaker for e in stats.endpoints] == ["down", "down"] and stats.breaker == "down"
        assert [e.calls for e in stats.endpoints] == [a.calls, b.calls] and a.calls + b.calls == 19 + 2 + 3 + 4 + 3
        await pool.aclose()

    asyncio.run(scenario())
