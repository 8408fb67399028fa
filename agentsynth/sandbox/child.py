"""What runs in the sandboxed child: the bootstrap script (the process budget and the seccomp filter,
then the in-process guard, then the user code as ``__main__``) and the setup between ``fork`` and
``exec`` (rlimits, the uid drop, death with the parent; without bubblewrap also the namespaces and
mounts). See the package docstring for what each layer does and does not protect against.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .probe import Isolation

FILE_LIMIT = 16 << 20
NOFILE_LIMIT = 64
DISK_MB = 64
_SHARED_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
_CLONE_NEWNS, _CLONE_NEWNET, _CLONE_NEWUSER, _CLONE_NEWIPC = 0x00020000, 0x40000000, 0x10000000, 0x08000000
_PR_SET_PDEATHSIG = 1
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_REMOUNT = 1, 2, 4, 32
_MS_BIND, _MS_REC, _MS_PRIVATE = 4096, 16384, 1 << 18

_BOOT = r'''
import os, sys

def _confine(nproc, program):
    # before any user code: limits no Python trick undoes later
    if nproc >= 0:
        import resource
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    if program:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

        class Fprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        buf = ctypes.create_string_buffer(program, len(program))
        fprog = Fprog(len(program) // 8, ctypes.addressof(buf))
        if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.addressof(fprog), 0, 0):  # NO_NEW_PRIVS; SECCOMP filter
            raise OSError(ctypes.get_errno(), "seccomp filter refused")

def _boot():
    status_fd, path = int(sys.argv[1]), sys.argv[2]
    _confine(int(sys.argv[3]), bytes.fromhex(sys.argv[4]))

    def note(what):
        try:
            os.write(status_fd, what.encode() + b"\n")
        except OSError:
            pass

    network = frozenset({"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
                         "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo"})
    ctypes = frozenset({"ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle"})
    programs = frozenset({"os.exec", "os.posix_spawn", "os.system", "subprocess.Popen"})

    def guard(event, args):
        if event in network or (event == "socket.__new__" and args[1] != 1):  # 1: AF_UNIX (socketpair)
            note("network")
            raise PermissionError("network access is disabled in the sandbox")
        if event in ctypes:
            note("ctypes")
            raise PermissionError("ctypes is disabled in the sandbox")
        if event in programs:
            note("exec")
            raise PermissionError("starting programs is disabled in the sandbox")

    sys.addaudithook(guard)
    with open(path, "rb") as f:
        source = f.read()
    main = type(sys)("__main__")
    main.__file__ = path
    sys.modules["__main__"] = main
    sys.argv = [path]
    try:
        exec(compile(source, path, "exec"), main.__dict__)
    except SystemExit:
        raise
    except BaseException as e:
        if isinstance(e, MemoryError):
            note("memory")
        import traceback
        traceback.print_exception(type(e), e, e.__traceback__.tb_next)
        sys.exit(1)

_boot()
'''


# ---- the child's setup (runs between fork and exec: system calls only) -----------------------
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(src: bytes | None, target: bytes, fstype: bytes | None, flags: int, data: bytes | None = None) -> None:
    _check(_libc.mount(src, target, fstype, flags, data), "mount " + target.decode())


def _drop_to(uid: int | None, parent: int) -> None:
    """Become ``uid`` (no supplementary groups), then ask for SIGKILL when the parent dies (a uid
    change clears that setting, so it comes after), and exit if the parent is already gone."""
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    _check(_libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
    if os.getppid() != parent:
        os._exit(1)


def _rlimits(limits: list[tuple[int, int]]) -> None:
    for which, value in limits:
        resource.setrlimit(which, (value, value if which != resource.RLIMIT_CPU else value + 1))


def _preexec(iso: Isolation, work: str, uid: int | None, limits: list[tuple[int, int]], nproc: int):
    """The setup of a run without bubblewrap (the older layers: namespaces by hand, when allowed)."""
    root = os.geteuid() == 0
    parent = os.getpid()
    shared = [p.encode() for p in _SHARED_WRITABLE if os.path.isdir(p) and not os.path.islink(p)]
    work_b = work.encode()
    tmpfs_opts = f"size={DISK_MB}m,nr_inodes=4096,mode=0700,uid={uid or 0},gid={uid or 0}".encode()

    def setup() -> None:
        if iso.namespaces and root:
            _check(_libc.unshare(_CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWIPC), "unshare")
            _mount(None, b"/", None, _MS_REC | _MS_PRIVATE)
            for p in shared:
                _mount(p, p, None, _MS_BIND)
            _mount(b"tmpfs", work_b, b"tmpfs", _MS_NOSUID | _MS_NODEV, tmpfs_opts)
            for p in shared:
                _mount(None, p, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)
            os.chdir(work_b)  # enter the tmpfs now mounted over the directory
        elif iso.namespaces:
            _check(_libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET | _CLONE_NEWIPC), "unshare")
        _rlimits(limits)
        _drop_to(uid, parent)
        # after setuid: set before it, an exceeded count would make execve fail (PF_NPROC_EXCEEDED)
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

    return setup


def _bwrap_preexec(uid: int | None, limits: list[tuple[int, int]], nproc: int | None):
    """The setup before ``exec`` of bubblewrap: rlimits, the uid drop, death with the parent, and
    (after the uid drop, for the same reason as above) the process budget when there is one."""
    parent = os.getpid()

    def setup() -> None:
        _rlimits(limits)
        _drop_to(uid, parent)
        if nproc is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

    return setup
