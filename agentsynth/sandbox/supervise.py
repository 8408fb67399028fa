"""Watching a started run: the wall clock, output capture and limits, the bootstrap's status notes;
how it ended and why; and the cleanup (the process group, under bubblewrap the init of the PID
namespace, which takes every process of the run with it, else every process of the per-run uid).
"""

from __future__ import annotations

import os
import re
import select
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass

from .probe import Isolation

__all__ = ["SandboxResult", "supervise"]

_STATUS_ROOM = 4096


@dataclass(slots=True)
class SandboxResult:
    """The outcome of one :func:`run_python` call.

    ``ok``: exit status 0 and no limit hit. ``stdout`` / ``stderr``: decoded (UTF-8, invalid bytes
    replaced), each cut at ``max_output`` bytes with a ``[... truncated ...]`` marker.
    ``timed_out``: stopped for time (wall clock or CPU limit). ``killed_reason``: why the sandbox
    stopped or failed the run: ``"wall-clock timeout"``, ``"cpu limit"``, ``"memory limit"`` (an
    uncaught ``MemoryError``), ``"output limit"``, ``"file size limit"``, ``"forbidden: network"``,
    ``"forbidden: ctypes"``, ``"forbidden: exec"`` (the in-process guard refused the attempt, even if
    the code caught the error), ``"forbidden: system call"`` (the seccomp filter killed it: it started
    a program, opened a network socket or created System V IPC objects once the guard was out of
    the way), ``"killed by signal SIGSEGV"``...; None when it ran to its own end.
    ``pid``: the process :func:`run_python` started (bubblewrap's, or the interpreter without it),
    which was also its process group and session id. ``uid``: the uid the code ran as outside any
    user namespace (None: the caller's own).
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


def _kill_uid(python: str, uid: int) -> None:
    """Kill every process of ``uid`` (including ones that left the process group): ``kill(-1)``
    from a process running as that uid signals all of them but itself."""
    subprocess.run([python, "-I", "-S", "-c", "import os, signal; os.kill(-1, signal.SIGKILL)"], user=uid, group=uid,
                   extra_groups=[], env={}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=10, check=False)


class _Run:
    """The started process and, under bubblewrap, a pidfd of the init of its PID namespace (from
    bubblewrap's ``--info-fd``): killing that init kills every process of the run, and once it has
    exited they all have."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.init_fd: int | None = None

    def learn(self, info: bytes) -> None:
        m = re.search(rb'"child-pid":\s*(\d+)\D', info)  # the whole number, not a chunk of it
        if self.init_fd is not None or not m:
            return
        pid = int(m.group(1))
        try:
            fd = os.pidfd_open(pid)
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            return
        if ppid == self.proc.pid:  # bubblewrap's child (not reaped yet, so not a reused pid)
            self.init_fd = fd
        else:
            os.close(fd)

    def kill(self) -> None:
        if self.init_fd is not None:
            try:
                signal.pidfd_send_signal(self.init_fd, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def wait_gone(self, timeout: float) -> None:
        """Wait until the namespace's init has exited (then so has every process in it)."""
        if self.init_fd is not None:
            select.select([self.init_fd], [], [], timeout)
            os.close(self.init_fd)
            self.init_fd = None


def supervise(proc: subprocess.Popen, status_r: int, info_r: int | None, start: float, timeout_s: float, cpu: int,
              max_output: int, max_procs: int, uid: int | None, iso: Isolation) -> SandboxResult:
    """Watch ``proc`` until it ends or a limit stops it, clean up, and say what happened."""
    assert proc.stdout is not None and proc.stderr is not None
    run = _Run(proc)
    out = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray(), status_r: bytearray()}
    if info_r is not None:
        out[info_r] = bytearray()
    notes = {status_r, info_r}
    over = {fd: False for fd in out}
    deadline = start + max(0.0, timeout_s)
    reason: str | None = None
    timed_out = False
    wait_status: tuple[int, float] | None = None  # (exit status, cpu seconds) once reaped

    def reap(block: bool) -> None:
        nonlocal wait_status
        if wait_status is None:
            pid, status, ru = os.wait4(proc.pid, 0 if block else os.WNOHANG)
            if pid:
                wait_status = (status, ru.ru_utime + ru.ru_stime)

    exited_at: float | None = None
    try:
        with selectors.DefaultSelector() as sel:
            for fd in out:
                sel.register(fd, selectors.EVENT_READ)
            while sel.get_map():
                now = time.monotonic()
                if now >= deadline:
                    reason, timed_out = "wall-clock timeout", True
                    break
                for key, _ in sel.select(min(deadline - now, 0.1)):
                    data = os.read(key.fd, 65536)
                    if not data:
                        sel.unregister(key.fd)
                        continue
                    buf = out[key.fd]
                    room = _STATUS_ROOM - len(buf) if key.fd in notes else max_output + 1 - len(buf)
                    buf += data[: max(0, room)]
                    if key.fd == info_r:
                        run.learn(bytes(buf))
                    elif key.fd not in notes and len(buf) > max_output:
                        over[key.fd] = True
                        reason = "output limit"
                if reason:
                    break
                reap(False)
                if wait_status is not None:  # exited, but something still holds its pipes open
                    exited_at = exited_at or time.monotonic()
                    if time.monotonic() - exited_at > 0.2:
                        break
        if reason:
            run.kill()
        while wait_status is None and reason is None:  # closed its pipes but runs on
            reap(False)
            if wait_status is None:
                if time.monotonic() >= deadline:
                    reason, timed_out = "wall-clock timeout", True
                    run.kill()
                else:
                    time.sleep(0.01)
        reap(True)
        run.kill()  # leftovers in the process group (and, under bubblewrap, its PID namespace)
    finally:
        run.wait_gone(2.0)
    if uid is not None and max_procs > 0 and not iso.bwrap:  # with bwrap, the PID namespace died with its init
        _kill_uid(iso.python, uid)
    assert wait_status is not None
    status, cpu_used = wait_status
    rc = os.waitstatus_to_exitcode(status)
    proc.returncode = rc
    # bubblewrap exits with 128 + N when the program was killed by signal N
    sig = -rc if rc < 0 else rc - 128 if iso.bwrap and 128 < rc < 128 + signal.NSIG else 0
    reason, timed_out = _classify(reason, timed_out, sig, cpu_used >= cpu - 0.05,
                                  bytes(out[status_r]).decode(errors="replace").split())

    def text(fd: int) -> str:
        s = bytes(out[fd][:max_output]).decode("utf-8", errors="replace")
        return s + f"\n[... truncated: more than {max_output} bytes of output]" if over[fd] else s

    return SandboxResult(ok=rc == 0 and reason is None, returncode=rc, stdout=text(proc.stdout.fileno()),
                         stderr=text(proc.stderr.fileno()), timed_out=timed_out, killed_reason=reason,
                         duration_s=time.monotonic() - start, pid=proc.pid, uid=uid)


def _classify(reason: str | None, timed_out: bool, sig: int, cpu_spent: bool, notes: list[str]) -> tuple[str | None, bool]:
    """Why the run failed (the supervisor's own reason first, then the fatal signal, then the
    bootstrap's notes), and whether that was for time."""
    if reason is None and sig:
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu_spent):
            reason, timed_out = "cpu limit", True
        elif sig == signal.SIGXFSZ:
            reason = "file size limit"
        elif sig == signal.SIGSYS:
            reason = "forbidden: system call"
        else:
            try:
                reason = f"killed by signal {signal.Signals(sig).name}"
            except ValueError:
                reason = f"killed by signal {sig}"
    for what in ("network", "ctypes", "exec"):
        if reason is None and what in notes:
            reason = f"forbidden: {what}"
    if reason is None and "memory" in notes:
        reason = "memory limit"
    return reason, timed_out
