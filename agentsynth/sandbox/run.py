"""Running code in the sandbox: :func:`run_python` prepares the directory and the environment,
starts the child, supervises it (wall clock, output capture and limits, status notes from the
bootstrap), classifies how it ended, and cleans up (the process group, and every process of the
per-run uid).
"""

from __future__ import annotations

import math
import os
import resource
import secrets
import selectors
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass

from .child import _BOOT, FILE_LIMIT, NOFILE_LIMIT, _preexec
from .probe import Isolation, isolation

__all__ = ["SandboxResult", "run_python"]


@dataclass(slots=True)
class SandboxResult:
    """The outcome of one :func:`run_python` call.

    ``ok``: exit status 0 and no limit hit. ``stdout`` / ``stderr``: decoded (UTF-8, invalid bytes
    replaced), each cut at ``max_output`` bytes with a ``[... truncated ...]`` marker.
    ``timed_out``: stopped for time (wall clock or CPU limit). ``killed_reason``: why the sandbox
    stopped or failed the run: ``"wall-clock timeout"``, ``"cpu limit"``, ``"memory limit"`` (an
    uncaught ``MemoryError``), ``"output limit"``, ``"forbidden: network"`` (a network call was
    attempted), ``"file size limit"``, ``"killed by signal SIGSEGV"``...; None when it ran to its
    own end. ``pid``: the child's pid, which was also its process group and session id.
    ``uid``: the uid the code ran as (None: the caller's own).
    """

    ok: bool
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    killed_reason: str | None
    duration_s: float
    pid: int = 0
    uid: int | None = None


def _user_processes() -> int:
    uid = str(os.getuid())
    n = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("Uid:"):
                            n += line.split()[1] == uid
                            break
            except OSError:
                pass
    return n


def _kill_uid(python: str, uid: int) -> None:
    """Kill every process of ``uid`` (including ones that left the process group): ``kill(-1)``
    from a process running as that uid signals all of them but itself."""
    subprocess.run([python, "-I", "-S", "-c", "import os, signal; os.kill(-1, signal.SIGKILL)"], user=uid, group=uid,
                   extra_groups=[], env={}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=10, check=False)


def run_python(
    code: str,
    *,
    stdin: str = "",
    timeout_s: float = 5.0,
    cpu_s: float = 5.0,
    memory_mb: int = 256,
    max_output: int = 64_000,
    max_procs: int = 0,
) -> SandboxResult:
    """Run ``code`` as a Python program in the sandbox (see the module docstring) and return what
    happened. Never raises for anything the code does.

    ``stdin``: the program's standard input. ``timeout_s``: wall-clock limit. ``cpu_s``: CPU-time
    limit (rounded up to whole seconds, at least 1). ``memory_mb``: address-space limit.
    ``max_output``: bytes kept (and allowed) per stream. ``max_procs``: extra processes or threads
    the program may start (0: it cannot ``fork``).
    """
    return _run(code, stdin, timeout_s, cpu_s, memory_mb, max_output, max_procs, isolation())


def _run(code: str, stdin: str, timeout_s: float, cpu_s: float, memory_mb: int, max_output: int,
         max_procs: int, iso: Isolation) -> SandboxResult:
    start = time.monotonic()
    max_output = max(0, int(max_output))
    cpu = max(1, math.ceil(cpu_s))
    limits = [
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_AS, max(16, int(memory_mb)) << 20),
        (resource.RLIMIT_FSIZE, FILE_LIMIT),
        (resource.RLIMIT_NOFILE, NOFILE_LIMIT),
        (resource.RLIMIT_CORE, 0),
    ]
    uid = 0x40000000 + secrets.randbelow(0x3FFF0000) if iso.uid_drop else None
    if uid is not None:
        nproc = 1 + max(0, max_procs)
    else:
        nproc = 0 if max_procs <= 0 else _user_processes() + max_procs
    with tempfile.TemporaryDirectory(prefix="agentsynth-sandbox-", ignore_cleanup_errors=True) as base, \
            tempfile.TemporaryFile() as stdin_file:
        os.chmod(base, 0o711)  # the sandbox user may reach its files by name, not list or write
        work = os.path.join(base, "work")
        os.mkdir(work, 0o700)
        if uid is not None:
            os.chown(work, uid, uid)
        boot, main = os.path.join(base, "boot.py"), os.path.join(base, "main.py")
        for path, text in ((boot, _BOOT), (main, code)):
            with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
                f.write(text)
            os.chmod(path, 0o644)
        stdin_file.write(stdin.encode("utf-8", "surrogatepass"))
        stdin_file.seek(0)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "TMPDIR": work, "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8"}
        status_r, status_w = os.pipe()
        try:
            proc = subprocess.Popen(
                [iso.python, "-I", "-S", "-B", "-X", "utf8", boot, str(status_w), main],
                stdin=stdin_file, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=work, env=env,
                start_new_session=True, pass_fds=(status_w,), bufsize=0,
                preexec_fn=_preexec(iso, work, uid, limits, nproc),
            )
        except BaseException:
            os.close(status_r)
            raise
        finally:
            os.close(status_w)
        try:
            return _supervise(proc, status_r, start, timeout_s, cpu, max_output, max_procs, uid, iso.python)
        finally:
            os.close(status_r)
            for s in (proc.stdout, proc.stderr):
                if s is not None:
                    s.close()


