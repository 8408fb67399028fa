"""Runner over HTTP vs the bare ``openai`` client, against the sim server with 200 ms latency.

For each concurrency C (``--concurrency 64,256``) a fresh sim server is started in a child process
(``agentsynth.sim.process.running_server(latency_s=0.2)``), and N single-turn episodes
(``--episodes``, default 10,000) are run five ways, each in a fresh event loop:

- ``bare/aiohttp``: ``openai.AsyncOpenAI`` with ``openai.DefaultAioHttpClient``, C worker coroutines
  pulling the same N requests from a shared iterator, each calling ``chat.completions.create``;
- ``bare/httpx``: the same with the SDK's default httpx transport (``DefaultAsyncHttpxClient``);
- ``bare/aiohttp-raw``, ``bare/httpx-raw``: the same clients calling the low-level
  ``client.post("/chat/completions", cast_to=httpx2.Response)`` and reading the JSON, as the runner
  does (it skips the SDK's param transform and pydantic models); the runner's transport is httpx up
  to C = 128 and aiohttp above (``pick_transport``), so the matching ``*-raw`` row is its true
  overhead baseline;
- ``runner``: ``agentsynth.Runner`` with ``RunSpec(model="sim", base_url=..., concurrency=C)``, the
  DuckDB store on (a fresh file in a temp dir). The model is built with
  ``agentsynth.runner.build_model(spec)`` (what ``Runner`` does itself) so that it can be warmed up,
  then passed to ``Runner(spec, model=model)``; the timed part is the whole ``Runner.arun()``.

The requests are the same in all three: the arithmetic prompts for seeds 0..N-1 as one user
message, model "sim", temperature 1.0, a seed, max_tokens 1024. Before timing, each client sends
``--warmup`` requests (default 200; at least C) so connection setup is not counted. Reported:
requests (episodes)/s, this process's CPU ms per request (``time.process_time()``: all threads),
and the fraction of the ideal C / L (L = 0.2 s). The baseline the target names is the better of
bare/aiohttp and bare/httpx (``create``); the ``*-raw`` ratio is shown beside it.

    python benchmarks/bench_http.py
    python benchmarks/bench_http.py --concurrency 256 --episodes 5000 --repeat 2
    python benchmarks/bench_http.py --concurrency 256 --episodes 3000 --profile-only

Targets: runner >= 95% of C/L at C=64; runner >= 90% of the bare client's throughput at C=256.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import httpx2
import openai

import agentsynth

from _gc_timer import GcTimer
from agentsynth.models.openai_compat import pick_transport
from agentsynth.registry import make as make_env
from agentsynth.runner import build_model
from agentsynth.sim.process import running_server
from agentsynth.sim.server import Faults  # noqa: F401 - re-exported for callers who want to add faults

LATENCY_S = 0.2
TARGET_IDEAL_AT_64 = 0.95
TARGET_VS_BARE_AT_256 = 0.90
TIMEOUT_S = 60.0


@dataclass
class Measure:
    kind: str
    concurrency: int
    rep: int
    n: int
    ok: int
    errors: int
    wall: float
    cpu: float
    server_cpu: float = float("nan")
    gc_s: float = float("nan")
    gc_counts: tuple[int, int, int] = (0, 0, 0)

    @property
    def rate(self) -> float:
        return self.ok / self.wall if self.wall > 0 else float("nan")

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / max(1, self.ok)

    @property
    def gc_ms(self) -> float:
        return 1000 * self.gc_s / max(1, self.ok)

    @property
    def server_cpu_ms(self) -> float:
        return 1000 * self.server_cpu / max(1, self.ok)

    @property
    def cores(self) -> float:
        """Client + server CPU seconds per wall second (this machine has os.cpu_count() cores)."""
        return (self.cpu + self.server_cpu) / self.wall

    def ideal_frac(self) -> float:
        return self.rate / (self.concurrency / LATENCY_S)


def _server_cpu() -> float:
    """CPU seconds (user + system) of this process's child processes (the sim server), from
    /proc; NaN where there is no /proc."""
    me, total, tick = os.getpid(), 0.0, os.sysconf("SC_CLK_TCK")
    try:
        pids = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return float("nan")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me:  # ppid
            total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return total


def prompts_for(n: int, start: int = 0) -> list[str]:
    env = make_env("arithmetic", max_turns=1)
    try:
        return [env.reset(seed=i)[0] for i in range(start, start + n)]
    finally:
        env.close()


def make_client(transport: str, url: str, c: int) -> openai.AsyncOpenAI:
    timeout = httpx2.Timeout(TIMEOUT_S, connect=10.0)
    limits = httpx2.Limits(max_connections=c + 8, max_keepalive_connections=c + 8)
    if transport in ("aiohttp", "aiohttp-raw"):
        http = openai.DefaultAioHttpClient(timeout=timeout, limits=limits)
    elif transport in ("httpx", "httpx-raw"):
        http = openai.DefaultAsyncHttpxClient(timeout=timeout, limits=limits)
    else:
        raise ValueError(transport)
    return openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0, timeout=timeout, http_client=http)


async def _pool(c: int, items: Iterator[tuple[int, str]], call: Callable[[int, str], Awaitable[None]]) -> tuple[int, int, list[str]]:
    """C coroutines pulling (seed, prompt) from one shared iterator; returns (ok, errors, examples)."""
    counts = [0, 0]
    examples: list[str] = []

    async def worker() -> None:
        for seed, prompt in items:
            try:
                await call(seed, prompt)
                counts[0] += 1
            except Exception as exc:  # noqa: BLE001 - counted and reported
                counts[1] += 1
                if len(examples) < 3:
                    examples.append(f"{type(exc).__name__}: {str(exc)[:120]}")

    await asyncio.gather(*[worker() for _ in range(c)])
    return counts[0], counts[1], examples


def _bare_call(client: openai.AsyncOpenAI, raw: bool = False) -> Callable[[int, str], Awaitable[None]]:
    if raw:  # the call path the runner uses: the client's low-level post, the JSON read directly
        async def raw_call(seed: int, prompt: str) -> None:
            body = {"model": "sim", "messages": [{"role": "user", "content": prompt}], "temperature": 1.0,
                    "seed": seed, "max_tokens": 1024}
            resp = await client.post("/chat/completions", body=body, cast_to=httpx2.Response)
            if not json.loads(resp.content)["choices"][0]["message"]["content"]:
                raise RuntimeError("empty reply")

        return raw_call

    async def call(seed: int, prompt: str) -> None:
        resp = await client.chat.completions.create(
            model="sim", messages=[{"role": "user", "content": prompt}], temperature=1.0, seed=seed, max_tokens=1024
        )
        if not resp.choices[0].message.content:
            raise RuntimeError("empty reply")

    return call


async def measure_bare(transport: str, url: str, c: int, prompts: list[str], warm: list[str], rep: int,
                       profiler: cProfile.Profile | None = None) -> Measure:
    client = make_client(transport, url, c)
    try:
        call = _bare_call(client, raw=transport.endswith("-raw"))
        await _pool(c, iter(enumerate(warm, start=len(prompts))), call)
        if profiler:
            profiler.enable()
        with GcTimer() as g:
            s0, c0, t0 = _server_cpu(), time.process_time(), time.perf_counter()
            ok, errors, examples = await _pool(c, iter(enumerate(prompts)), call)
            wall, cpu, scpu = time.perf_counter() - t0, time.process_time() - c0, _server_cpu() - s0
        if profiler:
            profiler.disable()
    finally:
        await client.close()
    if examples:
        print(f"    bare/{transport} errors: {examples}", file=sys.stderr)
    return Measure(f"bare/{transport}", c, rep, len(prompts), ok, errors, wall, cpu, scpu, g.seconds, tuple(g.collections))


async def measure_runner(url: str, c: int, n: int, warm: list[str], store: str, rep: int,
                         profiler: cProfile.Profile | None = None) -> Measure:
    spec = agentsynth.RunSpec(
        name=f"http-c{c}-r{rep}", model="sim", base_url=url, concurrency=c, samples=1, store=store,
        envs=[agentsynth.EnvSpec(id="arithmetic", tasks=n, max_turns=1, feedback="binary")],
    )
    model = build_model(spec)  # the runner's own OpenAIModel (transport, retry policy, limiter)
    try:
        async def call(seed: int, prompt: str) -> None:
            await model.complete([{"role": "user", "content": prompt}], temperature=1.0, seed=seed, max_tokens=1024)

        await _pool(c, iter(enumerate(warm, start=n)), call)
        if profiler:
            profiler.enable()
        with GcTimer() as g:
            s0, c0, t0 = _server_cpu(), time.process_time(), time.perf_counter()
            res = await agentsynth.Runner(spec, model=model).arun()
            wall, cpu, scpu = time.perf_counter() - t0, time.process_time() - c0, _server_cpu() - s0
        if profiler:
            profiler.disable()
    finally:
        await model.aclose()
    if res.errors or res.status != "completed":
        print(f"    runner: status {res.status}, {res.errors} errors: {res.error_examples}", file=sys.stderr)
    return Measure("runner", c, rep, n, res.ok, res.errors, wall, cpu, scpu, g.seconds, tuple(g.collections))


def _print_profile(title: str, prof: cProfile.Profile, n: int, top: int) -> None:
    out = io.StringIO()
    st = pstats.Stats(prof, stream=out)
    st.strip_dirs()
    print(f"\n=== {title}: {n:,} requests; top {top} by cumulative time ===")
    st.sort_stats("cumulative").print_stats(top)
    text = out.getvalue()
    print(text[text.find("   ncalls"):])
    out.seek(0)
    out.truncate()
    print(f"=== {title}: top {top} by own (tottime) time ===")
    st.sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    print(text[text.find("   ncalls"):])


def _print_diff(bare: cProfile.Profile, runner: cProfile.Profile, n: int, top: int) -> None:
    """Functions by (runner own time - bare own time) per request: the runner's extra CPU."""
    def per_fn(prof: cProfile.Profile) -> dict[tuple[str, int, str], tuple[int, float, float]]:
        st = pstats.Stats(prof)
        return {k: (v[1], v[2], v[3]) for k, v in st.stats.items()}  # type: ignore[attr-defined]

    b, r = per_fn(bare), per_fn(runner)
    rows = []
    for k in set(b) | set(r):
        bc, bt, _ = b.get(k, (0, 0.0, 0.0))
        rc, rt, rcum = r.get(k, (0, 0.0, 0.0))
        rows.append((rt - bt, rc - bc, rcum, k))
    rows.sort(reverse=True)
    total_b = sum(v[1] for v in b.values())
    total_r = sum(v[1] for v in r.values())
    idle = [k for k in set(b) | set(r) if k[2] == "<method 'poll' of 'select.epoll' objects>"]
    idle_b = sum(b.get(k, (0, 0.0, 0.0))[1] for k in idle)
    idle_r = sum(r.get(k, (0, 0.0, 0.0))[1] for k in idle)
    print(f"=== runner minus bare/aiohttp, main thread, per request (us), idle epoll excluded: "
          f"bare {1e6 * (total_b - idle_b) / n:.0f} us, runner {1e6 * (total_r - idle_r) / n:.0f} us; "
          f"top {top} functions by extra own time ===")
    print(f"{'extra own us/req':>16} {'extra calls/req':>15} {'runner cum us/req':>17}  function")
    for dt, dc, rcum, (fname, line, func) in rows[:top]:
        if (fname, line, func) in idle:
            continue
        print(f"{1e6 * dt / n:16.1f} {dc / n:15.2f} {1e6 * rcum / n:17.1f}  {os.path.basename(fname)}:{line}({func})")


