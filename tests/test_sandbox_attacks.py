"""Issue 8: real attacks on the code sandbox, as real programs. Each is contained and, where the
sandbox can tell, reported with a reason. The programs are in ``tests/attacks.py``."""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import agentsynth
from agentsynth.sandbox import isolation, run_python
from agentsynth.sandbox.seccomp import filter_program
from agentsynth.sandbox.workdir import PREFIX, clean_stale
from envs.code import CodeEnv
from rubrics.unit_tests import check

import attacks
from conftest import ROOT, q

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="the sandbox needs Linux")
ISO = isolation()
needs_bwrap = pytest.mark.skipif(not ISO.bwrap, reason="without bubblewrap the sandbox does not hide the host (README)")
TASKS = 30


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A world-readable directory in the temp dir, as a project directory is to other users."""
    d = Path(tempfile.mkdtemp(prefix="agentsynth-attack-test-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP server on the host's 127.0.0.1 that nothing should ever reach."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        yield server
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever connected


@needs_bwrap
def test_the_store_is_out_of_reach_by_path_and_through_proc(open_dir: Path) -> None:
    store = open_dir / "agentsynth.duckdb"
    spec = agentsynth.RunSpec(name="honest", store=str(store), samples=1, envs=[agentsynth.EnvSpec(
        id="code", tasks=TASKS, max_turns=1, feedback="none")])
    assert agentsynth.Runner(spec).run().ok == TASKS
    env = CodeEnv()
    tasks = []
    for seed in range(TASKS):
        env.reset(seed=seed)
        tasks.append(env.task)
    assert {t.task_id for t in tasks} == {r[0] for r in q(store, "SELECT task_id FROM tasks")}
    # the attack works wherever the store is readable: run in this process, it answers every test
    for task in tasks:
        ns: dict = {}
        exec(attacks.store_reader(task.metadata["function"], [str(store)]), ns)
        fn = ns[task.metadata["function"]]
        assert [fn(*args) for args in task.metadata["tests"]] == task.metadata["expected"]
    # a process whose command line names the store, as `agentsynth run --store PATH` does
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "--store", str(store)])
    try:
        seen = run_python(f"import glob, os\nprint(os.path.exists({str(store)!r}), os.path.exists({str(open_dir)!r}))\n"
                          "cmds = [open(p, 'rb').read() for p in glob.glob('/proc/[0-9]*/cmdline')]\n"
                          f"print(len(cmds), any({str(store).encode()!r} in c for c in cmds))\nprint(sorted(os.listdir('/')))")
        exists, procs, top = seen.stdout.splitlines()
        assert exists == "False False"
        assert procs == "2 False"  # its own PID namespace: bubblewrap's reaper and itself
        assert not {"tmp", "home", "etc", "var", "srv", "opt"} & set(eval(top))
        for told in ([str(store)], []):
            for task in tasks:
                reply = f"```python\n{attacks.store_reader(task.metadata['function'], told)}```"
                passed, why = check(task, reply)
                assert not passed and "LookupError: no task metadata found" in why, why
    finally:
        holder.kill()
        holder.wait()


def test_exec_of_a_fresh_interpreter_gains_nothing(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    res = run_python(attacks.exec_then_connect(port))
    assert not res.ok and res.killed_reason == "forbidden: exec"
    assert "starting programs is disabled in the sandbox" in res.stderr and "connected" not in res.stdout
    res = run_python(attacks.exec_then_connect(port, unhook=True))  # no guard left to refuse it
    assert res.stdout.startswith("guard off\n") and "connected" not in res.stdout and not res.ok
    if ISO.seccomp:
        assert res.killed_reason == "forbidden: system call"


def test_swapping_the_guard_out_reaches_nothing(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    res = run_python(attacks.UNHOOK + f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')")
    assert res.stdout == "guard off\n" and not res.ok
    if ISO.seccomp:
        assert res.killed_reason == "forbidden: system call"


def _host_has_segment() -> bool:
    return ctypes.CDLL(None).shmget(attacks.SHM_KEY, 0, 0) >= 0


def test_system_v_shared_memory_does_not_outlive_a_run() -> None:
    attacks.remove_shm()
    try:
        first = run_python(attacks.SHM_WRITER)
        second = run_python(attacks.SHM_READER)
        assert not first.ok and "secret" not in second.stdout and not second.ok
        assert not _host_has_segment()
        if ISO.seccomp:
            assert first.killed_reason == second.killed_reason == "forbidden: system call"
    finally:
        attacks.remove_shm()


@pytest.mark.skipif(not ISO.namespaces, reason="no namespaces here")
def test_each_run_has_its_own_ipc_namespace() -> None:
    code = "import os\nprint(os.readlink('/proc/self/ns/ipc'))"
    seen = [run_python(code).stdout.strip() for _ in range(2)]
    assert len({*seen, os.readlink("/proc/self/ns/ipc")}) == 3, seen


def test_sigkill_of_the_runner_leaves_no_process_and_no_directory(open_dir: Path) -> None:
    survivors, left, after_next_start = attacks.kill_runner_mid_run(str(open_dir))
    assert survivors == []
    assert after_next_start == []
    if ISO.bwrap:  # nothing was ever on the host's disk
        assert left == []


def test_stale_run_directories_are_removed_at_the_next_start(open_dir: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])  # a process that has exited: its pid names a dead owner
    dead.wait()
    start = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()[19]
    names = {"dead": f"{PREFIX}{dead.pid}-123-abc", "mine": f"{PREFIX}{os.getpid()}-{start}-abc",
             "reused pid": f"{PREFIX}{os.getpid()}-1-abc", "unnamed": f"{PREFIX}abc"}
    for name in names.values():
        (open_dir / name / "work").mkdir(parents=True)
        (open_dir / name / "main.py").write_text("import time\n")
    removed = clean_stale(str(open_dir))
    assert sorted(removed) == sorted(str(open_dir / names[k]) for k in ("dead", "reused pid"))
    assert sorted(os.listdir(open_dir)) == sorted([names["mine"], names["unnamed"]])


def test_without_bubblewrap_the_sandbox_warns_and_says_what_applies() -> None:
    code = ("import warnings\nwarnings.simplefilter('always')\nfrom agentsynth.sandbox import isolation, run_python\n"
            "print(isolation().bwrap, run_python('print(7)').stdout.strip())")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PATH": os.path.dirname(sys.executable)})
    assert res.stdout == "None 7\n"
    assert "RuntimeWarning: bubblewrap (bwrap) is not installed; the code sandbox falls back" in res.stderr
    if shutil.which("bwrap"):
        assert ISO.bwrap and "bubblewrap" in ISO.describe()


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_seccomp_filter_is_well_formed(machine: str) -> None:
    prog = filter_program(machine)
    assert prog is not None and len(prog) % 8 == 0
    n = len(prog) // 8
    for i in range(n):
        code, jt, jf, _ = struct.unpack_from("=HBBI", prog, 8 * i)
        if code == 0x06:  # a return
            continue
        assert i + 1 + max(jt, jf) < n  # every jump lands inside the program
    assert filter_program("riscv64") is None
