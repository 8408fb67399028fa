"""Finding out which isolation works on this machine: bubblewrap or the older layers, the interpreter
the sandbox user can run, the uid drop, namespaces and the seccomp filter. The strongest configuration
whose probe run succeeds is found once per process (which also removes run directories a killed
process left behind); a fallback from bubblewrap is announced once with a :class:`RuntimeWarning`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import warnings
from dataclasses import dataclass

from .seccomp import filter_program
from .workdir import clean_stale

__all__ = ["Isolation", "isolation"]


@dataclass(frozen=True, slots=True)
class Isolation:
    """What isolation :func:`run_python` applies on this machine (found by probing once)."""

    python: str
    """The interpreter the sandbox runs."""
    uid_drop: bool
    """Runs under a fresh unprivileged uid per run (needs root)."""
    namespaces: bool
    """Private namespaces: with ``bwrap``, user, PID, network, IPC, UTS, cgroup and mount (a root
    of its own); without, network and IPC (and as root a mount namespace with read-only shared temp
    dirs and a tmpfs working directory)."""
    nproc: bool
    """``RLIMIT_NPROC`` is enforced (not for root without a uid drop)."""
    bwrap: str | None = None
    """The bubblewrap executable the sandbox runs the code under, or None (the older layers)."""
    seccomp: bool = False
    """The seccomp filter is installed (exec, non-``AF_UNIX`` sockets, System V IPC kill the code)."""

    def describe(self) -> str:
        """One line naming every layer that applies."""
        parts = [f"python {self.python}", "rlimits cpu/as/fsize/nofile/core", "in-process guard"]
        if self.bwrap:
            parts.append(f"bubblewrap {self.bwrap} (namespaces user/pid/net/ipc/uts/cgroup/mount; "
                         "sees only the interpreter and /usr/lib read-only, its own /proc and a tmpfs /work)")
        elif self.namespaces:
            parts.append("network+ipc+mount namespaces" if os.geteuid() == 0 else "user+network+ipc namespaces")
        else:
            parts.append("no namespaces")
        if self.uid_drop:
            parts.append("fresh uid per run")
        parts.append("seccomp filter" if self.seccomp else "no seccomp filter")
        parts.append("RLIMIT_NPROC enforced" if self.nproc else "RLIMIT_NPROC not enforced")
        return ", ".join(parts)


_PROBE = "import json, math, os\nopen('probe.txt', 'w').write('x')\nprint('sandbox-ok', os.getuid())\n"
_lock = threading.Lock()
_isolation: Isolation | None = None


def _interpreters() -> list[str]:
    v = f"{sys.version_info.major}.{sys.version_info.minor}"
    found: list[str] = []
    for p in (sys.executable, os.path.realpath(sys.executable), f"/usr/bin/python{v}", f"/usr/local/bin/python{v}", "/usr/bin/python3"):
        if p and os.path.isfile(p) and p not in found:
            found.append(p)
    return found


def isolation() -> Isolation:
    """The isolation :func:`run_python` uses here: the strongest configuration whose probe run
    works (tried once per process, ~50 ms). The first call also removes run directories of
    processes that are gone (see :mod:`agentsynth.sandbox.workdir`)."""
    global _isolation
    with _lock:
        if _isolation is None:
            clean_stale()
            _isolation = _probe()
        return _isolation


def _attempt(iso: Isolation) -> tuple[bool, str]:
    from .run import _run  # imported here, not at the top: run.py imports this module

    try:
        r = _run(_PROBE, "", 10.0, 5.0, 256, 4096, 0, iso)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, str(exc)
    return r.ok and r.stdout.startswith("sandbox-ok"), (r.stderr.strip().splitlines() or [""])[-1]


def _probe() -> Isolation:
    root = os.geteuid() == 0
    bwrap = shutil.which("bwrap")
    # (bwrap, namespaces, uid drop), strongest first; as root, bubblewrap only with a uid drop
    configs = [(bwrap, True, root)] if bwrap else []
    configs += [(None, True, True), (None, False, True), (None, False, False)] if root else [(None, True, False), (None, False, False)]
    seccomp = [True, False] if filter_program() else [False]
    failure = ""  # why bubblewrap did not work
    for wrapper, namespaces, uid_drop in configs:
        pythons = _interpreters()
        if wrapper:  # it runs the interpreter's real path: symlinks (a venv) would only repeat a try
            pythons = list(dict.fromkeys(os.path.realpath(p) for p in pythons))
        for python in pythons:
            for sc in seccomp:
                iso = Isolation(python, uid_drop, namespaces, uid_drop or not root, wrapper, sc)
                ok, detail = _attempt(iso)
                if ok:
                    if not wrapper:
                        why = f"bubblewrap ({bwrap}) failed its probe run ({failure})" if bwrap else "bubblewrap (bwrap) is not installed"
                        warnings.warn(f"{why}; the code sandbox falls back to its older layers ({iso.describe()}), which do "
                                      "not hide the host's files and processes from the code (see the README, 'The code "
                                      "sandbox'; on Debian: apt-get install bubblewrap)", RuntimeWarning, stacklevel=3)
                    return iso
                if wrapper:
                    failure = detail or failure
    return Isolation(sys.executable, False, False, not root)
