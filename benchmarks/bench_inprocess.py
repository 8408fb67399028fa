"""In-process runner throughput: the sim model in this process (no HTTP), the DuckDB store on.

Measures episodes/s (wall) and CPU ms/episode (this process, all threads) for a single-turn and a
3-turn (feedback "binary") run of the arithmetic environment. Each run gets a fresh store file in
a temporary directory. With ``--profile`` it then profiles one more single-turn run (cProfile in
every thread: the event loop, the environment executor and the store writer; timer
``time.thread_time``, so the figures are CPU seconds and idle waits cost nothing) and prints the top
functions by cumulative CPU time.

    python benchmarks/bench_inprocess.py                      # 20,000 episodes each
    python benchmarks/bench_inprocess.py --episodes 5000 --profile

Target: >= 1,000 single-turn episodes/s.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import threading
import time
from typing import Self

import agentsynth

from _gc_timer import GcTimer

TARGET_SINGLE = 1000.0  # single-turn episodes/s


def make_spec(name: str, store: str, episodes: int, max_turns: int, concurrency: int) -> agentsynth.RunSpec:
    return agentsynth.RunSpec(
        name=name,
        model="sim",
        store=store,
        samples=1,
        concurrency=concurrency,
        envs=[agentsynth.EnvSpec(id="arithmetic", tasks=episodes, max_turns=max_turns, feedback="binary")],
    )


def timed_run(spec: agentsynth.RunSpec) -> dict:
    with GcTimer() as g:
        c0, t0 = time.process_time(), time.perf_counter()
        res = agentsynth.Runner(spec).run()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if res.status != "completed" or res.ok != res.planned:
        print(f"  WARNING: run {spec.name}: status {res.status}, {res.ok} ok / {res.planned}; {res.error_examples}",
              file=sys.stderr)
    return {"ok": res.ok, "planned": res.planned, "wall": wall, "cpu": cpu, "elapsed_s": res.elapsed_s,
            "eps": res.ok / wall if wall > 0 else float("nan"), "cpu_ms": 1000 * cpu / max(1, res.ok),
            "gc_ms": 1000 * g.seconds / max(1, res.ok), "gc_counts": "/".join(map(str, g.collections))}


class _ThreadProfiles:
    """cProfile in every thread started while active (cProfile alone sees only the calling thread)."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._orig = threading.Thread.run
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        orig, profiles, lock = self._orig, self.profiles, self._lock

        def run(thread: threading.Thread) -> None:
            p = cProfile.Profile(time.thread_time)
            with lock:
                profiles.append(p)
            p.enable()
            try:
                orig(thread)
            finally:
                p.disable()

        threading.Thread.run = run  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        threading.Thread.run = self._orig  # type: ignore[method-assign]


def _print_stats(title: str, profiles: list[cProfile.Profile], sort: str, top: int) -> None:
    profiles = [p for p in profiles if p.getstats()]
    if not profiles:
        return
    out = io.StringIO()
    st = pstats.Stats(profiles[0], stream=out)
    for p in profiles[1:]:
        st.add(p)
    st.strip_dirs().sort_stats(sort).print_stats(top)
    print(f"\n=== {title} (sorted by {sort}, top {top}) ===")
    text = out.getvalue()
    # drop pstats' preamble lines up to the header of the table
    start = text.find("   ncalls")
    print(text[start:] if start >= 0 else text)


def profile_run(spec: agentsynth.RunSpec, top: int) -> None:
    main = cProfile.Profile(time.thread_time)
    before = set(threading.enumerate())
    with _ThreadProfiles() as tp:
        c0, t0 = time.process_time(), time.perf_counter()
        main.enable()
        res = agentsynth.Runner(spec).run()
        main.disable()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        for t in set(threading.enumerate()) - before:  # executor threads outlive shutdown(wait=False)
            t.join(timeout=5)
    n = max(1, res.ok)
    print(f"\nprofiled run: {res.ok} episodes in {wall:.2f}s wall, {1000 * cpu / n:.3f} CPU ms/episode "
          "(under cProfile: slower than the timed runs)")
    _print_stats("main thread: event loop, runner, episode loop, sim model", [main], "cumulative", top)
    _print_stats("main thread", [main], "tottime", top)
    _print_stats("worker threads: env reset/step (executor) and the store writer", tp.profiles, "cumulative", top)
    _print_stats("worker threads", tp.profiles, "tottime", 15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=20_000, help="episodes per configuration (default 20000)")
    ap.add_argument("--concurrency", type=int, default=16, help="runner concurrency (default 16, the RunSpec default)")
    ap.add_argument("--profile", action="store_true", help="also profile one single-turn run (cProfile, all threads)")
    ap.add_argument("--profile-episodes", type=int, default=None, help="episodes in the profiled run (default --episodes)")
    ap.add_argument("--top", type=int, default=25, help="rows per profile table (default 25)")
    args = ap.parse_args()

    print(f"agentsynth {agentsynth.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
          f"in-process sim, {args.episodes:,} episodes per configuration, concurrency {args.concurrency}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="agentsynth-bench-") as tmp:
        # a small warm-up run: imports, first DuckDB open, registry resolution
        timed_run(make_spec("warmup", os.path.join(tmp, "warmup.duckdb"), 200, 1, args.concurrency))
        for label, turns in (("single-turn", 1), ("3-turn binary", 3)):
            spec = make_spec(f"bench-{turns}", os.path.join(tmp, f"bench-{turns}.duckdb"), args.episodes, turns,
                             args.concurrency)
            r = timed_run(spec)
            print(f"  {label}: {r['ok']:,} episodes in {r['wall']:.2f}s -> {r['eps']:,.0f} episodes/s, "
                  f"{r['cpu_ms']:.3f} CPU ms/episode (GC {r['gc_ms']:.3f}; collections gen0/1/2 {r['gc_counts']})",
                  flush=True)
            rows.append((label, r))
        if args.profile:
            n = args.profile_episodes or args.episodes
            profile_run(make_spec("bench-profile", os.path.join(tmp, "profile.duckdb"), n, 1, args.concurrency), args.top)

    print("\n| run | episodes | wall s | episodes/s | CPU ms/episode | of which GC | target |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for label, r in rows:
        if label == "single-turn":
            verdict = "PASS" if r["eps"] >= TARGET_SINGLE else "FAIL"
            target = f">= {TARGET_SINGLE:,.0f}/s: {verdict}"
        else:
            target = "(none)"
        print(f"| {label} | {r['ok']:,} | {r['wall']:.2f} | {r['eps']:,.0f} | {r['cpu_ms']:.3f} | {r['gc_ms']:.3f} | {target} |")


if __name__ == "__main__":
    main()
