"""A seccomp filter for the candidate: the kernel kills it (``SIGSYS``, reported as ``"forbidden:
system call"``) if it starts another program, opens a socket other than ``AF_UNIX``, creates System V
IPC objects or sets up io_uring (which could open sockets without the ``socket`` call).

The bootstrap installs it before the user code runs (``prctl(PR_SET_SECCOMP)``; a filter cannot be
removed afterwards, so unlike the in-process audit hook, no Python trick switches it off). It does
not make anything impossible that the namespaces allow (those contain the code either way); it makes
the attempts visible. Only for x86_64 and aarch64; elsewhere :func:`filter_program` returns None.

The program is classic BPF over ``struct seccomp_data`` (``nr`` at offset 0, ``arch`` at 4,
``args[0]`` at 16), as in the kernel's ``samples/seccomp``.
"""

from __future__ import annotations

import platform
import struct
from functools import cache

__all__ = ["filter_program"]

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# name: (x86_64, aarch64) system call numbers
_KILLED = {"execve": (59, 221), "execveat": (322, 281), "shmget": (29, 194), "semget": (64, 190),
           "msgget": (68, 186), "io_uring_setup": (425, 425)}
_SOCKET = (41, 198)
_X32_BIT = 0x40000000  # x86_64's x32 ABI: other numbers for the same calls, so refused outright
_AF_UNIX = 1

_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_RET_ALLOW, _RET_KILL_PROCESS = 0x7FFF0000, 0x80000000


@cache
def filter_program(machine: str | None = None) -> bytes | None:
    """The filter as the bytes of a ``struct sock_filter`` array for ``machine`` (default: this
    one), or None where it is not supported."""
    machine = machine or platform.machine()
    if machine not in _AUDIT_ARCH:
        return None
    col = 0 if machine == "x86_64" else 1
    # (code, jump-if-true label, jump-if-false label, k); labels are "next", "allow", "kill", "socket"
    prog: list[tuple[int, str, str, int]] = [
        (_LD_W_ABS, "next", "next", 4),
        (_JEQ_K, "next", "kill", _AUDIT_ARCH[machine]),  # another ABI (e.g. i386 via int 0x80): refused
        (_LD_W_ABS, "next", "next", 0),
    ]
    if machine == "x86_64":
        prog.append((_JGE_K, "kill", "next", _X32_BIT))
    prog += [(_JEQ_K, "kill", "next", nrs[col]) for nrs in _KILLED.values()]
    prog += [(_JEQ_K, "socket", "next", _SOCKET[col]), (_RET_K, "next", "next", _RET_ALLOW)]
    labels = {"socket": len(prog)}
    prog += [(_LD_W_ABS, "next", "next", 16), (_JEQ_K, "allow", "kill", _AF_UNIX)]
    labels["allow"], labels["kill"] = len(prog), len(prog) + 1
    prog += [(_RET_K, "next", "next", _RET_ALLOW), (_RET_K, "next", "next", _RET_KILL_PROCESS)]

    def offset(i: int, label: str) -> int:
        return 0 if label == "next" else labels[label] - i - 1

    return b"".join(struct.pack("=HBBI", code, offset(i, jt), offset(i, jf), k) for i, (code, jt, jf, k) in enumerate(prog))
