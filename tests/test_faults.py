"""The runner rides out a bad endpoint: real sim servers on 127.0.0.1 with injected, seeded faults,
the real openai-compatible client path, the real DuckDB store.

- malformed 200s (truncated JSON, an HTML page, a body without choices) are retried like a 5xx;
- the combined fault mix (30% 429, 30% 500, 5% hangs, 10% malformed) reaches the ok target;
- a server killed mid-run trips the breaker: the run ends ``failed`` with one line naming the
  endpoint (no credentials) and how to resume, stores no error row, and the same command resumes
  and completes once the server is back;
- retries are reported by cause (CLI summary, RunResult, the live status).

Counts and statuses only: how fast is the benchmark's business (benchmarks/bench_faults.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from random import Random

import pytest
from aiohttp import web

import agentsynth
from agentsynth.plan_queue import Place, Places
from agentsynth.run_report import RunStatus
from agentsynth.sim.process import running_server
from agentsynth.sim.server import Faults, create_app

from conftest import ROOT, agentsynth_serve, cli, free_port, q, write_spec

pytestmark = pytest.mark.timeout(300)

MALFORMED = [  # what proxies and overloaded servers send with a 200
    (b'{"choices": [', "application/json"),  # truncated
    (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),  # a proxy's page
    (b'{"id": "x", "object": "chat.completion"}', "application/json"),  # no choices
    (b'{"id": "x", "object": "chat.completion", "choices": []}', "application/json"),  # empty choices
]


def stats(base_url: str) -> dict[str, int]:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats") as r:
        return json.loads(r.read())



def retried(stdout: str) -> dict[str, int]:
    """The summary's retries by cause: ``retried calls: N (429: a, 5xx: b, ...)``."""
    m = re.search(r"^retried calls: ([\d,]+) \(([^)]*)\)", stdout, re.M)
    assert m, stdout
    by = {k: int(v.replace(",", "")) for k, v in (part.split(": ") for part in m[2].split(", "))}
    assert sum(by.values()) == int(m[1].replace(",", ""))
    return by


@contextlib.contextmanager
def malforming_server(rate: float, seed: int) -> Iterator[tuple[str, dict[str, int]]]:
    """The sim server (``create_app``) with a middleware that replaces a seeded ``rate`` of its chat
    replies with one of :data:`MALFORMED` in turn, on 127.0.0.1 in a thread of this process (the
    client is a CLI subprocess). Yields the base URL and the counts (requests, malformed sent)."""
    rng, counts = Random(seed), {"requests": 0, "malformed": 0}

    @web.middleware
    async def malform(request: web.Request, handler):  # type: ignore[no-untyped-def]
        resp = await handler(request)
        if request.path == "/v1/chat/completions":
            counts["requests"] += 1
            if resp.status == 200 and rng.random() < rate:
                body, ctype = MALFORMED[counts["malformed"] % len(MALFORMED)]
                counts["malformed"] += 1
                return web.Response(status=200, body=body, content_type=ctype)
        return resp

    app = create_app()
    app.middlewares.append(malform)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/v1", counts
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.run_until_complete(runner.cleanup())
        loop.close()




def spec_text(name: str, store: Path, url: str, *, tasks: int, samples: int = 1, max_turns: int = 1,
              concurrency: int = 16, extra: str = "") -> str:
    return f"""
        name = "{name}"
        model = "sim"
        base_url = "{url}"
        samples = {samples}
        concurrency = {concurrency}
        store = "{store}"
        {extra}

        [[envs]]
        id = "arithmetic"
        tasks = {tasks}
        max_turns = {max_turns}
        feedback = "binary"
        """


def test_malformed_replies_of_every_form_are_retried(tmp_path: Path, store: Path) -> None:
    with malforming_server(rate=0.15, seed=11) as (url, sent):
        spec = write_spec(tmp_path / "m.toml", spec_text("malformed", store, url, tasks=40, samples=2, max_turns=3))
        r = cli("run", str(spec), "-q")
    assert r.returncode == 0, r.stderr
    assert sent["malformed"] >= len(MALFORMED)  # every form was sent at least once
    assert q(store, "SELECT count(*), count(*) FILTER (status = 'ok') FROM episodes") == [(80, 80)]
    by = retried(r.stdout)
    assert by["malformed"] == sent["malformed"] and sum(by.values()) == by["malformed"]
    # every HTTP attempt the server saw is in the store's attempts: one retry per malformed reply
    assert q(store, "SELECT sum(attempts), sum(turns) FROM episodes")[0] == (sent["requests"], sent["requests"] - sent["malformed"])


