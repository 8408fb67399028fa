"""Scale-out on Ray against the local runner, in the same run: episodes/s, CPU per episode, and the
driver's ceiling (what one store writer absorbs).

1. **CPU-bound**: the ``code`` domain with its sandbox on (each graded turn runs the candidate in
   bubblewrap), the in-process ``sim`` model; the local :class:`agentsynth.Runner` vs
   :class:`agentsynth.scaleout.driver.RayRunner` with ``--workers`` (default 2) on one local Ray
   instance started once (``ray.init(num_cpus=2)``; its start is not timed, each run's actor
   start is: it is printed apart).
2. **HTTP**: single-turn ``arithmetic`` against ``agentsynth serve --latency-ms 200`` (a child
   process) at concurrency C (default 256): the local runner vs Ray. CPU per episode is counted
   over processes: the client side (this process and its descendants but the server: the Ray
   workers, raylet and GCS included) and the server apart.
3. **The writer's ceiling**: real single-turn sim episodes (their records cloned with new ids)
   pushed into one :class:`~agentsynth.store.writer.StoreWriter` as fast as it takes them:
   episodes/s into DuckDB; with the driver's CPU per episode received in (2), how many workers
   one driver can feed.

Each comparison alternates the order over ``--repeat`` rounds (default 2) and prints every
measurement and the medians' ratio. Run on a quiet machine: the figures are CPU-bound.

    python benchmarks/bench_ray.py
    python benchmarks/bench_ray.py --only cpu --code-tasks 40 --repeat 3
    python benchmarks/bench_ray.py --only http --episodes 8000 --concurrency 256
    python benchmarks/bench_ray.py --only writer --writer-episodes 100000
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import agentsynth  # noqa: E402
from agentsynth.scaleout.driver import RayRunner  # noqa: E402
from agentsynth.spec import RaySpec  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def _tree() -> dict[int, tuple[int, float, str]]:
    """pid -> (ppid, CPU seconds incl. reaped children, command line) of every process."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        cpu = sum(int(x) for x in fields[11:15]) / TICK  # utime stime cutime cstime
        out[int(d)] = (int(fields[1]), cpu, cmd)
    return out


def descendants_cpu(root: int, exclude: set[int]) -> dict[int, float]:
    """CPU seconds (their reaped children's included) of ``root`` and of every descendant not under
    a pid in ``exclude``, by pid."""
    t = _tree()
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in t.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = {}, [root]
    while todo:
        p = todo.pop()
        if p in exclude or p not in t:
            continue
        out[p] = t[p][1]
        todo += kids.get(p, [])
    return out


