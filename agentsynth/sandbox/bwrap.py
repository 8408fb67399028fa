"""The bubblewrap command line: what the candidate sees and which namespaces it gets.

The candidate's root is an empty, read-only tmpfs with, bound read-only, the interpreter and what
it loads: the interpreter's own file (under ``/usr``) or installation prefix (elsewhere, e.g. a
pyenv prefix), ``/usr/lib*`` (the standard library of a system Python and the shared libraries;
the host's ``/lib``... links or directories are reproduced), ``/usr/share/zoneinfo`` (for
``zoneinfo``); ``/dev/null``, ``/dev/zero`` and ``/dev/urandom``; a ``/proc`` of its own PID
namespace, the bootstrap and the program (``/sandbox/boot.py``, ``/sandbox/main.py``, copied from
memory by bubblewrap), and a fresh size-limited tmpfs as its working directory ``/work``. Nothing
else of the host: not the project, not the store, not ``/tmp``, ``/etc``, ``/home`` or other
processes. New user, PID, network, IPC, UTS and cgroup namespaces; no further user namespaces
inside; killed with its parent; in a session of its own.
"""

from __future__ import annotations

import os

__all__ = ["BOOT", "MAIN", "WORK", "bwrap_argv", "interpreter_root"]

WORK = "/work"
"""The candidate's working directory (and ``HOME``, ``TMPDIR``) inside the sandbox."""
BOOT, MAIN = "/sandbox/boot.py", "/sandbox/main.py"
"""Where the bootstrap and the program are inside the sandbox."""
_TOP_LINKS = ("/lib", "/lib32", "/lib64", "/libx32")  # the dynamic loader looks here
_USR = ("/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libx32", "/usr/share/zoneinfo")
_DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom")


def interpreter_root(python: str) -> str | None:
    """The installation to bind for ``python`` (``<prefix>`` of ``<prefix>/bin/python3.X``), or
    None when it lives under ``/usr`` (its standard library is then in ``/usr/lib``)."""
    real = os.path.realpath(python)
    if real.startswith("/usr/"):
        return None
    prefix = os.path.dirname(os.path.dirname(real))
    return prefix if prefix != "/" else os.path.dirname(real)


def bwrap_argv(bwrap: str, python: str, info_fd: int, boot_fd: int, main_fd: int, disk_mb: int) -> list[str]:
    """The ``bwrap`` arguments up to and including ``--`` and the interpreter path; the caller
    appends the interpreter's own arguments. ``info_fd``: where bubblewrap writes the host pid of
    the sandbox's init (``--info-fd``); ``boot_fd`` / ``main_fd``: readable files (at offset 0)
    with the bootstrap and the program; ``disk_mb``: the size of ``/work``."""
    real = os.path.realpath(python)
    argv = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
            "--hostname", "sandbox", "--info-fd", str(info_fd)]
    for d in _USR:
        if os.path.isdir(d) and not os.path.islink(d):
            argv += ["--ro-bind", d, d]
    for top in _TOP_LINKS:
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    root = interpreter_root(real) or real  # its prefix, or just the file under /usr
    argv += ["--ro-bind", root, root]
    for dev in _DEVICES:
        argv += ["--dev-bind", dev, dev]
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        argv += ["--symlink", f"/proc/self/fd/{i}", f"/dev/{name}"]
    argv += ["--symlink", "/proc/self/fd", "/dev/fd", "--proc", "/proc",
             "--size", str(disk_mb << 20), "--perms", "0700", "--tmpfs", WORK,
             "--perms", "0444", "--ro-bind-data", str(boot_fd), BOOT,
             "--perms", "0444", "--ro-bind-data", str(main_fd), MAIN,
             "--remount-ro", "/", "--chdir", WORK, "--", real]
    return argv

