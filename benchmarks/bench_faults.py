"""The runner against a bad endpoint: the reliability figures, one row per fault mix.

For each mix a fresh sim server is started in a child process
(``agentsynth.sim.process.running_server(faults=..., latency_s=...)``) and ``agentsynth.Runner``
runs N episodes of ``arithmetic`` (``max_turns = 3``, ``feedback = "binary"``: ~1.85 model calls
per episode) at concurrency C with ``timeout_s`` and ``max_retries`` as given, the DuckDB store on
(a fresh file). Mixes (``--mixes``):

- ``none``: no faults (the reference the others are compared with);
- ``malformed``: 10% of replies are a 200 with a truncated JSON body;
- ``combined``: 30% 429 (``Retry-After: 1``), 30% 500, 5% hangs (past the timeout), 10% malformed;
- ``dies``: no faults, but the server is killed (SIGKILL) once ``--die-after`` episodes are done and
  stays down.

Printed per mix: run status, ok / failed / not run (planned episodes with no stored row), wall
time, HTTP attempts (``sum(episodes.attempts)``), calls in flight (median of samples every 50 ms
of ``model.limiter.in_flight``, over the whole run and until 95% of the episodes are done — the
last few, retried again and again, make a tail with little in flight — and the limit's median),
retries by cause (where the code reports them)
and, for ``dies``, the time from the kill to the end of the run. Then two ratios against ``none``:
wall / wall(none) (the issue's "within 3x of a fault-free run"), and wall / (wall(none) x attempts /
attempts(none)), i.e. against a fault-free run that makes as many HTTP attempts ("at the same retry
budget"). With 75% of attempts failing, a call needs ~3.5 attempts on average (each costing the
server's latency, which the sim charges on faulted replies too) and C caps the calls in flight, so
the first ratio cannot fall below ~3.5 whatever the client does; the second measures what waiting
(backoff, Retry-After, the limiter) costs on top of the attempts themselves.

    python benchmarks/bench_faults.py                       # 1,000 episodes, C = 64, timeout 2 s, 6 retries, 200 ms
    python benchmarks/bench_faults.py --mixes none,combined --episodes 300

Targets (issue 10): combined >= 97% ok and within 3x of the fault-free run; a dead endpoint ends
the run in bounded time (``unreachable_s``, default 30 s) without error rows for unstarted episodes.
Runs on older code too (figures it does not report show as n/a), so before/after can be compared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field

import duckdb

import agentsynth
from agentsynth.runner import build_model
from agentsynth.sim.process import running_server
from agentsynth.sim.server import Faults

MIXES = {
    "none": None,
    "malformed": Faults(rate_malformed=0.10, seed=1),
    "combined": Faults(rate_429=0.30, rate_500=0.30, rate_hang=0.05, rate_malformed=0.10, seed=2),
    "dies": None,
}


@dataclass
class Row:
    mix: str
    status: str
    planned: int
    ok: int
    errors: int
    wall: float
    attempts: int
    in_flight: float
    in_flight_main: float
    limit: float
    retries: dict[str, int] | None
    retries_total: int
    after_kill: float | None = None
    message: str | None = None
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def not_run(self) -> int:
        return self.planned - self.ok - self.errors


def _server_pid() -> int | None:
    """The running_server child of this process (from /proc)."""
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == me and b"_child_main" in cmd:
            return int(d)
    return None


async def _measure(mix: str, url: str, args: argparse.Namespace, store: str) -> Row:
    spec = agentsynth.RunSpec(
        name=f"faults-{mix}", model="sim", base_url=url, concurrency=args.concurrency, store=store,
        timeout_s=args.timeout, max_retries=args.retries,
        envs=[agentsynth.EnvSpec(id="arithmetic", tasks=args.episodes, max_turns=3, feedback="binary")],
    )
    model = build_model(spec)
    samples: list[tuple[int, int, bool]] = []
    killed: list[float] = []
    progress = [0]

    def on_progress(done: int, total: int, ok: int, errors: int) -> None:
        progress[0] = done
        if mix == "dies" and not killed and done >= args.die_after:
            pid = _server_pid()
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                killed.append(time.perf_counter())

    async def sample() -> None:
        while True:
            samples.append((model.limiter.in_flight, model.limiter.limit, progress[0] < 0.95 * args.episodes))
            await asyncio.sleep(0.05)

    sampler = asyncio.get_running_loop().create_task(sample())
    t0 = time.perf_counter()
    try:
        res = await agentsynth.Runner(spec, model=model, on_progress=on_progress).arun()
    finally:
        wall = time.perf_counter() - t0
        sampler.cancel()
        await model.aclose()
    con = duckdb.connect(store, read_only=True)
    try:
        attempts = con.execute("SELECT coalesce(sum(attempts), 0) FROM episodes").fetchone()[0]
    finally:
        con.close()
    by = getattr(res, "retries_by_cause", None)
    main = [s[0] for s in samples if s[2]]
    return Row(mix, res.status, res.planned, res.ok, res.errors, wall, int(attempts),
               statistics.median(s[0] for s in samples) if samples else float("nan"),
               statistics.median(main) if main else float("nan"),
               statistics.median(s[1] for s in samples) if samples else float("nan"),
               dict(by) if by else None, int(res.retries),
               after_kill=(t0 + wall - killed[0]) if killed else None, message=getattr(res, "message", None))


def _line(r: Row) -> None:
    by = ", ".join(f"{k} {v:,}" for k, v in r.retries.items() if v) if r.retries is not None else "n/a"
    kill = f"; ended {r.after_kill:.1f}s after the kill" if r.after_kill is not None else ""
    print(f"  {r.mix:9s} {r.status:10s} ok {r.ok:,} failed {r.errors:,} not run {r.not_run:,} in {r.wall:6.1f}s; "
          f"{r.attempts:,} attempts; in flight median {r.in_flight:g}, {r.in_flight_main:g} until 95% done "
          f"(limit median {r.limit:g}); "
          f"retries {r.retries_total:,} ({by}){kill}", flush=True)
    if r.message:
        print(f"            {r.message}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=1000, help="episodes per mix (default 1000)")
    ap.add_argument("--concurrency", type=int, default=64, help="C (default 64)")
    ap.add_argument("--timeout", type=float, default=2.0, help="timeout_s per request (default 2)")
    ap.add_argument("--retries", type=int, default=6, help="max_retries (default 6)")
    ap.add_argument("--latency-ms", type=float, default=200.0, help="the server's latency per request (default 200)")
    ap.add_argument("--die-after", type=int, default=400, help="dies: kill the server after this many episodes (default 400)")
    ap.add_argument("--mixes", default=",".join(MIXES), help=f"comma-separated, of {', '.join(MIXES)} (default all)")
    args = ap.parse_args()
    mixes = [m.strip() for m in args.mixes.split(",") if m.strip()]
    for m in mixes:
        if m not in MIXES:
            ap.error(f"unknown mix {m!r}")
    print(f"agentsynth {agentsynth.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
          f"{args.episodes:,} episodes (arithmetic, 3 turns, binary), C = {args.concurrency}, timeout {args.timeout:g}s, "
          f"{args.retries} retries, server latency {args.latency_ms:g} ms", flush=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        for mix in mixes:
            with running_server(faults=MIXES[mix], latency_s=args.latency_ms / 1000) as url:
                row = asyncio.run(_measure(mix, url, args, os.path.join(tmp, f"{mix}.duckdb")))
            rows.append(row)
            _line(row)
    ref = next((r for r in rows if r.mix == "none"), None)
    print("\n| fault mix | status | ok | failed | not run | wall s | x fault-free | x fault-free at the same attempts "
          "| HTTP attempts | in flight (median) | in flight until 95% done (median) | retries by cause |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        comparable = ref is not None and r.mix != "dies"  # a run cut short compares with nothing
        x = f"{r.wall / ref.wall:.1f}" if comparable and ref else "n/a"
        xa = f"{r.wall / (ref.wall * r.attempts / ref.attempts):.1f}" if comparable and ref and ref.attempts else "n/a"
        by = ", ".join(f"{k} {v:,}" for k, v in r.retries.items() if v) if r.retries is not None else f"{r.retries_total:,} (n/a)"
        kill = f" (ended {r.after_kill:.0f} s after the kill)" if r.after_kill is not None else ""
        print(f"| {r.mix} | {r.status} | {r.ok:,} ({100 * r.ok / r.planned:.1f}%) | {r.errors:,} | {r.not_run:,} | "
              f"{r.wall:.1f}{kill} | {x} | {xa} | {r.attempts:,} | {r.in_flight:g} | {r.in_flight_main:g} | {by or '-'} |")


if __name__ == "__main__":
    main()
