"""`agentsynth view` at scale: each page's time to the last byte, and the server's memory.

Builds the audit benchmark's synthetic store (``bench_audit.build_store``: by default 1,000,000
episodes, 100k tasks, 2.8M messages, 9.3M signal rows) or reuses one (``--reuse PATH``; it is
only read), starts the real ``agentsynth view`` on it as a subprocess, and requests each page
``--repeat`` times (a new connection each time; the time runs from sending the request to the
last byte of the body; "store" is the median of the server's own Server-Timing figure: the time
the request held its read-only connection, open, queries and close). One episode's page asks for
a different episode each time (drawn evenly over the store), so no two requests read the same rows. Prints the median, min and max
per page, the targets, and the server's peak and current RSS (``VmHWM`` / ``VmRSS`` of
``/proc/PID/status``; the peak is also shown after each page's requests, in the order they run).

    python benchmarks/bench_view.py                              # build 1M episodes (~10 s), then measure
    python benchmarks/bench_view.py --reuse /tmp/store-1m.duckdb # measure a store built before
    python benchmarks/bench_view.py --episodes 100000 --keep /tmp/view-100k.duckdb

Targets (1M episodes, 2 cores): runs page and the first episodes page < 1 s each; a filtered
episodes page < 1 s; one episode's page < 300 ms; server RSS < 500 MB.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode

from bench_audit import build_store

ROOT = Path(__file__).resolve().parent.parent
TARGET_PAGE_S = 1.0
TARGET_EPISODE_S = 0.3
TARGET_MB = 500.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str) -> tuple[float, int, int, float]:
    """(seconds to the last byte, status, bytes, the server's store time in seconds from its
    Server-Timing header) of one GET on a new connection."""
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=120) as resp:
            body = resp.read()
            status, timing = resp.status, resp.headers.get("Server-Timing", "")
    except urllib.error.HTTPError as exc:
        body, status, timing = exc.read(), exc.code, ""
    db = float(timing.split("dur=")[1]) / 1000 if "dur=" in timing else float("nan")
    return time.perf_counter() - t0, status, len(body), db


def status_mb(pid: int) -> dict[str, float]:
    """VmHWM and VmRSS of ``pid`` in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(line.split()[1]) / 1024
    return out


def query(store: str, sql: str) -> list[tuple]:
    sys.path.insert(0, str(ROOT))
    from agentsynth.store.connection import connect

    con = connect(store, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=1_000_000, help="episodes in the built store (default 1000000)")
    ap.add_argument("--samples", type=int, default=10, help="episodes per task (default 10)")
    ap.add_argument("--repeat", type=int, default=7, help="requests per page; the median is reported (default 7)")
    ap.add_argument("--keep", metavar="PATH", help="build the store at PATH (must not exist) and keep it")
    ap.add_argument("--reuse", metavar="PATH", help="measure a store built before (only read)")
    args = ap.parse_args()
    if args.reuse and not Path(args.reuse).exists():
        ap.error(f"no store at {args.reuse}")
    if not args.reuse and args.keep and Path(args.keep).exists():
        ap.error(f"{args.keep} exists; --keep needs a new path (or use --reuse {args.keep})")
    if args.repeat < 1:
        ap.error("--repeat must be positive")
    with tempfile.TemporaryDirectory(prefix="agentsynth-bench-view-") as tmp:
        if args.reuse:
            store = args.reuse
        else:
            store = args.keep or os.path.join(tmp, "view.duckdb")
            print(f"building {args.episodes:,} episodes ({args.samples} per task) ...", flush=True)
            built = build_store(store, args.episodes, args.samples)
            print(f"store built in {built['seconds']:.1f} s", flush=True)
        measure(store, args.repeat)


