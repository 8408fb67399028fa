"""The sandbox: every hostile case is contained, reported with a reason, and leaves nothing behind."""

from __future__ import annotations

import glob
import os
import resource
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agentsynth.sandbox import SandboxResult, isolation, run_python

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="the sandbox needs Linux")
ISO = isolation()


def _live_processes(res: SandboxResult) -> list[str]:
    """Processes (not zombies) still in the child's session or process group, or of its uid."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
            uid = os.stat(f"/proc/{p}").st_uid
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, pgid, sid = fields[0], int(fields[2]), int(fields[3])
        if state != "Z" and (res.pid in (pgid, sid) or (res.uid is not None and uid == res.uid)):
            found.append(f"{p} {state}")
    return found


def _assert_gone(res: SandboxResult) -> None:
    """Nothing of the run is alive; orphaned children that were killed may linger as zombies
    until init reaps them, after which the process group is gone."""
    assert _live_processes(res) == []
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            os.killpg(res.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    assert _live_processes(res) == []  # only zombies left in the group


def test_normal_code_runs_and_returns_its_output() -> None:
    res = run_python("import sys\nprint('hello', sum(range(10)))\nprint(sys.stdin.read()[::-1], 'é✓')", stdin="abc")
    assert res.ok and res.returncode == 0 and not res.timed_out and res.killed_reason is None
    assert res.stdout == "hello 45\ncba é✓\n" and res.stderr == ""
    assert res.duration_s < 2
    _assert_gone(res)


def test_errors_and_exit_codes_are_failures_without_a_limit_reason() -> None:
    res = run_python("import sys\nprint('partial')\nsys.exit(3)")
    assert (res.ok, res.returncode, res.killed_reason, res.stdout) == (False, 3, None, "partial\n")
    res = run_python("def f(:\n    pass")
    assert not res.ok and res.returncode == 1 and "SyntaxError" in res.stderr
    res = run_python("1 / 0")
    assert not res.ok and res.stderr.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "boot.py" not in res.stderr  # the traceback shows the user's code, not the bootstrap


def test_infinite_loop_is_stopped_for_time() -> None:
    res = run_python("while True: pass", timeout_s=2, cpu_s=1)
    assert not res.ok and res.timed_out
    assert res.killed_reason in ("cpu limit", "wall-clock timeout")
    assert res.duration_s < 3
    _assert_gone(res)
    res = run_python("import time\ntime.sleep(30)", timeout_s=0.5)  # no CPU used: the wall clock
    assert (res.ok, res.timed_out, res.killed_reason) == (False, True, "wall-clock timeout")
    assert res.duration_s < 2
    _assert_gone(res)


@pytest.mark.parametrize("code", ["x = ' ' * 10**10", "x = []\nwhile True:\n    x.append(' ' * 10**6)"])
def test_memory_bomb_hits_the_memory_limit(code: str) -> None:
    res = run_python(code, memory_mb=128, timeout_s=5)
    assert not res.ok and res.killed_reason == "memory limit" and "MemoryError" in res.stderr
    assert res.duration_s < 5
    _assert_gone(res)


def test_fork_bomb_is_contained_and_leaves_no_process() -> None:
    t = time.monotonic()
    res = run_python("import os\nwhile True:\n    os.fork()", timeout_s=2, cpu_s=2)
    assert not res.ok and time.monotonic() - t < 4
    if ISO.nproc:  # no process may be started at all: the first fork fails
        assert "BlockingIOError" in res.stderr and not res.timed_out
    _assert_gone(res)


@pytest.mark.skipif(not ISO.nproc, reason="RLIMIT_NPROC is not enforced here (root without a uid drop)")
def test_fork_bomb_with_a_process_budget_is_contained_and_cleaned_up() -> None:
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    res = run_python(code, timeout_s=1.5, cpu_s=5, max_procs=5)
    assert not res.ok and res.timed_out and res.duration_s < 3
    _assert_gone(res)


@pytest.mark.skipif(not ISO.uid_drop, reason="only a per-run uid lets the sandbox find children that left the session")
def test_children_that_leave_the_session_are_killed() -> None:
    code = "import os, time\nfor i in range(3):\n    if os.fork() == 0:\n        os.setsid()\n        time.sleep(60)\nprint('parent done')"
    res = run_python(code, timeout_s=3, max_procs=5)
    assert res.stdout.count("parent done") == 1 and res.duration_s < 3
    _assert_gone(res)


@pytest.mark.skipif(not ISO.uid_drop, reason="without a uid drop the code may write wherever the caller may")
def test_writing_outside_the_sandbox_directory_fails(tmp_path: Path) -> None:
    targets = [tmp_path / "outside.txt", Path("/etc/agentsynth-sandbox-test"), Path(__file__).parent / "sandbox-test.txt"]
    for target in targets:
        res = run_python(f"open({str(target)!r}, 'w').write('escaped')")
        # not there at all under bubblewrap; else read-only or not writable for the sandbox user
        assert not res.ok and any(e in res.stderr for e in ("FileNotFoundError", "PermissionError", "Read-only")), res.stderr
        assert not target.exists()
    res = run_python("open('inside.txt', 'w').write('fine')\nprint(open('inside.txt').read())")
    assert res.ok and res.stdout == "fine\n"


@pytest.mark.skipif(not (ISO.namespaces and ISO.uid_drop), reason="world-writable dirs are only read-only in a mount namespace")
def test_shared_temp_dirs_are_read_only() -> None:
    name = f"agentsynth-sandbox-test-{os.getpid()}"
    for d in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(d):
            res = run_python(f"open({d + '/' + name!r}, 'w').write('x')")
            assert not res.ok and ("Read-only file system" in res.stderr or (ISO.bwrap and "FileNotFoundError" in res.stderr))
            assert not os.path.exists(f"{d}/{name}")


def test_network_is_refused_with_the_network_reason() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        port = server.getsockname()[1]
        res = run_python(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)")
        assert not res.ok and res.killed_reason == "forbidden: network"
        assert "network access is disabled in the sandbox" in res.stderr
        caught = run_python(f"import socket\ntry:\n    socket.socket().connect(('127.0.0.1', {port}))\nexcept PermissionError:\n    print('caught')")
        assert caught.stdout == "caught\n" and not caught.ok and caught.killed_reason == "forbidden: network"
        bypass = run_python(f"import importlib, _socket\nimportlib.reload(_socket)\n_socket.socket().connect(('127.0.0.1', {port}))")
        assert not bypass.ok and bypass.killed_reason == "forbidden: network"  # an audit hook: reload does not undo it
        via_ctypes = run_python("import ctypes\nctypes.CDLL(None).socket(2, 1, 0)")
        assert not via_ctypes.ok and via_ctypes.killed_reason == "forbidden: ctypes"
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever connected
    assert run_python("import asyncio\nasync def f():\n    return 7\nprint(asyncio.run(f()))").stdout == "7\n"


@pytest.mark.skipif(not ISO.namespaces, reason="no network namespace here")
def test_network_namespace_has_no_way_out() -> None:
    res = run_python("print(sorted(line.split(':')[0].strip() for line in open('/proc/net/dev').readlines()[2:]))")
    assert res.ok and res.stdout == "['lo']\n"  # only a loopback device, and it is down


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_output_flood_is_cut_fast(stream: str) -> None:
    res = run_python(f"import sys\nwhile True:\n    print('x' * 10000, file=sys.{stream})", timeout_s=5, max_output=50_000)
    assert not res.ok and res.killed_reason == "output limit" and not res.timed_out
    assert res.duration_s < 2
    text = getattr(res, stream)
    assert text.startswith("x" * 1000) and "truncated" in text and len(text) < 50_200
    _assert_gone(res)


def test_the_test_process_is_unaffected_and_temp_dirs_are_removed() -> None:
    cwd, env = os.getcwd(), dict(os.environ)
    limits = {r: resource.getrlimit(r) for r in (resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_NPROC)}
    threads = threading.active_count()
    res = run_python("import os\nprint(os.getcwd())\nprint(os.environ.get('HTTP_PROXY'), os.environ['HOME'] == os.getcwd())")
    workdir, proxy_and_home = res.stdout.splitlines()
    assert proxy_and_home == "None True"
    if ISO.bwrap:  # a tmpfs of its own inside the sandbox: nothing on the host's disk
        assert workdir == "/work"
    else:
        assert not os.path.exists(workdir) and not os.path.exists(os.path.dirname(workdir))
    assert glob.glob(os.path.join(tempfile.gettempdir(), f"agentsynth-sandbox-{os.getpid()}-*")) == []
    assert (os.getcwd(), dict(os.environ), threading.active_count()) == (cwd, env, threads)
    assert {r: resource.getrlimit(r) for r in limits} == limits


def test_concurrent_runs_from_threads_are_independent() -> None:
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda i: run_python(f"print({i} * {i})"), range(12)))
    assert [r.stdout for r in results] == [f"{i * i}\n" for i in range(12)]
    assert all(r.ok for r in results)
    if ISO.uid_drop:
        assert len({r.uid for r in results}) == 12
