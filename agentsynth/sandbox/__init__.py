"""Run untrusted Python in a separate, resource-limited, isolated process (Linux only).

    from agentsynth.sandbox import run_python
    r = run_python("print(sum(range(10)))")
    r.ok, r.stdout.strip()  # (True, '45')

:func:`run_python` starts ``python -I -S -B -X utf8 boot.py`` with a minimal environment (``PATH``,
``HOME`` and ``TMPDIR`` = its working directory, ``LANG``; no proxies), in a new session, stdin from
a file, stdout/stderr read incrementally. The bootstrap installs the process budget, a seccomp
filter and an in-process guard, then runs the user code as ``__main__`` (``exec``). Whatever happens,
every process of the run is dead when it returns. :func:`isolation` says which layers apply here
(probed once per process; a fallback from bubblewrap is announced with a ``RuntimeWarning``).

The layers:

* **bubblewrap** (``bwrap`` on ``PATH``; see :mod:`.bwrap`): the code runs in new user, PID,
  network, IPC, UTS and cgroup namespaces with a root of its own: read-only, holding only the
  interpreter, ``/usr/lib*`` (standard library, shared libraries) and ``/usr/share/zoneinfo``,
  ``/dev/null``, ``/dev/zero``, ``/dev/urandom``, a ``/proc`` of its PID namespace and a fresh
  64 MiB tmpfs ``/work`` (its working directory). So it cannot see the project, the store, the
  host's ``/tmp``, ``/etc``, home directories, other processes or their command lines, nor reach
  any network (only its own loopback) or other runs' System V IPC objects. It cannot create more
  user namespaces; bubblewrap sets ``no_new_privs`` and drops all capabilities. It dies with its
  parent (``PR_SET_PDEATHSIG`` on bubblewrap and the namespace's init; the PID namespace takes every
  process of the run with it), and nothing of a run is on the host's disk (the bootstrap and the
  program are copied from memory), so a SIGKILLed runner leaves nothing behind.
* **Resource limits** (``setrlimit`` before ``exec``): CPU seconds (``RLIMIT_CPU``, rounded up; the
  kernel sends SIGXCPU), address space (``RLIMIT_AS`` = ``memory_mb``: allocations beyond it raise
  ``MemoryError``), file size (``RLIMIT_FSIZE``, 16 MiB), open files (``RLIMIT_NOFILE``, 64), no
  core dumps, and processes (``RLIMIT_NPROC``: ``max_procs`` more than the run's own, so with the
  default 0 the first ``fork`` gets ``EAGAIN``; under bubblewrap set by the bootstrap inside the
  PID namespace, where the count is exact; without it approximate unless there is a uid drop).
* **Wall clock and output**: the parent kills the run when ``timeout_s`` passes or stdout or stderr
  exceeds ``max_output`` bytes (so printing gigabytes costs milliseconds, not memory).
* **A fresh unprivileged uid per run** (when the caller is root): not the shared ``nobody``, so
  concurrent runs cannot signal, ptrace or count against each other; no supplementary groups.
* **A seccomp filter** (x86_64 and aarch64; :mod:`.seccomp`), installed by the bootstrap before the
  user code and irrevocable: ``execve``, a socket other than ``AF_UNIX``, System V IPC objects and
  io_uring kill the process, reported as ``killed_reason = "forbidden: system call"``.
* **An in-process guard** (an audit hook): refuses sockets other than ``AF_UNIX``, every
  ``connect``/``bind``/``sendto``/name lookup, ``ctypes`` and starting programs with a catchable
  ``PermissionError``, reported as ``"forbidden: network"``, ``"forbidden: ctypes"`` or
  ``"forbidden: exec"`` even if the code catches it. It only makes attempts visible with a precise
  reason: Python code can switch it off (e.g. by swapping its ``__code__``), and nothing above
  depends on it.

Without bubblewrap (not installed, or its probe run fails, e.g. where user namespaces are
disabled) the older layers apply: rlimits, the uid drop, the seccomp filter, the guard, and where
allowed ``unshare(CLONE_NEWNET | CLONE_NEWIPC)`` (plus, as root, a mount namespace with the shared
temp dirs read-only and a tmpfs working directory). Then the code CAN read every world-readable
file (the project, a store in it) and see other processes and their command lines; children it
forks (``max_procs > 0``) may outlive a SIGKILLed runner, and a per-run directory is left in the
temp dir until the next process using the sandbox starts (:mod:`.workdir`); without a uid drop a
child that calls ``setsid()`` escapes the final kill. Without root there is no uid drop: the code
runs as the caller (under bubblewrap it still sees only its sandbox, so that matters little).

Out of scope: kernel exploits, side channels, memory not counted by ``RLIMIT_AS`` (kernel buffers,
the tmpfs), and denial of service of the machine through CPU use by concurrent runs (no cgroup).
``preexec_fn`` runs Python in the forked child; CPython documents it as not safe in the presence of
threads, so it only makes system calls (no imports, no locks).
"""

from .probe import Isolation, isolation
from .run import SandboxResult, run_python

__all__ = ["Isolation", "SandboxResult", "isolation", "run_python"]