def test_combined_faults_reach_the_ok_target(tmp_path: Path, store: Path) -> None:
    faults = Faults(rate_429=0.3, rate_500=0.3, rate_hang=0.05, rate_malformed=0.1, retry_after_s=0.05, hang_s=5.0, seed=5)
    statuses: list[RunStatus] = []
    with running_server(faults=faults) as url:
        spec = agentsynth.RunSpec(
            name="combined", model="sim", base_url=url, concurrency=16, store=str(store), timeout_s=0.5, max_retries=6,
            envs=[agentsynth.EnvSpec(id="arithmetic", tasks=120, max_turns=1, feedback="binary")])
        result = agentsynth.Runner(spec, on_status=statuses.append, status_every_s=0.02).run()
        served = stats(url)
    assert result.ok >= 0.97 * result.planned, result.lines()
    assert result.ok + result.errors == result.planned == 120 and result.not_run == 0
    by = result.retries_by_cause
    assert set(by) >= {"429", "5xx", "timeout", "malformed", "connection"}
    assert by["429"] > 0 and by["5xx"] > 0 and by["timeout"] > 0 and by["malformed"] > 0 and by["connection"] == 0
    assert result.retries == sum(by.values()) and f"malformed: {by['malformed']:,}" in "\n".join(result.lines())
    assert result.limit_max == 16 and result.limit is not None and 1 <= result.limit_lowest <= result.limit <= 16
    # every attempt the server saw is stored (carried over when an episode was run again)
    assert q(store, "SELECT sum(attempts) FROM episodes")[0][0] == served["requests"]
    assert q(store, "SELECT count(*) FILTER (tries > 1) FROM episodes")[0][0] == result.reran
    # the adaptation shows while the run goes, not only at the end
    live = [s for s in statuses if s.done < s.total and s.client is not None and sum(s.client.retries.values()) > 0]
    assert live and all(s.client is not None and s.client.maximum == 16 for s in statuses)
    assert statuses[-1].client is not None and statuses[-1].client.retries == by


def test_a_server_killed_mid_run_ends_the_run_failed_and_the_same_command_resumes(tmp_path: Path, store: Path) -> None:
    port, planned = free_port(), 400
    secret = "s3cret-query-value-0042"
    url = f"http://127.0.0.1:{port}/v1?api-version={secret}"  # a query string is sent, never printed
    spec = write_spec(tmp_path / "dies.toml", spec_text("dies", store, url, tasks=planned, concurrency=8,
                                                        extra="unreachable_s = 2\ntimeout_s = 2"))
    command = ["run", str(spec), "-q"]
    with agentsynth_serve("--latency-ms", "40", port=port) as served:
        run = subprocess.Popen([sys.executable, "-m", "agentsynth", *command], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        while stats(f"http://127.0.0.1:{port}/v1")["ok"] < 40:  # let it get going, then kill the server
            assert run.poll() is None, run.communicate()
            time.sleep(0.01)
        served.proc.kill()
        served.proc.wait()
        out, err = run.communicate(timeout=120)
    assert run.returncode == 1, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: run dies failed: endpoint http://127.0.0.1:{port}/v1 unreachable"), err
    assert "run the same command again to resume" in lines[0] and "not run" in lines[0]
    assert secret not in out + err and "Traceback" not in err
    rows = q(store, "SELECT count(*), count(*) FILTER (status = 'ok'), count(*) FILTER (status <> 'ok') FROM episodes")[0]
    assert 40 <= rows[0] < planned and rows[1] == rows[0] and rows[2] == 0  # no error row: the rest is simply not run
    assert f"{planned - rows[0]:,} of {planned} episodes not run" in lines[0]
    assert q(store, "SELECT status, sessions FROM runs") == [("failed", 1)]

    with agentsynth_serve(port=port):  # the endpoint is back: the same command resumes and completes
        again = cli(*command)
    assert again.returncode == 0, again.stderr
    assert q(store, "SELECT count(*), count(DISTINCT episode_id), count(*) FILTER (status = 'ok') FROM episodes") == [
        (planned, planned, planned)]
    assert q(store, "SELECT status, sessions FROM runs") == [("completed", 2)]
    assert f"({planned - rows[0]} run now, {rows[0]} already stored)" in again.stdout


def test_an_episode_waiting_out_a_backoff_lends_its_place() -> None:
    async def scenario() -> list[str]:
        seen: list[str] = []
        places = Places(2, 8, spawn=lambda: seen.append("spawn"))
        a, b, c, d = (Place(places) for _ in range(4))
        await a.take()
        await b.take()
        c_start = asyncio.create_task(c.take())
        await asyncio.sleep(0)
        seen.append(f"c started: {c_start.done()}")
        a_backoff = asyncio.create_task(a.lend(0.05))  # a waits out a backoff: c takes its place
        await asyncio.sleep(0.01)
        seen.append(f"c started: {c_start.done()}")
        d_start = asyncio.create_task(d.take())
        await asyncio.sleep(0.08)  # a's backoff is over: it waits for a place, ahead of d
        seen.append(f"a back: {a_backoff.done()}, d started: {d_start.done()}")
        b.leave()
        await asyncio.sleep(0)
        seen.append(f"a back: {a_backoff.done()}, d started: {d_start.done()}")
        e = Place(places)
        a.leave()
        await asyncio.sleep(0)
        seen.append(f"d started: {d_start.done()}")
        c.leave()
        await e.take()
        e_backoff = asyncio.create_task(e.lend(0.01))  # nobody waits for a place: a worker is spawned
        await asyncio.sleep(0)
        d.leave()
        await e_backoff
        e.leave()
        seen.append(f"free {places.free} of {places.size}")
        return seen

    assert asyncio.run(scenario()) == [
        "c started: False", "c started: True", "a back: False, d started: False", "a back: True, d started: False",
        "d started: True", "spawn", "free 2 of 2"]
