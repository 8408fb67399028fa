"""Run untrusted Python in a separate, resource-limited process (Linux only).

    from agentsynth.sandbox import run_python
    r = run_python("print(sum(range(10)))")
    r.ok, r.stdout.strip()  # (True, '45')

:func:`run_python` starts ``python -I -S -B -X utf8 boot.py`` in a fresh temporary directory with
a minimal environment (``PATH``, ``HOME`` and ``TMPDIR`` = that directory, ``LANG``; no proxies),
in a new session (its own process group), stdin from a file, stdout/stderr read incrementally.
A bootstrap script installs a network guard, then runs the user code as ``__main__`` (``exec``).
Whatever happens, the whole process group is killed at the end and the directory removed.

What it does, in layers (each applied only where it works; :func:`isolation` says which did):

* **Resource limits** (``setrlimit`` in the child before ``exec``): CPU seconds (``RLIMIT_CPU``,
  rounded up; the kernel sends SIGXCPU), address space (``RLIMIT_AS`` = ``memory_mb``: allocations
  beyond it raise ``MemoryError``), file size (``RLIMIT_FSIZE``, 16 MiB), open files
  (``RLIMIT_NOFILE``, 64), no core dumps, and processes (``RLIMIT_NPROC``, below).
* **Wall clock and output**: the parent kills the process group (``killpg``) when ``timeout_s``
  passes or when stdout or stderr exceeds ``max_output`` bytes (so printing gigabytes costs
  milliseconds, not memory).
* **An unprivileged user** (when the caller is root): the child runs under a fresh, otherwise
  unused uid/gid per run (not the shared ``nobody``: concurrent runs must not be able to signal,
  ptrace or count against each other), with no supplementary groups. Ordinary file permissions
  then block writes outside its directory (the project, ``/etc``, other users' temp dirs), and
  ``RLIMIT_NPROC`` = 1 + ``max_procs`` really limits its processes (threads count too), so a fork
  bomb gets ``EAGAIN`` on its first ``fork``. After a run with ``max_procs > 0`` every process of
  that uid is killed (``kill(-1)`` as that uid), which also catches children that ``setsid()``.
  The interpreter must be executable by that user: if ``sys.executable`` is not (e.g. under a
  0700 ``/root``), the first of ``/usr/bin/python3.X``, ``/usr/local/bin/python3.X``,
  ``/usr/bin/python3`` that is is used (:func:`isolation` names it).
* **Namespaces** (when root and the kernel allows): ``unshare(CLONE_NEWNS | CLONE_NEWNET)``
  through libc. The private network namespace has only a downed loopback device, so no socket
  reaches anything (not even 127.0.0.1), whatever the code does. In the private mount namespace
  the world-writable ``/tmp``, ``/var/tmp``, ``/dev/shm`` and ``/run/lock`` are remounted
  read-only and the working directory is a fresh 64 MiB tmpfs (which also caps disk use).
* **Network guard** (always, in process): the bootstrap installs an audit hook
  (``sys.addaudithook``, which Python code cannot remove) that makes creating any socket but an
  ``AF_UNIX`` one, and every ``connect``, ``bind``, ``sendto``, ``sendmsg`` and name lookup, raise
  ``PermissionError("network access is disabled in the sandbox")``. ``socketpair`` still works
  (it reaches nothing; ``asyncio`` needs it). The same hook refuses ``ctypes`` (loading a library
  or looking up a symbol), the easy way around it. An attempt is reported as
  ``killed_reason = "forbidden: network"`` (or ``"forbidden: ctypes"``) even if the code catches
  the error.

What it does NOT protect against:

* The network guard alone is an in-process check: it sees only what goes through Python's
  audited APIs, and a determined program can get around it (a subprocess where ``max_procs``
  allows one, writing to ``/proc/self/mem``, an interpreter bug). Only the network namespace
  makes "no network" hold; without it (``unshare`` refused) network access is merely inconvenient.
* Without a uid drop (the caller is not root) the code runs as the caller and can write wherever
  the caller can, read the caller's files and signal the caller's processes; for a non-root
  caller ``RLIMIT_NPROC`` counts all of the caller's processes (``max_procs = 0`` still means "no
  fork"; ``max_procs > 0`` is then approximate) and a child that calls ``setsid()`` escapes the
  final ``killpg``.
* Reads are not restricted: the code can read every world-readable file (the project source,
  ``/etc/passwd``, ``/proc``) and see other processes in ``/proc``. There is no seccomp filter,
  no PID namespace, no cgroup: kernel exploits, side channels and memory not counted by
  ``RLIMIT_AS`` (kernel buffers, a tmpfs) are out of scope.
* ``preexec_fn`` runs Python in the forked child; CPython documents it as not safe in the
  presence of threads. It only makes system calls (no imports, no locks) to keep the risk low.

This is a guard against accidents and sloppy or mildly hostile code (infinite loops, memory and
fork bombs, floods of output, stray writes, network calls), not a security boundary for
adversarial code; use a VM or container runtime for that.
"""

from .probe import Isolation, isolation
from .run import SandboxResult, run_python

__all__ = ["Isolation", "SandboxResult", "isolation", "run_python"]