def _supervise(proc: subprocess.Popen, status_r: int, start: float, timeout_s: float, cpu: int,
               max_output: int, max_procs: int, uid: int | None, python: str) -> SandboxResult:
    assert proc.stdout is not None and proc.stderr is not None
    out = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray(), status_r: bytearray()}
    over = {fd: False for fd in out}
    deadline = start + max(0.0, timeout_s)
    reason: str | None = None
    timed_out = False
    wait_status: tuple[int, float] | None = None  # (exit status, cpu seconds) once reaped

    def kill() -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def reap(block: bool) -> None:
        nonlocal wait_status
        if wait_status is None:
            pid, status, ru = os.wait4(proc.pid, 0 if block else os.WNOHANG)
            if pid:
                wait_status = (status, ru.ru_utime + ru.ru_stime)

    exited_at: float | None = None
    with selectors.DefaultSelector() as sel:
        for fd in out:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            now = time.monotonic()
            if now >= deadline:
                reason, timed_out = "wall-clock timeout", True
                kill()
                break
            for key, _ in sel.select(min(deadline - now, 0.1)):
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fd)
                    continue
                buf = out[key.fd]
                room = max_output + 1 - len(buf) if key.fd != status_r else 4096 - len(buf)
                buf += data[: max(0, room)]
                if key.fd != status_r and len(buf) > max_output:
                    over[key.fd] = True
                    reason = "output limit"
            if reason:
                kill()
                break
            reap(False)
            if wait_status is not None:  # exited, but something still holds its pipes open
                exited_at = exited_at or time.monotonic()
                if time.monotonic() - exited_at > 0.2:
                    break
    while wait_status is None and reason is None:  # closed its pipes but runs on
        reap(False)
        if wait_status is None:
            if time.monotonic() >= deadline:
                reason, timed_out = "wall-clock timeout", True
                kill()
            else:
                time.sleep(0.01)
    reap(True)
    kill()  # leftovers in the process group
    if uid is not None and max_procs > 0:
        _kill_uid(python, uid)
    assert wait_status is not None
    status, cpu_used = wait_status
    rc = os.waitstatus_to_exitcode(status)
    proc.returncode = rc
    notes = bytes(out[status_r]).decode(errors="replace").split()
    if reason is None and rc < 0:
        sig = -rc
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu_used >= cpu - 0.05):
            reason, timed_out = "cpu limit", True
        elif sig == signal.SIGXFSZ:
            reason = "file size limit"
        else:
            try:
                reason = f"killed by signal {signal.Signals(sig).name}"
            except ValueError:
                reason = f"killed by signal {sig}"
    for what in ("network", "ctypes"):
        if reason is None and what in notes:
            reason = f"forbidden: {what}"
    if reason is None and "memory" in notes:
        reason = "memory limit"

    def text(fd: int) -> str:
        s = bytes(out[fd][:max_output]).decode("utf-8", errors="replace")
        return s + f"\n[... truncated: more than {max_output} bytes of output]" if over[fd] else s

    return SandboxResult(
        ok=rc == 0 and reason is None,
        returncode=rc,
        stdout=text(proc.stdout.fileno()),
        stderr=text(proc.stderr.fileno()),
        timed_out=timed_out,
        killed_reason=reason,
        duration_s=time.monotonic() - start,
        pid=proc.pid,
        uid=uid,
    )
