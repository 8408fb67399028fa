"""Live reads: what reading a store while `agentsynth run` writes it costs the run, and how fresh
the reads are.

A real `agentsynth run` (a subprocess, as a user starts it) runs ``--episodes`` episodes of
``arithmetic`` (binary feedback, up to 2 turns) at concurrency ``--concurrency`` against an
`agentsynth serve` sim server with ``--latency-ms`` per request (its own process), each time into
a fresh store. Configurations, interleaved ``--repeat`` times:

- ``alone``: nobody reads;
- ``readers``: while it runs, readers in another process do what the viewer and a user do:
  every ``--poll`` seconds :func:`agentsynth.open_store` runs the runs page's query (per-run
  counts, pass rates, tokens) and the freshness query, and every 4th poll
  `agentsynth sql` is run as a command. Each poll's lag is ``now - max(episodes.finished_at)``:
  how old the newest episode a reader can see is (episodes finish every few milliseconds, so
  this is the store's staleness);
- ``baseline`` (with ``--baseline-tree DIR``, e.g. a worktree of the code before live reads): the
  same run, nobody reads, with ``PYTHONPATH=DIR``: the writer that held the file for the whole run.

Throughput is the run's own: episodes / (last finished_at - first started_at), so process start
and imports do not count. Printed: episodes/s per configuration (median), the ratios
readers/alone (target: at most 10% slower) and alone/baseline (what opening the file per batch
costs), the reads made and refused, and the lag (median, p95, max; target: a few seconds).

    python benchmarks/bench_live.py
    python benchmarks/bench_live.py --episodes 20000 --baseline-tree /work/old
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import duckdb

import agentsynth
from agentsynth.store import StoreError
from agentsynth.store.run_lock import live_run

ROOT = Path(__file__).resolve().parent.parent
RUNS_PAGE = """
    SELECT r.name, r.status, r.planned, count(e.episode_id) AS stored, count(*) FILTER (e.status = 'ok') AS ok,
           avg(e.passed_first::INT) AS first, avg(e.passed_last::INT) AS last,
           sum(e.prompt_tokens + e.completion_tokens) AS tokens
    FROM runs r LEFT JOIN episodes e USING (run_id) GROUP BY ALL ORDER BY r.name
"""
LAG = "SELECT max(finished_at) FROM episodes"


def spec(path: Path, store: Path, url: str, episodes: int, concurrency: int) -> Path:
    path.write_text(textwrap.dedent(f"""
        name = "live-bench"
        model = "sim"
        base_url = "{url}"
        concurrency = {concurrency}
        store = "{store}"

        [[envs]]
        id = "arithmetic"
        tasks = {episodes}
        max_turns = 2
        feedback = "binary"
        """))
    return path


def throughput(store: Path) -> tuple[int, float]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        n, span = con.execute("SELECT count(*), epoch(max(finished_at) - min(started_at)) FROM episodes").fetchone()
    finally:
        con.close()
    return n, n / span


class Readers(threading.Thread):
    """Poll the store as the viewer and a user would until ``stop``."""

    def __init__(self, store: Path, poll: float, env: dict[str, str]):
        super().__init__(daemon=True)
        self.store, self.poll, self.env = store, poll, env
        self.stop = threading.Event()
        self.lags: list[float] = []
        self.reads = 0
        self.refused = 0

    def run(self) -> None:
        i = 0
        while not self.stop.wait(self.poll):
            i += 1
            try:
                with agentsynth.open_store(self.store) as s:
                    s.sql(RUNS_PAGE).fetchall()
                    (last,) = s.sql(LAG).fetchall()[0]
                self.reads += 1
                if last is not None:
                    self.lags.append((dt.datetime.now(dt.UTC).replace(tzinfo=None) - last).total_seconds())
                if i % 4 == 0:
                    r = subprocess.run([sys.executable, "-m", "agentsynth", "sql", RUNS_PAGE, "--store", str(self.store)],
                                       capture_output=True, text=True, env=self.env, cwd=ROOT)
                    self.reads += 1
                    self.refused += r.returncode != 0
            except StoreError:
                self.refused += 1


def one(kind: str, args: argparse.Namespace, url: str, tmp: Path, i: int) -> dict:
    store = tmp / f"{kind}-{i}.duckdb"
    path = spec(tmp / f"{kind}-{i}.toml", store, url, args.episodes, args.concurrency)
    env = dict(os.environ)
    if kind == "baseline":
        env["PYTHONPATH"] = str(Path(args.baseline_tree).resolve())
    run = subprocess.Popen([sys.executable, "-m", "agentsynth", "run", str(path), "-q"], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    readers = None
    if kind == "readers":
        while run.poll() is None and not (store.exists() and live_run(store)):
            time.sleep(0.05)
        readers = Readers(store, args.poll, dict(os.environ))
        readers.start()
    _, err = run.communicate()
    if readers:
        readers.stop.set()
        readers.join()
    if run.returncode != 0:
        sys.exit(f"{kind} run failed: {err.strip().splitlines()[-1] if err.strip() else run.returncode}")
    n, eps = throughput(store)
    row = {"kind": kind, "episodes": n, "eps": eps}
    if readers:
        row.update(lags=readers.lags, reads=readers.reads, refused=readers.refused)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=128)
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--poll", type=float, default=1.0, help="seconds between reader polls (default 1)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline-tree", metavar="DIR", help="also time this source tree's runner, nobody reading")
    args = ap.parse_args()
    from agentsynth.sim.process import running_server

    kinds = ["alone", "readers"] + (["baseline"] if args.baseline_tree else [])
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as d, running_server(latency_s=args.latency_ms / 1000) as url:
        for i in range(args.repeat):
            for kind in kinds:
                row = one(kind, args, url, Path(d), i)
                rows.append(row)
                print(f"  {kind:8s} #{i + 1}: {row['episodes']:,} episodes, {row['eps']:.0f} episodes/s", flush=True)
    med = {k: statistics.median(r["eps"] for r in rows if r["kind"] == k) for k in kinds}
    print(f"\n{args.episodes:,} episodes, C = {args.concurrency}, {args.latency_ms:g} ms a request, "
          f"median of {args.repeat} (episodes/s):")
    for k in kinds:
        print(f"  {k:8s} {med[k]:8.0f}")
    print(f"readers / alone:   {med['readers'] / med['alone']:.3f}  (target >= 0.90)")
    if "baseline" in med:
        print(f"alone / baseline:  {med['alone'] / med['baseline']:.3f}  (opening the file per batch vs holding it)")
    lags = sorted(x for r in rows if r["kind"] == "readers" for x in r["lags"])
    reads = sum(r["reads"] for r in rows if r["kind"] == "readers")
    refused = sum(r["refused"] for r in rows if r["kind"] == "readers")
    if lags:
        p95 = lags[min(len(lags) - 1, int(0.95 * len(lags)))]
        print(f"reads during the runs: {reads}, refused {refused}; lag of the newest episode seen: "
              f"median {statistics.median(lags):.2f} s, p95 {p95:.2f} s, max {lags[-1]:.2f} s (target: a few seconds)")


if __name__ == "__main__":
    main()
