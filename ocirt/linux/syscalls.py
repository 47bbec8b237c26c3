"""The one place ocirt talks to the kernel beyond what `os` offers: a small ctypes layer.

Every wrapper raises OSError (with errno and, where useful, the path) on failure, so callers
handle kernel errors like any other Python I/O error. Only libc is loaded here; it is already
mapped into the interpreter, so importing this module costs well under a millisecond.
"""

from __future__ import annotations

import os

from ocirt.linux import cabi

_libc = cabi.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = cabi.c_long

# Syscalls without a glibc wrapper. Numbers from 424 on are the same on every architecture.
_ARCH_NR = {
    "x86_64": {"keyctl": 250, "pivot_root": 155, "seccomp": 317, "ioprio_set": 251, "ioprio_get": 252,
               "sched_setattr": 314, "set_mempolicy": 238, "kcmp": 312},
    "aarch64": {"keyctl": 219, "pivot_root": 41, "seccomp": 277, "ioprio_set": 30, "ioprio_get": 31,
                "sched_setattr": 274, "set_mempolicy": 237, "kcmp": 272},
}
NR: dict[str, int] = dict(_ARCH_NR.get(os.uname().machine, _ARCH_NR["x86_64"]))
NR.update(pidfd_send_signal=424, open_tree=428, move_mount=429, fsopen=430, fsconfig=431,
          fsmount=432, fspick=433, pidfd_open=434, clone3=435, close_range=436, openat2=437,
          pidfd_getfd=438, mount_setattr=442)

# clone/unshare flags
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount(2) flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_FORCE = 1
MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8

# *at() flags
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000

# open_tree / move_mount / fsopen / fsmount
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_SYMLINKS = 0x01
MOVE_MOUNT_F_EMPTY_PATH = 0x04
MOVE_MOUNT_T_SYMLINKS = 0x10
MOVE_MOUNT_T_EMPTY_PATH = 0x40
FSOPEN_CLOEXEC = 1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
FSMOUNT_CLOEXEC = 1

# mount_setattr
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000

# openat2 resolve flags
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# prctl
PR_SET_PDEATHSIG = 1
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_GET_SECCOMP = 21
PR_SET_SECCOMP = 22
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_IS_SET = 1
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# statfs magics used to verify special filesystems by fd
PROC_SUPER_MAGIC = 0x9FA0
DEVPTS_SUPER_MAGIC = 0x1CD1
TMPFS_MAGIC = 0x01021994
SYSFS_MAGIC = 0x62656572
CGROUP_SUPER_MAGIC = 0x27E0EB
CGROUP2_SUPER_MAGIC = 0x63677270


def _err(name: str, path: str | None = None) -> OSError:
    e = cabi.get_errno()
    msg = f"{name}: {os.strerror(e)}"
    return OSError(e, msg, path) if path is not None else OSError(e, msg)


def _b(s: str | bytes | None) -> bytes | None:
    if s is None:
        return None
    return s if isinstance(s, bytes) else os.fsencode(s)


def _sys(name: str, *args) -> int:
    ret = _syscall(cabi.c_long(NR[name]), *args)
    if ret < 0:
        raise _err(name)
    return ret


# --- namespaces -------------------------------------------------------------------------

def unshare(flags: int) -> None:
    if _libc.unshare(cabi.c_int(flags)) != 0:
        raise _err("unshare")


def setns(fd: int, nstype: int = 0) -> None:
    if _libc.setns(cabi.c_int(fd), cabi.c_int(nstype)) != 0:
        raise _err("setns")


def sethostname(name: str) -> None:
    b = name.encode()
    if _libc.sethostname(b, cabi.c_size_t(len(b))) != 0:
        raise _err("sethostname")


def setdomainname(name: str) -> None:
    b = name.encode()
    if _libc.setdomainname(b, cabi.c_size_t(len(b))) != 0:
        raise _err("setdomainname")


# --- mounts -----------------------------------------------------------------------------

