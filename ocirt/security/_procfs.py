"""Verified procfs writes for process security (SECURITY.md rule 7, CVE-2019-16884, CVE-2025-52881).

Files such as /proc/thread-self/attr/exec (LSM label) and /proc/self/oom_score_adj are written by
the init after pivot_root, when /proc is the container's. A container image (or a racing shared
mount) could put a fake file or another procfs file there. So:

1. Preferred: a private, detached procfs instance (fsopen("proc") + fsmount). It is attached to
   no path, so nothing in the container can mount over or swap anything in it. Paths are opened
   relative to its root fd with O_NOFOLLOW on the last component.
2. Fallback (no new mount API or not allowed): /proc/<path> opened with O_NOFOLLOW.
In both cases the opened fd must be on a filesystem with PROC_SUPER_MAGIC (fstatfs), and the
write goes through that fd in a single write(2) (LSM attr files need one write).
"""

from __future__ import annotations

import os

from ocirt.errors import SecurityError
from ocirt.linux import cabi
from ocirt.linux import syscalls as sc

_libc = sc.libc()


def fs_magic(fd: int) -> int:
    buf = cabi.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit
    if _libc.fstatfs(cabi.c_int(fd), buf) != 0:
        e = cabi.get_errno()
        raise OSError(e, "fstatfs: " + os.strerror(e))
    return cabi.c_long.from_buffer(buf).value & 0xFFFFFFFF


class ProcRoot:
    """A handle on procfs to open files from; use as a context manager."""

    def __init__(self) -> None:
        self.fd = -1
        self.private = False
        try:
            fsfd = sc.fsopen("proc")
            try:
                sc.fsconfig(fsfd, sc.FSCONFIG_CMD_CREATE)
                self.fd = sc.fsmount(fsfd)
                self.private = True
            finally:
                os.close(fsfd)
        except OSError:
            self.fd = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        if fs_magic(self.fd) != sc.PROC_SUPER_MAGIC:
            os.close(self.fd)
            raise SecurityError("/proc is not a procfs mount: refusing to write process attributes")

    def open(self, rel: str, flags: int) -> int:
        """Open `rel` (e.g. "thread-self/attr/exec") below this procfs, verified."""
        try:
            fd = os.open(rel, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.fd)
        except OSError as e:
            raise OSError(e.errno, f"open /proc/{rel}: {e.strerror}") from None
        try:
            if fs_magic(fd) != sc.PROC_SUPER_MAGIC:
                raise SecurityError(f"/proc/{rel} is not on procfs: possible breakout attempt")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def write(self, rel: str, data: bytes) -> None:
        fd = self.open(rel, os.O_WRONLY)
        try:
            n = os.write(fd, data)
            if n != len(data):
                raise OSError(5, f"short write to /proc/{rel}")
        finally:
            os.close(fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "ProcRoot":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
