"""Peak RSS of in-process runs by run length: is memory flat in the number of episodes?

Each size (``--episodes 10000,30000,100000``) runs in a fresh child process
(``python benchmarks/bench_memory.py --child N``): one single-turn run of the arithmetic
environment against the in-process sim, the DuckDB store on (a fresh file in a temp dir). The
child prints JSON on stdout: seconds, the peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``),
the RSS after imports (the floor: Python, numpy, pyarrow, duckdb, openai), the RSS when 25/50/75/100%
of the episodes are done (growth during the run, as opposed to a one-off) and the store file size.

    python benchmarks/bench_memory.py
    python benchmarks/bench_memory.py --episodes 10000,100000 --concurrency 64

Target: peak RSS < 500 MB at 100k episodes, and flat in run length.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from _rss import rss_mb

TARGET_MB = 500.0
FLAT_TOLERANCE = 0.15  # "flat": the largest run's peak within 15% of the smallest run's peak


def _maxrss_mb() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 1024  # bytes on macOS, KiB on Linux


def child(episodes: int, concurrency: int) -> None:
    import agentsynth  # imports count towards the RSS floor, as in any real run
    import agentsynth.runner
    import agentsynth.sim

    floor = rss_mb()
    with tempfile.TemporaryDirectory(prefix="agentsynth-bench-mem-") as tmp:
        store = os.path.join(tmp, "mem.duckdb")
        spec = agentsynth.RunSpec(
            name=f"mem-{episodes}", model="sim", store=store, samples=1, concurrency=concurrency,
            envs=[agentsynth.EnvSpec(id="arithmetic", tasks=episodes, max_turns=1, feedback="binary")],
        )
        marks = {episodes * q // 4: q for q in (1, 2, 3, 4)}
        curve: dict[str, float] = {}

        def progress(done: int, total: int, ok: int, errors: int) -> None:
            q = marks.get(done)
            if q is not None:
                curve[f"{25 * q}%"] = round(rss_mb(), 1)

        t0 = time.perf_counter()
        res = agentsynth.Runner(spec, on_progress=progress).run()
        secs = time.perf_counter() - t0
        size = os.path.getsize(store) + (os.path.getsize(store + ".wal") if os.path.exists(store + ".wal") else 0)
        out = {"episodes": episodes, "ok": res.ok, "status": res.status, "seconds": secs,
               "peak_rss_mb": _maxrss_mb(), "floor_rss_mb": floor, "end_rss_mb": rss_mb(),
               "store_mb": size / 2**20, "rss_curve_mb": curve}
    print(json.dumps(out), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", default="10000,30000,100000", help="comma-separated run lengths (default 10000,30000,100000)")
    ap.add_argument("--concurrency", type=int, default=16, help="runner concurrency (default 16)")
    ap.add_argument("--child", type=int, default=None, metavar="N", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child, args.concurrency)
        return

    sizes = [int(x) for x in args.episodes.split(",") if x.strip()]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; one fresh child process per run length; "
          f"in-process sim, single-turn, concurrency {args.concurrency}")
    rows = []
    for n in sizes:
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--child", str(n), "--concurrency", str(args.concurrency)],
            check=False, capture_output=True, text=True,
        )
        if proc.returncode != 0:
            print(f"  {n:,}: child failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        if r["status"] != "completed" or r["ok"] != n:
            print(f"  WARNING: {n:,}: status {r['status']}, {r['ok']} ok", file=sys.stderr)
        rows.append(r)
        curve = ", ".join(f"{k} {v:.0f}" for k, v in r["rss_curve_mb"].items())
        print(f"  {n:,} episodes: {r['seconds']:.1f}s, peak RSS {r['peak_rss_mb']:.0f} MB "
              f"(after imports {r['floor_rss_mb']:.0f} MB; RSS MB when done: {curve}), "
              f"store {r['store_mb']:.1f} MB", flush=True)

    print("\n| episodes | seconds | episodes/s | peak RSS MB | RSS after imports MB | RSS at 25% / 100% done MB | store MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        c = r["rss_curve_mb"]
        print(f"| {r['episodes']:,} | {r['seconds']:.1f} | {r['episodes'] / r['seconds']:,.0f} | {r['peak_rss_mb']:.0f} | "
              f"{r['floor_rss_mb']:.0f} | {c.get('25%', float('nan')):.0f} / {c.get('100%', float('nan')):.0f} | "
              f"{r['store_mb']:.1f} |")
    if len(rows) >= 2:
        lo, hi = rows[0], rows[-1]
        growth = hi["peak_rss_mb"] / lo["peak_rss_mb"] - 1
        per_10k = (hi["peak_rss_mb"] - lo["peak_rss_mb"]) / max(1, hi["episodes"] - lo["episodes"]) * 10_000
        flat = growth <= FLAT_TOLERANCE
        print(f"\nRSS {'is flat' if flat else 'is NOT flat'} in run length: peak {lo['peak_rss_mb']:.0f} MB at "
              f"{lo['episodes']:,} -> {hi['peak_rss_mb']:.0f} MB at {hi['episodes']:,} ({100 * growth:+.0f}%, "
              f"{per_10k:+.1f} MB per 10k episodes; flat = within {100 * FLAT_TOLERANCE:.0f}%)")
    big = [r for r in rows if r["episodes"] >= 100_000]
    for r in big:
        verdict = "PASS" if r["peak_rss_mb"] < TARGET_MB else "FAIL"
        print(f"target: peak RSS < {TARGET_MB:.0f} MB at {r['episodes']:,} episodes: {r['peak_rss_mb']:.0f} MB -> {verdict}")


if __name__ == "__main__":
    main()