def run_profiles(c: int, n: int, warmup: int, top: int, tmp: str) -> None:
    """cProfile (main thread: the event loop) of the bare aiohttp client and of the runner at C."""
    prompts = prompts_for(n)
    warm = prompts_for(warmup, start=n + 10_000)
    with running_server(latency_s=LATENCY_S) as url:
        p_bare = cProfile.Profile()
        m_bare = asyncio.run(measure_bare("aiohttp", url, c, prompts, warm, 0, p_bare))
        p_run = cProfile.Profile()
        m_run = asyncio.run(measure_runner(url, c, n, warm, os.path.join(tmp, f"profile-c{c}.duckdb"), 0, p_run))
    print(f"\nprofiled at C={c} (cProfile on: slower than the timed runs): "
          f"bare/aiohttp {m_bare.rate:,.0f} req/s, {m_bare.cpu_ms:.3f} CPU ms/req; "
          f"runner {m_run.rate:,.0f} episodes/s, {m_run.cpu_ms:.3f} CPU ms/episode "
          "(CPU is the whole process; the profiles below are the main thread only, wall-clock timer, "
          "so 'select.epoll.poll' is idle time)")
    _print_profile(f"bare/aiohttp C={c}", p_bare, n, top)
    _print_profile(f"runner C={c}", p_run, n, top)
    _print_diff(p_bare, p_run, n, top)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=10_000, help="episodes / requests per measurement (default 10000)")
    ap.add_argument("--concurrency", default="64,256", help="comma-separated concurrency levels (default 64,256)")
    ap.add_argument("--repeat", type=int, default=1, help="rounds of (bare, runner) per level, alternating (default 1)")
    ap.add_argument("--warmup", type=int, default=200, help="warm-up requests before each timed measurement (default 200; at least C)")
    ap.add_argument("--transports", default="aiohttp,httpx,aiohttp-raw,httpx-raw",
                    help="bare clients: aiohttp and httpx call chat.completions.create; *-raw call the client's "
                         "low-level post as the runner does (default aiohttp,httpx,aiohttp-raw,httpx-raw)")
    ap.add_argument("--profile", action="store_true", help="after the table, cProfile the bare client and the runner")
    ap.add_argument("--profile-only", action="store_true", help="only the profiles, no timed table")
    ap.add_argument("--profile-episodes", type=int, default=3000, help="requests in each profiled run (default 3000)")
    ap.add_argument("--profile-concurrency", type=int, default=None, help="C for the profiles (default: the largest level)")
    ap.add_argument("--top", type=int, default=25, help="rows per profile table (default 25)")
    args = ap.parse_args()
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    n = args.episodes

    print(f"agentsynth {agentsynth.__version__}, openai {openai.__version__}, python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs; sim server in a child process, latency {LATENCY_S * 1000:.0f} ms; "
          f"{n:,} single-turn episodes per measurement; repeat {args.repeat}")
    results: list[Measure] = []
    with tempfile.TemporaryDirectory(prefix="agentsynth-bench-http-") as tmp:
        if not args.profile_only:
            prompts = prompts_for(n)
            for c in levels:
                warm = prompts_for(max(args.warmup, c), start=n + 10_000)
                with running_server(latency_s=LATENCY_S) as url:
                    print(f"C={c}: server {url}; ideal C/L = {c / LATENCY_S:,.0f}/s", flush=True)
                    for rep in range(args.repeat):
                        for t in transports:
                            m = asyncio.run(measure_bare(t, url, c, prompts, warm, rep))
                            results.append(m)
                            _line(m)
                        m = asyncio.run(measure_runner(url, c, n, warm, os.path.join(tmp, f"c{c}-r{rep}.duckdb"), rep))
                        results.append(m)
                        _line(m)
            _table(results, levels, transports)
        if args.profile or args.profile_only:
            run_profiles(args.profile_concurrency or max(levels), args.profile_episodes, max(args.warmup, 1), args.top, tmp)


