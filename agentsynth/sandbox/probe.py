"""Finding out which isolation works on this machine: the interpreter the sandbox user can run,
and the strongest configuration (uid drop, namespaces) whose probe run succeeds, found once per
process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass

__all__ = ["Isolation", "isolation"]

@dataclass(frozen=True, slots=True)
class Isolation:
    """What isolation :func:`run_python` applies on this machine (found by probing once)."""

    python: str
    """The interpreter the sandbox runs."""
    uid_drop: bool
    """Runs under a fresh unprivileged uid per run (needs root)."""
    namespaces: bool
    """Private network namespace (and, as root, a mount namespace with read-only shared temp dirs
    and a tmpfs working directory)."""
    nproc: bool
    """``RLIMIT_NPROC`` is enforced (not for root without a uid drop)."""

    def describe(self) -> str:
        parts = [f"python {self.python}", "rlimits cpu/as/fsize/nofile/core", "in-process network guard"]
        if self.uid_drop:
            parts.append("fresh uid per run")
        if self.namespaces:
            parts.append("network+mount namespaces" if os.geteuid() == 0 else "user+network namespaces")
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
    works (tried once per process, ~50 ms)."""
    global _isolation
    with _lock:
        if _isolation is None:
            _isolation = _probe()
        return _isolation


def _probe() -> Isolation:
    from .run import _run  # imported here, not at the top: run.py imports this module

    root = os.geteuid() == 0
    configs = [(True, True), (False, True), (False, False)] if root else [(True, False), (False, False)]
    for namespaces, uid_drop in configs:
        for python in _interpreters():
            iso = Isolation(python, uid_drop, namespaces, uid_drop or not root)
            try:
                r = _run(_PROBE, "", 10.0, 5.0, 256, 4096, 0, iso)
            except (OSError, subprocess.SubprocessError):
                continue
            if r.ok and r.stdout.startswith("sandbox-ok"):
                return iso
    return Isolation(sys.executable, False, False, not root)
