"""Running code in the sandbox: :func:`run_python` prepares the program (in memory for bubblewrap,
else in a per-run directory), the limits and the environment, and starts the child: bubblewrap
running the interpreter, or the interpreter itself; :mod:`.supervise` watches it and cleans up.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import secrets
import shutil
import subprocess
import tempfile
import time

from .bwrap import BOOT, MAIN, WORK, bwrap_argv
from .child import _BOOT, DISK_MB, FILE_LIMIT, NOFILE_LIMIT, _bwrap_preexec, _preexec
from .probe import Isolation, isolation
from .seccomp import filter_program
from .supervise import SandboxResult, supervise
from .workdir import make_run_dir

__all__ = ["SandboxResult", "run_python"]


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


def _memfd(name: str, text: str) -> int:
    """An anonymous in-memory file holding ``text``, at offset 0."""
    fd = os.memfd_create(name)
    os.write(fd, text.encode("utf-8", "surrogatepass"))
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


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
    extra = max(0, max_procs)
    seccomp = (filter_program() or b"").hex() if iso.seccomp else ""
    with contextlib.ExitStack() as stack:
        stdin_file = stack.enter_context(tempfile.TemporaryFile())
        stdin_file.write(stdin.encode("utf-8", "surrogatepass"))
        stdin_file.seek(0)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONIOENCODING": "utf-8"}
        write_ends: list[int] = []  # closed here once the child has them (or on an error before)
        stack.callback(lambda: [os.close(fd) for fd in write_ends])
        status_r, status_w = os.pipe()
        stack.callback(os.close, status_r)
        write_ends.append(status_w)
        info_r: int | None = None
        if iso.bwrap:  # nothing on the host's disk: bubblewrap copies both files from memory
            info_r, info_w = os.pipe()
            stack.callback(os.close, info_r)
            write_ends.append(info_w)
            fds = [_memfd("boot.py", _BOOT), _memfd("main.py", code)]
            for fd in fds:
                stack.callback(os.close, fd)
            # inside: the reaper (PID 1) and the interpreter count; outside also bwrap itself
            argv = bwrap_argv(iso.bwrap, iso.python, info_w, fds[0], fds[1], DISK_MB) + [
                "-I", "-S", "-B", "-X", "utf8", BOOT, str(status_w), MAIN, str(2 + extra), seccomp]
            env.update(HOME=WORK, TMPDIR=WORK)
            cwd, pass_fds = "/", (status_w, info_w, *fds)
            preexec = _bwrap_preexec(uid, limits, 3 + extra if uid is not None else None)
        else:
            base = make_run_dir()
            stack.callback(shutil.rmtree, base, ignore_errors=True)
            os.chmod(base, 0o711)  # the sandbox user may reach its files by name, not list or write
            cwd = os.path.join(base, "work")
            os.mkdir(cwd, 0o700)
            if uid is not None:
                os.chown(cwd, uid, uid)
            boot, main = os.path.join(base, "boot.py"), os.path.join(base, "main.py")
            for path, text in ((boot, _BOOT), (main, code)):
                with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
                    f.write(text)
                os.chmod(path, 0o644)
            argv = [iso.python, "-I", "-S", "-B", "-X", "utf8", boot, str(status_w), main, "-1", seccomp]
            env.update(HOME=cwd, TMPDIR=cwd)
            pass_fds = (status_w,)
            if uid is not None:
                nproc = 1 + extra
            else:
                nproc = 0 if max_procs <= 0 else _user_processes() + max_procs
            preexec = _preexec(iso, cwd, uid, limits, nproc)
        try:
            proc = subprocess.Popen(argv, stdin=stdin_file, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
                                    env=env, start_new_session=True, pass_fds=pass_fds, bufsize=0, preexec_fn=preexec)
        finally:
            while write_ends:  # only the child writes to them
                os.close(write_ends.pop())
        try:
            return supervise(proc, status_r, info_r, start, timeout_s, cpu, max_output, max_procs, uid, iso)
        finally:
            for s in (proc.stdout, proc.stderr):
                if s is not None:
                    s.close()