def cpu_since(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU spent between two snapshots by the processes alive at the second (a process gone
    meanwhile — an idle Ray worker from an earlier run — neither adds nor subtracts)."""
    return sum(c - before.get(p, 0.0) for p, c in after.items())


def proc_cpu(pid: int) -> float:
    t = _tree()
    return t[pid][1] if pid in t else float("nan")


@dataclass
class M:
    kind: str
    episodes: int
    wall: float
    cpu: float  # client side
    server_cpu: float = float("nan")
    driver_cpu: float = float("nan")
    startup: float = 0.0

    @property
    def rate(self) -> float:
        return self.episodes / self.wall

    def line(self) -> str:
        extra = (f"; actors up in {self.startup:.1f}s (in the wall time), {self.episodes / (self.wall - self.startup):.1f} "
                 "episodes/s after") if self.startup else ""
        srv = f", server {1000 * self.server_cpu / self.episodes:.2f}" if self.server_cpu == self.server_cpu else ""
        drv = f", driver process {1000 * self.driver_cpu / self.episodes:.3f}" if self.driver_cpu == self.driver_cpu else ""
        return (f"  {self.kind:<6} {self.episodes:>6} episodes in {self.wall:6.2f}s = {self.rate:7.1f} episodes/s; "
                f"CPU ms/episode: client {1000 * self.cpu / self.episodes:.2f}{drv}{srv}{extra}")


class TimedRayRunner(RayRunner):
    """RayRunner noting when its actors were up and the driver's CPU while it dispatched."""

    def __init__(self, *a, **kw):  # type: ignore[no-untyped-def]
        super().__init__(*a, **kw)
        self.t_start = time.perf_counter()
        self.up = 0.0
        self.driver_cpu0 = self.driver_cpu = 0.0
        self.cpu_at_end: dict[int, float] = {}
        self.exclude: set[int] = set()
        self.on_start = self._started

    def _started(self, total: int, todo: int) -> None:
        self.up = time.perf_counter() - self.t_start
        self.driver_cpu0 = time.process_time()

    async def _stop(self) -> None:
        # the workers' CPU before they are killed (a dead worker's time goes to the raylet that reaps it, or nowhere)
        self.cpu_at_end = descendants_cpu(os.getpid(), self.exclude)
        self.driver_cpu = time.process_time() - self.driver_cpu0
        await super()._stop()


def one(kind: str, spec: agentsynth.RunSpec, workers: int, exclude: set[int]) -> M:
    me = os.getpid()
    cpu0 = descendants_cpu(me, exclude)
    t0 = time.perf_counter()
    if kind == "local":
        res = agentsynth.Runner(spec).run()
        driver = float("nan")
        up = 0.0
    else:
        r = TimedRayRunner(spec, ray=RaySpec(workers=workers))
        r.t_start, r.exclude = t0, exclude
        res = r.run()
        driver, up = r.driver_cpu, r.up
    wall = time.perf_counter() - t0
    cpu = cpu_since(cpu0, descendants_cpu(me, exclude) if kind == "local" else r.cpu_at_end)
    assert res.status == "completed" and res.ok == res.planned, res.lines()
    return M(kind, res.ok, wall, cpu, driver_cpu=driver, startup=up)


def compare(title: str, make_spec, workers: int, repeat: int, exclude: set[int], server: int | None = None) -> dict[str, list[M]]:  # type: ignore[no-untyped-def]
    """Local and Ray runs, alternating which goes first; each on tasks of its own (``make_spec(name,
    i)``: the i-th distinct seed range), so no run profits from a cache an earlier one filled."""
    print(f"\n{title}")
    got: dict[str, list[M]] = {"local": [], "ray": []}
    i = 0
    for rep in range(repeat):
        for kind in (("local", "ray") if rep % 2 == 0 else ("ray", "local")):
            s0 = proc_cpu(server) if server else float("nan")
            m = one(kind, make_spec(f"{kind}{rep}", i), workers, exclude)
            i += 1
            if server:
                m.server_cpu = proc_cpu(server) - s0
            got[kind].append(m)
            print(m.line(), flush=True)
    lr = statistics.median(m.rate for m in got["local"])
    rr = statistics.median(m.rate for m in got["ray"])
    lc = statistics.median(m.cpu / m.episodes for m in got["local"])
    rc = statistics.median(m.cpu / m.episodes for m in got["ray"])
    rs = statistics.median(m.episodes / (m.wall - m.startup) for m in got["ray"])
    print(f"  median: local {lr:.1f}, ray {rr:.1f} episodes/s: ray/local = {rr / lr:.2f}x (once the actors are up: "
          f"{rs:.1f}/s, {rs / lr:.2f}x); client CPU ms/episode local {1000 * lc:.2f}, ray {1000 * rc:.2f} ({rc / lc:.2f}x)")
    return got


def bench_cpu(args: argparse.Namespace, tmp: str) -> None:
    def spec(name: str, i: int) -> agentsynth.RunSpec:
        return agentsynth.RunSpec(name=name, store=f"{tmp}/cpu-{name}.duckdb", samples=args.code_samples,
                                  concurrency=args.code_concurrency, envs=[agentsynth.EnvSpec(id="code", tasks=args.code_tasks,
                                                                          seed_start=i * args.code_tasks,
                                                                          feedback=["binary", "hint"])])

    compare(f"1. CPU-bound: code domain, sandbox on, in-process sim; {args.code_tasks} tasks x {args.code_samples} "
            f"samples x 2 channels, concurrency {args.code_concurrency}; Ray: {args.workers} workers", spec, args.workers, args.repeat, set())


def bench_http(args: argparse.Namespace, tmp: str) -> list[M]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "agentsynth", "serve", "--port", str(port), "--latency-ms", "200"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/models", timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
                time.sleep(0.1)

        def spec(name: str, i: int) -> agentsynth.RunSpec:
            return agentsynth.RunSpec(name=name, store=f"{tmp}/http-{name}.duckdb", model="sim", base_url=url,
                                      concurrency=args.concurrency,
                                      envs=[agentsynth.EnvSpec(id="arithmetic", tasks=args.episodes, max_turns=1,
                                                               seed_start=i * args.episodes, feedback="binary")])

        got = compare(f"2. HTTP: single-turn arithmetic, agentsynth serve with 200 ms latency, C = {args.concurrency}, "
                      f"{args.episodes} episodes; ideal C/L = {args.concurrency / 0.2:.0f}/s; Ray: {args.workers} workers",
                      spec, args.workers, args.repeat, {proc.pid}, server=proc.pid)
        return got["ray"]
    finally:
        proc.terminate()
        proc.wait()


def bench_writer(args: argparse.Namespace, tmp: str, ray_http: list[M]) -> None:
    from agentsynth.store import runs as store_runs
    from agentsynth.store.connection import connect
    from agentsynth.store.writer import EpisodeRecord, StoreWriter

    src = f"{tmp}/writer-src.duckdb"
    agentsynth.Runner(agentsynth.RunSpec(name="src", store=src, envs=[
        agentsynth.EnvSpec(id="arithmetic", tasks=200, max_turns=1, feedback="binary")])).run()
    con = connect(src, read_only=True)
    ep_cols = [d[0] for d in con.execute("SELECT * FROM episodes LIMIT 0").description]
    eps = [dict(zip(ep_cols, r)) for r in con.execute("SELECT * FROM episodes").fetchall()]
    task_cols = [d[0] for d in con.execute("SELECT * FROM tasks LIMIT 0").description]
    tasks = {r[0]: dict(zip(task_cols, r)) for r in con.execute("SELECT * FROM tasks").fetchall()}
    msgs: dict[str, list[tuple]] = {}
    for r in con.execute("SELECT episode_id, position, turn, role, content, tool_calls, tool_call_id, answer FROM messages"
                         " ORDER BY 1, 2").fetchall():
        msgs.setdefault(r[0], []).append(r)
    sigs: dict[str, list[tuple]] = {}
    for r in con.execute("SELECT episode_id, turn, name, role, value, passed, feedback, details, tokens FROM signals").fetchall():
        sigs.setdefault(r[0], []).append(r)
    con.close()
    n = args.writer_episodes
    dst = f"{tmp}/writer.duckdb"
    w = connect(dst, read_only=False)
    state = store_runs.begin_run(w, name="w", spec={}, spec_hash="x", model="sim", base_url=None, planned=n,
                                 version=agentsynth.__version__)
    records = []
    for i in range(n):
        e = eps[i % len(eps)]
        eid = f"e-w{i:012d}"
        ep = {**e, "episode_id": eid, "run_id": state.run_id}
        records.append(EpisodeRecord(ep, tasks[e["task_id"]] if i < len(eps) else None,
                                     [(eid, *m[1:]) for m in msgs[e["episode_id"]]],
                                     [(eid, *s[1:]) for s in sigs[e["episode_id"]]]))
    w.close()
    writer = StoreWriter(dst)  # as a run's: opens the file per batch
    c0, t0 = time.process_time(), time.perf_counter()
    for r in records:
        writer.submit(r)
    writer.close()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    w = connect(dst, read_only=True)
    stored = w.execute("SELECT count(*) FROM episodes").fetchone()[0]
    w.close()
    rate = stored / wall
    print(f"\n3. The writer's ceiling: {stored} single-turn episodes (3 messages, 2 signals each) into one StoreWriter: "
          f"{wall:.2f}s = {rate:,.0f} episodes/s ({1000 * cpu / stored:.3f} CPU ms/episode)")
    if ray_http:
        m = min(ray_http, key=lambda m: m.wall)
        per_worker = m.rate / args.workers
        drv_ms = 1000 * m.driver_cpu / m.episodes
        print(f"  Ray HTTP run above: {per_worker:,.0f} episodes/s per worker; the driver process spent {drv_ms:.3f} "
              f"CPU ms/episode (receiving, counting, writing) -> one driver core ~{1000 / drv_ms:,.0f} episodes/s")
        print(f"  one driver feeds ~{min(rate, 1000 / drv_ms) / per_worker:.0f} such workers "
              f"(min(writer {rate:,.0f}/s, driver {1000 / drv_ms:,.0f}/s) / {per_worker:,.0f}/s per worker)")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=["cpu", "http", "writer"], action="append")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--code-tasks", type=int, default=60)
    ap.add_argument("--code-samples", type=int, default=2)
    ap.add_argument("--code-concurrency", type=int, default=32)
    ap.add_argument("--episodes", type=int, default=10_000, help="HTTP episodes per measurement (bench_http.py's default)")
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--writer-episodes", type=int, default=100_000)
    args = ap.parse_args()
    only = set(args.only or ["cpu", "http", "writer"])
    import ray

    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the start")
    from agentsynth.scaleout.cluster import local_worker_env

    ray.init(address="local", num_cpus=max(2, args.workers), include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": local_worker_env()})  # as `agentsynth run --ray` starts one
    ray_http: list[M] = []
    with tempfile.TemporaryDirectory() as tmp:
        if "cpu" in only:
            bench_cpu(args, tmp)
        if "http" in only:
            ray_http = bench_http(args, tmp)
        ray.shutdown()
        if "writer" in only:
            bench_writer(args, tmp, ray_http)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