def _line(m: Measure) -> None:
    err = f", {m.errors} errors" if m.errors else ""
    print(f"  [{m.rep}] {m.kind:13s} {m.ok:,} in {m.wall:6.2f}s -> {m.rate:8,.1f}/s  "
          f"{m.cpu_ms:.3f} CPU ms/req (GC {m.gc_ms:.3f}, collections {'/'.join(map(str, m.gc_counts))}; "
          f"server {m.server_cpu_ms:.3f})  {100 * m.ideal_frac():5.1f}% of C/L  {m.cores:.2f} cores busy{err}", flush=True)


def _agg(ms: list[Measure]) -> tuple[float, float, float, int, float, float, float]:
    """Medians of rate, client CPU ms, ideal fraction; total errors; medians of server CPU ms, cores, GC ms."""
    return (statistics.median(m.rate for m in ms), statistics.median(m.cpu_ms for m in ms),
            statistics.median(m.ideal_frac() for m in ms), sum(m.errors for m in ms),
            statistics.median(m.server_cpu_ms for m in ms), statistics.median(m.cores for m in ms),
            statistics.median(m.gc_ms for m in ms))


def _table(results: list[Measure], levels: list[int], transports: list[str]) -> None:
    print(f"\n| C | client | req/s (median) | client CPU ms/req | of which GC | server CPU ms/req "
          f"| cores busy (of {os.cpu_count()}) | % of C/L | errors |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    summary = []
    for c in levels:
        by_kind = {}
        for kind in [f"bare/{t}" for t in transports] + ["runner"]:
            ms = [m for m in results if m.concurrency == c and m.kind == kind]
            if not ms:
                continue
            rate, cpu, frac, errs, scpu, cores, gcms = by_kind[kind] = _agg(ms)
            print(f"| {c} | {kind} | {rate:,.1f} | {cpu:.3f} | {gcms:.3f} | {scpu:.3f} | {cores:.2f} | "
                  f"{100 * frac:.1f}% | {errs} |")
        # the baseline the target names: the better transport of the client's chat.completions.create
        bares = {k: v for k, v in by_kind.items() if k in ("bare/aiohttp", "bare/httpx")}
        if bares and "runner" in by_kind:
            best = max(bares, key=lambda k: bares[k][0])
            raw = by_kind.get(f"bare/{pick_transport('auto', c)}-raw")  # the runner's own call path: its true overhead
            summary.append((c, best, bares[best], by_kind["runner"], raw))
    print("\n| C | baseline (better bare create) | baseline req/s | runner episodes/s | runner/baseline | runner % of C/L "
          "| runner / bare on the runner's call path (*-raw) | runner - that bare CPU ms/req | target |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for c, best, (b_rate, *_), (r_rate, r_cpu, r_frac, *_), raw in summary:
        ratio = r_rate / b_rate
        same = f"{100 * r_rate / raw[0]:.1f}%" if raw else "n/a"
        extra = f"{r_cpu - raw[1]:+.3f}" if raw else "n/a"
        targets = []
        if c == 64:
            targets.append(f">= 95% of C/L: {'PASS' if r_frac >= TARGET_IDEAL_AT_64 else 'FAIL'}")
        if c == 256:
            targets.append(f">= 90% of bare: {'PASS' if ratio >= TARGET_VS_BARE_AT_256 else 'FAIL'}")
        print(f"| {c} | {best} | {b_rate:,.1f} | {r_rate:,.1f} | {100 * ratio:.1f}% | {100 * r_frac:.1f}% | "
              f"{same} | {extra} | {'; '.join(targets) or '(none)'} |")


if __name__ == "__main__":
    main()