def mount(source: str | bytes | None, target: str | bytes, fstype: str | bytes | None,
          flags: int = 0, data: str | bytes | None = None) -> None:
    if _libc.mount(_b(source), _b(target), _b(fstype), cabi.c_ulong(flags), _b(data)) != 0:
        raise _err("mount", os.fsdecode(target))


def umount2(target: str | bytes, flags: int = 0) -> None:
    if _libc.umount2(_b(target), cabi.c_int(flags)) != 0:
        raise _err("umount2", os.fsdecode(target))


def pivot_root(new_root: str | bytes, put_old: str | bytes) -> None:
    _sys("pivot_root", _b(new_root), _b(put_old))


def open_tree(dirfd: int, path: str | bytes, flags: int) -> int:
    return _sys("open_tree", cabi.c_int(dirfd), _b(path), cabi.c_uint(flags))


def move_mount(from_dfd: int, from_path: str | bytes, to_dfd: int, to_path: str | bytes,
               flags: int) -> None:
    _sys("move_mount", cabi.c_int(from_dfd), _b(from_path), cabi.c_int(to_dfd),
         _b(to_path), cabi.c_uint(flags))


class _MountAttr(cabi.Structure):
    _fields_ = [("attr_set", cabi.c_uint64), ("attr_clr", cabi.c_uint64),
                ("propagation", cabi.c_uint64), ("userns_fd", cabi.c_uint64)]


def mount_setattr(dirfd: int, path: str | bytes, flags: int, attr_set: int = 0,
                  attr_clr: int = 0, propagation: int = 0, userns_fd: int = 0) -> None:
    attr = _MountAttr(attr_set, attr_clr, propagation, userns_fd)
    _sys("mount_setattr", cabi.c_int(dirfd), _b(path), cabi.c_uint(flags),
         cabi.byref(attr), cabi.c_size_t(cabi.sizeof(attr)))


def fsopen(fstype: str, flags: int = FSOPEN_CLOEXEC) -> int:
    return _sys("fsopen", _b(fstype), cabi.c_uint(flags))


def fsconfig(fd: int, cmd: int, key: str | None = None, value: str | None = None,
             aux: int = 0) -> None:
    _sys("fsconfig", cabi.c_int(fd), cabi.c_uint(cmd), _b(key), _b(value), cabi.c_int(aux))


def fsmount(fd: int, flags: int = FSMOUNT_CLOEXEC, attr_flags: int = 0) -> int:
    return _sys("fsmount", cabi.c_int(fd), cabi.c_uint(flags), cabi.c_uint(attr_flags))


class _OpenHow(cabi.Structure):
    _fields_ = [("flags", cabi.c_uint64), ("mode", cabi.c_uint64),
                ("resolve", cabi.c_uint64)]


def openat2(dirfd: int, path: str | bytes, flags: int, mode: int = 0, resolve: int = 0) -> int:
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    ret = _syscall(cabi.c_long(NR["openat2"]), cabi.c_int(dirfd), _b(path),
                   cabi.byref(how), cabi.c_size_t(cabi.sizeof(how)))
    if ret < 0:
        raise _err("openat2", os.fsdecode(path))
    return ret


# --- processes --------------------------------------------------------------------------

def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    ret = _libc.prctl(cabi.c_int(option), cabi.c_ulong(arg2), cabi.c_ulong(arg3),
                      cabi.c_ulong(arg4), cabi.c_ulong(arg5))
    if ret < 0:
        raise _err("prctl")
    return ret


def pidfd_open(pid: int, flags: int = 0) -> int:
    return _sys("pidfd_open", cabi.c_int(pid), cabi.c_uint(flags))


def pidfd_send_signal(pidfd: int, sig: int) -> None:
    _sys("pidfd_send_signal", cabi.c_int(pidfd), cabi.c_int(sig), None, cabi.c_uint(0))


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    _sys("close_range", cabi.c_uint(first), cabi.c_uint(last), cabi.c_uint(flags))


CLOSE_RANGE_CLOEXEC = 1 << 2


def personality(persona: int) -> int:
    ret = _libc.personality(cabi.c_ulong(persona))
    if ret < 0:
        raise _err("personality")
    return ret


