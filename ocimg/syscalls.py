"""ocimg's system calls through ctypes, in one place: mount(2)/umount2(2), openat2(2) and the
new mount API (fsopen/fsconfig/fsmount/move_mount). Failures raise OSError with errno set;
callers turn them into ocimg errors."""

from __future__ import annotations

import ctypes
import os
import platform

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.syscall.restype = ctypes.c_long

# Syscalls numbered after the unified table (424 on): the same on every architecture that has them.
_NR = {"move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "openat2": 437}
UNIFIED_NUMBERS = platform.machine() in ("x86_64", "aarch64", "riscv64", "ppc64le", "s390x", "loongarch64")

MNT_DETACH = 2
MS_RDONLY = 1
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_IN_ROOT = 0x10
FSOPEN_CLOEXEC = 1
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
FSMOUNT_CLOEXEC = 1
MOVE_MOUNT_F_EMPTY_PATH = 0x04


def _raise(what: str | bytes | None = None) -> None:
    e = ctypes.get_errno()
    raise OSError(e, os.strerror(e), what)


def _syscall(name: str, *args: object) -> int:
    if not UNIFIED_NUMBERS:
        raise OSError(38, os.strerror(38), name)  # ENOSYS: numbers unknown on this architecture
    ret = _libc.syscall(ctypes.c_long(_NR[name]), *args)
    if ret < 0:
        _raise(name)
    return int(ret)


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def mount(source: str, target: str, fstype: str, flags: int, data: str) -> None:
    if _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)) != 0:
        _raise(target)


def umount2(target: str, flags: int = 0) -> None:
    if _libc.umount2(_b(target), flags) != 0:
        _raise(target)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    try:
        return _syscall("openat2", ctypes.c_int(dirfd), ctypes.c_char_p(os.fsencode(path)), ctypes.byref(how),
                        ctypes.c_size_t(ctypes.sizeof(how)))
    except OSError as e:
        raise OSError(e.errno, e.strerror, path) from None


def fsopen(fstype: str) -> int:
    return _syscall("fsopen", ctypes.c_char_p(_b(fstype)), ctypes.c_uint(FSOPEN_CLOEXEC))


def fsconfig(fd: int, cmd: int, key: str | None = None, value: str | None = None, aux: int = 0) -> None:
    _syscall("fsconfig", ctypes.c_int(fd), ctypes.c_uint(cmd), ctypes.c_char_p(_b(key)),
             ctypes.c_char_p(_b(value)), ctypes.c_int(aux))


def fsmount(fd: int, attr_flags: int = 0) -> int:
    return _syscall("fsmount", ctypes.c_int(fd), ctypes.c_uint(FSMOUNT_CLOEXEC), ctypes.c_uint(attr_flags))


def move_mount(from_fd: int, to_path: str) -> None:
    _syscall("move_mount", ctypes.c_int(from_fd), ctypes.c_char_p(b""), ctypes.c_int(-100),  # AT_FDCWD
             ctypes.c_char_p(_b(to_path)), ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH))
