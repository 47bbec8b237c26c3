"""The container's console: a pty of the container's own devpts, bound onto /dev/console.

/dev/pts/ptmx is opened inside the root without following its last component and checked on
the opened fd (devpts magic, inode 2, char 5:2); the peer comes from TIOCGPTPEER on that
master, never from a /dev/pts/N path, and is bind-mounted from its fd (CVE-2025-52565).
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
import termios

from ocirt.errors import SecurityError, SetupError
from ocirt.linux import pathrs
from ocirt.linux import syscalls as sc
from ocirt.rootfs import attach

_TIOCSPTLCK = 0x40045431
_TIOCGPTN = 0x80045430


def _check_ptmx(fd: int) -> None:
    st = os.fstat(fd)
    if (sc.fstatfs_type(fd) != sc.DEVPTS_SUPER_MAGIC or st.st_ino != 2
            or not stat.S_ISCHR(st.st_mode)
            or (os.major(st.st_rdev), os.minor(st.st_rdev)) != (5, 2)):
        raise SecurityError("/dev/pts/ptmx is not the ptmx of a devpts instance")


def open_pty(root_fd: int, size: dict | None) -> tuple[int, int, str]:
    """(master fd, peer fd, /dev/pts/N name)."""
    master = pathrs.open_in_root(root_fd, "/dev/pts/ptmx",
                                 os.O_RDWR | os.O_NOCTTY | os.O_NOFOLLOW)
    try:
        _check_ptmx(master)
        fcntl.ioctl(master, _TIOCSPTLCK, struct.pack("i", 0))
        n = struct.unpack("I", fcntl.ioctl(master, _TIOCGPTN, b"\0" * 4))[0]
        peer = fcntl.ioctl(master, sc.TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        if size and size.get("height") and size.get("width"):
            fcntl.ioctl(peer, termios.TIOCSWINSZ,
                        struct.pack("HHHH", int(size["height"]), int(size["width"]), 0, 0))
    except BaseException:
        os.close(master)
        raise
    return master, peer, f"/dev/pts/{n}"


def bind_console(root_fd: int, peer: int) -> None:
    parent, name = pathrs.open_parent_in_root(root_fd, "/dev/console")
    try:
        try:
            target = os.open(name, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                             | os.O_CLOEXEC, 0o600, dir_fd=parent)
        except FileExistsError:
            target = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            mode = os.fstat(target).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode)):
                os.close(target)
                raise SecurityError("/dev/console exists and is not a file or a device")
    finally:
        os.close(parent)
    try:
        mnt = attach.clone(peer, recursive=False)
        try:
            attach.attach(mnt, target)
        finally:
            os.close(mnt)
    except OSError as e:
        raise SetupError(f"bind-mounting the console onto /dev/console: {e.strerror}") from None
    finally:
        os.close(target)
