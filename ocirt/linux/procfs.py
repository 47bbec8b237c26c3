"""Verified procfs handles (SECURITY.md rule 7; CVE-2019-16884, CVE-2019-19921, CVE-2025-52881).

Writes to procfs (sysctl, LSM attributes, oom_score_adj...) and reads we base security
decisions on must not go through a /proc that the container image or a racing shared mount
can overmount, replace with a symlink, or swap for another procfs file. We therefore keep a
private procfs instance that is attached nowhere (fsopen("proc") + fsmount), falling back to a
non-recursive clone of /proc (no overmounts come along) and, last, /proc itself. Every file is
opened beneath that root with no symlinks, no magic links and no mount crossing, and checked to
be on procfs before use.

The handle is per process (keyed by pid): after fork, `self` means another process, and in a new
pid namespace the numbers differ, so a child opens its own. Call close() before handing control
to container code: a full procfs (sysrq-trigger, unmasked /proc/sys) must not leak into it.
"""

from __future__ import annotations

import errno
import os
import stat

from _thread import get_native_id

from ocirt.errors import SecurityError
from ocirt.linux import syscalls as sc

_PROC_ROOT_INO = 1
_RESOLVE = (sc.RESOLVE_BENEATH | sc.RESOLVE_NO_MAGICLINKS | sc.RESOLVE_NO_SYMLINKS
            | sc.RESOLVE_NO_XDEV)

_handle: tuple[int, int] | None = None  # (pid that opened it, root fd)


def _open_root() -> int:
    try:
        fsfd = sc.fsopen("proc", sc.FSOPEN_CLOEXEC)
        try:
            sc.fsconfig(fsfd, sc.FSCONFIG_CMD_CREATE)
            return sc.fsmount(fsfd, sc.FSMOUNT_CLOEXEC,
                              sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV | sc.MOUNT_ATTR_NOEXEC)
        finally:
            os.close(fsfd)
    except OSError:
        pass
    try:
        return sc.open_tree(sc.AT_FDCWD, "/proc", sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC)
    except OSError:
        return os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def _verify_root(fd: int) -> None:
    st = os.fstat(fd)
    if sc.fstatfs_type(fd) != sc.PROC_SUPER_MAGIC or st.st_ino != _PROC_ROOT_INO:
        os.close(fd)
        raise SecurityError("procfs handle is not the root of a procfs")


def root_fd() -> int:
    """fd of the root of a verified procfs owned by this process (do not close it)."""
    global _handle
    pid = os.getpid()
    if _handle is not None and _handle[0] == pid:
        return _handle[1]
    if _handle is not None:
        # Inherited across fork: the fd is ours to close, the numbering is not ours to use.
        try:
            os.close(_handle[1])
        except OSError:
            pass
    fd = _open_root()
    _verify_root(fd)
    _handle = (pid, fd)
    return fd


def close() -> None:
    global _handle
    if _handle is not None:
        if _handle[0] == os.getpid():
            try:
                os.close(_handle[1])
            except OSError:
                pass
        _handle = None


def _translate(relpath: str) -> str:
    """`self` and `thread-self` are symlinks, which the lookup refuses: spell them out."""
    rel = relpath.lstrip("/")
    head, sep, rest = rel.partition("/")
    if head == "self":
        return f"{os.getpid()}{sep}{rest}"
    if head == "thread-self":
        return f"{os.getpid()}/task/{get_native_id()}{sep}{rest}"
    return rel


def _openat_beneath(root: int, rel: str, flags: int, mode: int) -> int:
    try:
        return sc.openat2(root, rel, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, _RESOLVE)
    except OSError as e:
        if e.errno != errno.ENOSYS:
            raise
    parts = [p for p in rel.split("/") if p and p != "."]
    if ".." in parts:
        raise OSError(errno.EXDEV, f"'..' in procfs path {rel!r}")
    cur = os.dup(root)
    try:
        for p in parts[:-1]:
            nxt = os.open(p, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                          dir_fd=cur)
            os.close(cur)
            cur = nxt
        return os.open(parts[-1] if parts else ".", flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                       dir_fd=cur)
    finally:
        os.close(cur)


def open_proc_file(relpath: str, flags: int, mode: int = 0) -> int:
    """Open /proc/<relpath> from the private procfs; the result is verified to be on procfs.

    `relpath` may start with `self/` or `thread-self/`; `..`, symlinks and mount crossings
    are refused by the kernel (openat2 RESOLVE_BENEATH|NO_SYMLINKS|NO_XDEV)."""
    fd = _openat_beneath(root_fd(), _translate(relpath), flags, mode)
    try:
        if sc.fstatfs_type(fd) != sc.PROC_SUPER_MAGIC:
            raise SecurityError(f"/proc/{relpath} is not on procfs")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_file(relpath: str) -> bytes:
    fd = open_proc_file(relpath, os.O_RDONLY)
    try:
        chunks: list[bytes] = []
        while True:
            b = os.read(fd, 65536)
            if not b:
                return b"".join(chunks)
            chunks.append(b)
    finally:
        os.close(fd)


def write_file(relpath: str, data: bytes) -> None:
    """One write(2) through a verified fd (sysctl and LSM files want a single write)."""
    fd = open_proc_file(relpath, os.O_WRONLY)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SecurityError(f"/proc/{relpath} is not a regular procfs file")
        os.write(fd, data)
    finally:
        os.close(fd)


def readlink_self_fd(fd: int) -> str:
    dirfd = open_proc_file("self/fd", os.O_PATH | os.O_DIRECTORY)
    try:
        return os.readlink(str(fd), dir_fd=dirfd)
    finally:
        os.close(dirfd)