def syscall(name: str, *args) -> int:
    """Escape hatch for rarely used syscalls (seccomp, ioprio_set, sched_setattr, ...)."""
    return _sys(name, *args)


def libc() -> cabi.CDLL:
    return _libc


# --- appended for rootfs setup (pathrs, procfs, devices) ----------------------------------

MS_POSIXACL = 1 << 16
MS_I_VERSION = 1 << 23
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
TIOCGPTPEER = 0x5441


class _Statfs(cabi.Structure):
    _fields_ = [("f_type", cabi.c_long), ("f_bsize", cabi.c_long),
                ("f_blocks", cabi.c_ulong), ("f_bfree", cabi.c_ulong),
                ("f_bavail", cabi.c_ulong), ("f_files", cabi.c_ulong),
                ("f_ffree", cabi.c_ulong), ("f_fsid", cabi.c_int * 2),
                ("f_namelen", cabi.c_long), ("f_frsize", cabi.c_long),
                ("f_flags", cabi.c_long), ("f_spare", cabi.c_long * 4)]


def fstatfs_type(fd: int) -> int:
    """The filesystem magic of an fd (works on O_PATH fds); os has no fstatfs."""
    buf = _Statfs()
    if _libc.fstatfs(cabi.c_int(fd), cabi.byref(buf)) != 0:
        raise _err("fstatfs")
    return buf.f_type & 0xFFFFFFFF


def fchown_fd(fd: int, uid: int, gid: int) -> None:
    """fchownat(fd, "", AT_EMPTY_PATH): chown through an O_PATH fd without a path lookup."""
    if _libc.fchownat(cabi.c_int(fd), b"", cabi.c_uint(uid), cabi.c_uint(gid),
                      cabi.c_int(AT_EMPTY_PATH)) != 0:
        raise _err("fchownat")


def renameat2(olddirfd: int, oldpath: str | bytes, newdirfd: int, newpath: str | bytes,
              flags: int = 0) -> None:
    if _libc.renameat2(cabi.c_int(olddirfd), _b(oldpath), cabi.c_int(newdirfd),
                       _b(newpath), cabi.c_uint(flags)) != 0:
        raise _err("renameat2", os.fsdecode(oldpath))


KEYCTL_JOIN_SESSION_KEYRING = 1
KEYCTL_SETPERM = 5
KEYCTL_DESCRIBE = 6


def join_session_keyring(name: str) -> int:
    """A new session keyring named `name` for the calling process; returns its serial."""
    return _sys("keyctl", cabi.c_int(KEYCTL_JOIN_SESSION_KEYRING), _b(name))


def keyring_perm(serial: int) -> int:
    buf = cabi.create_string_buffer(256)
    n = _sys("keyctl", cabi.c_int(KEYCTL_DESCRIBE), cabi.c_int(serial), buf,
             cabi.c_size_t(len(buf)))
    # "type;uid;gid;perm;description", perm in hex
    return int(buf.raw[:max(n - 1, 0)].split(b";")[3], 16)


def set_keyring_perm(serial: int, perm: int) -> None:
    _sys("keyctl", cabi.c_int(KEYCTL_SETPERM), cabi.c_int(serial), cabi.c_uint(perm))


# --- NUMA memory policy -------------------------------------------------------------------

def set_mempolicy(mode: int, nodes: list[int]) -> None:
    """set_mempolicy(2) for the calling thread (inherited by children, kept across execve).
    `mode` includes its MPOL_F_* flags; `nodes` are node numbers."""
    if not nodes:
        _sys("set_mempolicy", cabi.c_long(mode), cabi.c_void_p(None), cabi.c_ulong(0))
        return
    words = max(nodes) // 64 + 1
    mask = (cabi.c_ulong * words)()
    for n in nodes:
        mask[n // 64] |= 1 << (n % 64)
    # The kernel reads maxnode - 1 bits (a historical off-by-one every caller adds back).
    _sys("set_mempolicy", cabi.c_long(mode), mask, cabi.c_ulong(words * 64 + 1))
