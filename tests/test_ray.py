"""Scale-out on Ray, on a real local Ray instance (one per module, 2 CPUs): the same episodes as
the local runner, a worker SIGKILLed mid-run, the driver SIGKILLed and resumed, the code domain's
sandbox inside the workers, one in-flight limit per endpoint across workers, and bad input caught
before any episode runs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the ray extra: pip install -e '.[ray]' (.ci/run installs it)")

import agentsynth  # noqa: E402
from agentsynth.scaleout.cluster import ClusterError  # noqa: E402
from agentsynth.scaleout.driver import RayRunner  # noqa: E402
from agentsynth.scaleout.limits import GlobalLimit, SharedLimiter, Tally, shares  # noqa: E402
from agentsynth.sim.process import running_server  # noqa: E402
from agentsynth.sim.server import Faults  # noqa: E402
from agentsynth.spec import RaySpec  # noqa: E402

from conftest import ROOT, cli, free_port, q, write_spec  # noqa: E402

pytestmark = pytest.mark.timeout(300)

TWO = RaySpec(workers=2)
SAME = {  # what must not differ between a local run and a Ray run of one spec
    "episodes": "SELECT episode_id, task_id, env_id, env_config, feedback, seed, sample, status, turns, reward, "
                "passed_first, passed_last, prompt_tokens, completion_tokens, judge_tokens FROM episodes ORDER BY 1",
    "tasks": "SELECT * FROM tasks ORDER BY 1",
    "messages": "SELECT episode_id, position, turn, role, content, tool_calls, tool_call_id, answer FROM messages ORDER BY 1, 2",
    "signals": "SELECT episode_id, turn, name, role, value, passed, feedback, details, tokens FROM signals ORDER BY ALL",
}


@pytest.fixture(scope="module", autouse=True)
def ray_instance() -> Iterator[None]:
    """One local Ray instance for the module; its workers import this checkout."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "RAY_worker_niceness": "0"}})
    try:
        yield
    finally:
        ray.shutdown()


def _spec(store: Path, name: str = "r", **kw: object) -> agentsynth.RunSpec:
    envs = kw.pop("envs", None) or [
        agentsynth.EnvSpec(id="arithmetic", tasks=20, feedback=["binary", "hint", "self"]),
        agentsynth.EnvSpec(id="tools", tasks=5, feedback="binary", max_turns=4),
    ]
    kw.setdefault("concurrency", 8)
    return agentsynth.RunSpec(name=name, store=str(store), samples=2, envs=envs, **kw)  # type: ignore[arg-type]


def test_a_ray_run_stores_the_same_episodes_as_a_local_run(tmp_path: Path) -> None:
    local, remote = tmp_path / "local.duckdb", tmp_path / "ray.duckdb"
    a = agentsynth.Runner(_spec(local)).run()
    statuses = []
    b = agentsynth.run(_spec(remote), ray=TWO, on_status=statuses.append, status_every_s=0.05)
    assert (a.status, a.ok, a.planned) == (b.status, b.ok, b.planned) == ("completed", 130, 130)
    assert (a.first_pass_rate, a.last_pass_rate, a.prompt_tokens) == (b.first_pass_rate, b.last_pass_rate, b.prompt_tokens)
    for name, sql in SAME.items():
        assert q(local, sql) == q(remote, sql), name
    assert q(remote, "SELECT name, status, planned, sessions FROM runs") == [("r", "completed", 130, 1)]
    assert statuses and statuses[-1].done == 130  # progress as locally