def measure(store: str, repeat: int) -> None:
    ((episodes, messages, signals, run_id),) = query(store, "SELECT (SELECT count(*) FROM episodes), (SELECT count(*) FROM messages), "
                                                            "(SELECT count(*) FROM signals), (SELECT min(run_id) FROM runs)")
    step = max(episodes // (repeat + 1), 1)
    picks = [r[0] for r in query(store, f"SELECT episode_id FROM episodes WHERE rowid % {step} = {step // 2} "
                                        f"ORDER BY rowid LIMIT {repeat}")]
    deep = query(store, f"SELECT episode_id FROM episodes ORDER BY rowid LIMIT 1 OFFSET {episodes // 2}")[0][0]
    size_mb = os.path.getsize(store) / 2**20
    print(f"store {store}: {size_mb:,.0f} MB; {episodes:,} episodes, {messages:,} messages, {signals:,} signal rows; "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}", flush=True)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "agentsynth", "view", "--store", store, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                fetch(base + "/static/viewer.css")
                break
            except OSError:
                if proc.poll() is not None:
                    raise SystemExit(f"agentsynth view exited: {proc.stderr.read().decode() if proc.stderr else ''}") from None
                time.sleep(0.05)
        print(f"agentsynth view (PID {proc.pid}) serving after {time.perf_counter() - t0:.1f} s; "
              f"RSS {status_mb(proc.pid)['VmRSS']:.0f} MB", flush=True)
        run = f"/runs/{quote(run_id)}"
        pages = [
            ("runs page", "/", [None], TARGET_PAGE_S),
            ("a run: first episodes page", run, [None], TARGET_PAGE_S),
            ("filtered: domain, channel, last answer", run + "?" + urlencode({"domain": "code", "feedback": "hint", "last": "yes"}),
             [None], TARGET_PAGE_S),
            ("filtered: a signal's value (judge >= 0.5)", run + "?" + urlencode({"signal": "judge", "op": "ge", "value": "0.5"}),
             [None], TARGET_PAGE_S),
            ("filtered: signal + domain", run + "?" + urlencode({"signal": "format", "op": "failed", "domain": "sql"}),
             [None], TARGET_PAGE_S),
            ("sorted by latency, ascending", run + "?" + urlencode({"sort": "latency", "dir": "asc"}), [None], TARGET_PAGE_S),
            ("a page in the middle (after episode 500,000)", run + "?" + urlencode({"after": deep}), [None], TARGET_PAGE_S),
            ("the last page", run + "?page=last", [None], TARGET_PAGE_S),
            ("one episode (a different one each time)", "/episodes/", picks, TARGET_EPISODE_S),
            ("live figures (JSON the page polls)", f"/api/runs/{quote(run_id)}", [None], None),
            ("SQL box: a count by channel", "/sql?" + urlencode({"q": "SELECT feedback, count(*) FROM episodes GROUP BY 1"}),
             [None], None),
            ("signals page (agreement with truth: a join over all signal rows)", "/signals", [None], None),
        ]
        print(f"\n{'page':<62} {'median':>8} {'min':>8} {'max':>8} {'store':>8}  {'KB':>6} {'peak RSS':>9}  target")
        results = []
        for label, path, items, target in pages:
            times, dbs = [], []
            for i in range(repeat):
                item = items[i % len(items)]
                url = base + path + (quote(item) if item else "")
                secs, status, size, db = fetch(url)
                if status != 200:
                    raise SystemExit(f"{url}: HTTP {status}")
                times.append(secs)
                dbs.append(db)
            med = statistics.median(times)
            verdict = "" if target is None else f"< {target * 1000:.0f} ms: {'met' if med < target else 'MISSED'}"
            peak = status_mb(proc.pid)["VmHWM"]
            print(f"{label:<62} {med * 1000:7.0f}ms {min(times) * 1000:7.0f}ms {max(times) * 1000:7.0f}ms "
                  f"{statistics.median(dbs) * 1000:6.0f}ms  {size / 1024:6.0f} {peak:6.0f} MB  {verdict}", flush=True)
            results.append((label, med, target))
        mem = status_mb(proc.pid)
        print(f"\nserver RSS: peak (VmHWM) {mem['VmHWM']:.0f} MB, now (VmRSS) {mem['VmRSS']:.0f} MB   "
              f"target < {TARGET_MB:.0f} MB: {'met' if mem['VmHWM'] < TARGET_MB else 'MISSED'}")
        missed = [label for label, med, target in results if target is not None and med >= target]
        print("all page targets met" if not missed else f"missed: {', '.join(missed)}")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