def test_a_run_started_locally_resumes_on_ray(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    spec = _spec(store, envs=[agentsynth.EnvSpec(id="arithmetic", tasks=30, feedback="binary")])
    agentsynth.Runner(spec).run()
    again = agentsynth.run(spec.model_copy(update={"ray": TWO}))  # the [ray] table is not part of what a run produces
    assert (again.status, again.ran, again.skipped) == ("completed", 0, 60)


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    planned = 6000
    spec = _spec(store, envs=[agentsynth.EnvSpec(id="arithmetic", tasks=1500, feedback=["binary", "hint"])], concurrency=16)
    done = [0]
    runner = RayRunner(spec, ray=TWO, on_progress=lambda d, *_: done.__setitem__(0, d))
    out: list[agentsynth.RunResult] = []
    t = threading.Thread(target=lambda: out.append(runner.run()))
    t.start()
    deadline = time.monotonic() + 120
    while done[0] < 300:
        assert t.is_alive() and time.monotonic() < deadline, "the run did not get going"
        time.sleep(0.01)
    killed = runner.pids[0]
    os.kill(killed, signal.SIGKILL)
    t.join(240)
    assert not t.is_alive()
    (result,) = out
    assert done[0] < planned or runner.restarts >= 1
    assert (result.status, result.ok, result.errors) == ("completed", planned, 0)
    assert runner.restarts >= 1 and killed not in runner.pids  # Ray restarted it: a new process
    assert q(store, "SELECT count(*), count(DISTINCT episode_id) FROM episodes") == [(planned, planned)]
    assert q(store, "SELECT count(*) FROM messages m ANTI JOIN episodes e USING (episode_id)") == [(0,)]


def test_the_code_domain_runs_its_sandbox_inside_the_workers(tmp_path: Path) -> None:
    envs = [agentsynth.EnvSpec(id="code", tasks=6, feedback=["binary", "hint"])]
    local, remote = tmp_path / "local.duckdb", tmp_path / "ray.duckdb"
    a = agentsynth.Runner(_spec(local, envs=envs)).run()
    b = agentsynth.run(_spec(remote, envs=envs), ray=TWO)
    assert (b.status, b.ok) == (a.status, a.ok) == ("completed", 24)
    assert q(remote, "SELECT count(*) FROM signals WHERE role = 'truth' AND passed") != [(0,)]  # the tests really ran
    for name, sql in SAME.items():
        assert q(local, sql) == q(remote, sql), name


def test_the_limit_and_its_back_off_hold_across_workers(tmp_path: Path) -> None:
    """A server that throttles 70% of calls: the driver halves the one limit (both workers' shares
    move with it), the run still completes, the summary counts both workers' 429s."""
    faults = Faults(rate_429=0.7, retry_after_s=0.01, seed=3)
    with running_server(faults=faults) as url:
        spec = _spec(tmp_path / "s.duckdb", model="sim", base_url=url, concurrency=32, max_retries=30,
                     envs=[agentsynth.EnvSpec(id="arithmetic", tasks=300, max_turns=1, feedback="binary")])
        result = agentsynth.run(spec, ray=TWO, status_every_s=0.05)
    assert result.status == "completed" and result.ok == 600
    assert result.limit_max == 32 and result.limit_lowest is not None and result.limit_lowest <= 16
    assert result.retries_by_cause["429"] > 600


def test_limits_split_and_adapt_once_for_all_workers() -> None:
    assert shares(16, 2) == [8, 8] and shares(7, 3) == [3, 2, 2] and shares(1, 3) == [1, 1, 1]
    g = GlobalLimit(32)
    for _ in range(2):  # two windows over the threshold, half of them from each worker: halve once
        assert not g.add(Tally(0, 16, 15)) or g.limit == 16
        changed = g.add(Tally(g.generation, 16, 15))
    assert changed and g.limit == 16 and g.generation == 1
    assert not g.add(Tally(0, 100, 100))  # counted under the old limit: ignored
    w = SharedLimiter(16, 8, 1)
    w.record(True, 0)  # a call started under the old limit
    w.record(True, 1)
    w.record(False, 1)
    assert w.take_tally() == Tally(1, 2, 1) and w.take_tally() == Tally(1, 0, 0)
    w.set_limit(4, 2)
    assert (w.limit, w.lowest, w.generation) == (4, 4, 2)


def test_an_environment_the_workers_cannot_import_fails_before_any_episode(tmp_path: Path) -> None:
    here = tmp_path / "driver_only"
    here.mkdir()
    (here / "only_here_env.py").write_text(textwrap.dedent('''
        from agentsynth import TextEnv

        class Echo(TextEnv):
            name = "echo"
            domain = "echo"

            def generate(self, rng):
                return self.make_task("Say hi", "hi")

            def verify(self, task, answer):
                return "hi" in answer
        '''))
    sys.path.insert(0, str(here))  # the driver imports it; the workers do not have it
    try:
        store = tmp_path / "s.duckdb"
        spec = _spec(store, envs=[agentsynth.EnvSpec(id="only_here_env:Echo", tasks=3)])
        with pytest.raises(ClusterError, match=r"^envs: only_here_env:Echo cannot be imported on the Ray workers .*"
                                               r"No module named 'only_here_env'.*PYTHONPATH$"):
            agentsynth.run(spec, ray=TWO)
    finally:
        sys.path.remove(str(here))
    assert not store.exists()  # nothing ran, nothing was stored


@pytest.mark.parametrize("address", ["127.0.0.1:{port}", "ray://127.0.0.1:{port}"])
def test_an_unreachable_address_is_one_line_and_exit_2(tmp_path: Path, store: Path, address: str) -> None:
    spec = write_spec(tmp_path / "s.toml", f"""
        name = "far"
        store = "{store}"
        [[envs]]
        id = "arithmetic"
        tasks = 3
        """)
    addr = address.format(port=free_port())
    r = cli("run", str(spec), "-q", "--ray", addr, env={"PYTHONPATH": str(ROOT)})
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [f"error: cannot reach a Ray cluster at {addr}: Connection refused (start one "
                                             "with `ray start --head` on the head machine, or check the address and port)"]
    assert not store.exists()


SCRIPT = '''
import sys, threading
import agentsynth
from agentsynth import TextEnv
from agentsynth.scaleout.cluster import ClusterError  # noqa: E402


class Echo(TextEnv):
    """Defined in the script: sent to the workers by value."""
    name = "echo"
    domain = "echo"

    def generate(self, rng):
        word = ["apple", "river", "stone"][int(rng.integers(0, 3))]
        return self.make_task(f"Repeat this word exactly: {{word}}", word)

    def verify(self, task, answer):
        return task.answer in answer


class Locked(Echo):
    """Holds a lock: cannot be pickled."""
    lock = threading.Lock()


def spec(env, name):
    return agentsynth.RunSpec(name=name, store={store!r}, envs=[agentsynth.EnvSpec(id=env, tasks=4, max_turns=1)])


try:
    agentsynth.run(spec("__main__:Locked", "locked"), ray={{"workers": 2}})
except ClusterError as exc:
    print("refused:", exc)
result = agentsynth.run(spec("__main__:Echo", "echo"), ray={{"workers": 2}})
print("ran:", result.status, result.ok)
'''


def test_a_script_class_is_sent_by_value_and_an_unpicklable_one_is_refused(tmp_path: Path, store: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT.format(store=str(store)))
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=240,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("refused: envs: __main__:Locked: the environment class cannot be sent to the Ray workers "
                               "(pickling failed: TypeError: cannot pickle '_thread.lock' object"), lines
    assert lines[0].endswith("define it in a module the workers can import")
    assert lines[1] == "ran: completed 4"
    assert q(store, "SELECT DISTINCT env_id FROM episodes") == [("echo",)]


def test_the_driver_killed_mid_run_resumes_with_the_same_command(tmp_path: Path, store: Path) -> None:
    planned = 2 * 3000 * 2
    spec = write_spec(tmp_path / "s.toml", f"""
        name = "drv"
        samples = 2
        concurrency = 16
        store = "{store}"
        [ray]
        workers = 2
        [[envs]]
        id = "arithmetic"
        tasks = 3000
        feedback = ["binary", "hint"]
        """)
    env = {**{k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "agentsynth", "run", str(spec), "-q", "--ray"]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not store.exists():  # the workers are up once the run began (the store is opened after they are)
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(3.0)  # a few of the writer's batches (it writes about once a second)
    assert proc.poll() is None, "the run ended before the kill: make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n, distinct = q(store, "SELECT count(*), count(DISTINCT episode_id) FROM episodes")[0]
    assert 0 < n == distinct < planned, n
    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stderr
    assert q(store, "SELECT count(*), count(DISTINCT episode_id), count(*) FILTER (status = 'ok') FROM episodes") == [
        (planned, planned, planned)]
    assert q(store, "SELECT status, sessions FROM runs") == [("completed", 2)]


def test_several_endpoints_each_get_one_limit_across_workers(tmp_path: Path) -> None:
    """base_url a list, on Ray: calls spread over both servers, each endpoint's figures summed over
    the workers in the summary."""
    with running_server() as a, running_server() as b:
        spec = _spec(tmp_path / "s.duckdb", model="sim", base_url=[a, b], concurrency=16,
                     envs=[agentsynth.EnvSpec(id="arithmetic", tasks=100, max_turns=1, feedback="binary")])
        result = agentsynth.run(spec, ray=TWO, status_every_s=0.05)
        served = [json.loads(urllib.request.urlopen(u.removesuffix("/v1") + "/stats").read())["ok"] for u in (a, b)]
    assert (result.status, result.ok) == ("completed", 200)
    assert sum(served) == 200 and min(served) > 40, served
    assert [e.calls for e in result.endpoints] == served


def test_the_readme_ray_table_is_a_valid_spec_table() -> None:
    import tomllib

    text = (ROOT / "README.md").read_text().split("## Scaling out on Ray", 1)[1].split("\n## ", 1)[0]
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    assert RaySpec.model_validate(tomllib.loads(block)["ray"]) == RaySpec(address="auto", workers=8, cpus_per_worker=1, silent_s=20)


def _descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process under ``pid``."""
    kids: dict[int, list[int]] = {}
    cmds: dict[int, str] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
                cmds[int(d)] = open(f"/proc/{d}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], list(kids.get(pid, []))
    while todo:
        p = todo.pop()
        out.append((p, cmds.get(p, "")))
        todo += kids.get(p, [])
    return out


def test_the_cluster_going_away_ends_the_run_interrupted(tmp_path: Path, store: Path) -> None:
    """The run's own local instance killed under it (its GCS, raylet and workers, as a lost head
    node): one line, exit 1, the run stored as interrupted with what finished."""
    spec = write_spec(tmp_path / "s.toml", f"""
        name = "gone"
        store = "{store}"
        [ray]
        workers = 2
        silent_s = 3
        [[envs]]
        id = "arithmetic"
        tasks = 50000
        """)
    env = {**{k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "agentsynth", "run", str(spec), "-q", "--ray"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not store.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(1.0)
    ray_procs = [p for p, cmd in _descendants(proc.pid) if "gcs_server" in cmd or "raylet" in cmd or "ray::" in cmd]
    assert ray_procs
    for p in ray_procs:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: run gone interrupted: the Ray cluster went away (") and last.endswith(
        "the episodes that finished are stored: run the same command again to resume"), err
    (status, n, distinct), = q(store, "SELECT r.status, count(e.episode_id), count(DISTINCT e.episode_id) "
                                      "FROM runs r LEFT JOIN episodes e USING (run_id) GROUP BY 1")
    assert status == "interrupted" and 0 < n == distinct < 50000


def test_the_library_does_not_import_ray_unless_a_run_asks_for_it() -> None:
    probe = ("import sys, agentsynth, agentsynth.cli, agentsynth.launch, agentsynth.scaleout.cluster;"
             "agentsynth.launch.make_runner(agentsynth.RunSpec(name='x', envs=[agentsynth.EnvSpec(id='arithmetic')]));"
             "print('ray' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr
