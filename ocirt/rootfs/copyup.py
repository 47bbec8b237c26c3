"""tmpcopyup: copy what a tmpfs is about to cover into it (fd to fd, nothing followed)."""

from __future__ import annotations

import os
import stat

_RD = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


def copy_tree(src: int, dst: int) -> None:
    """Copy the entries of directory fd `src` into directory fd `dst`: files, directories,
    symlinks (as links), device nodes and fifos, with mode, owner and times."""
    with os.scandir(src) as it:
        names = [e.name for e in it]
    for name in names:
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=dst)
            s = os.open(name, _RD | os.O_DIRECTORY, dir_fd=src)
            d = os.open(name, _RD | os.O_DIRECTORY, dir_fd=dst)
            try:
                copy_tree(s, d)
                _meta(d, st)
            finally:
                os.close(s)
                os.close(d)
        elif stat.S_ISREG(mode):
            s = os.open(name, _RD, dir_fd=src)
            d = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                        | os.O_CLOEXEC, 0o600, dir_fd=dst)
            try:
                while os.sendfile(d, s, None, 1 << 20):
                    pass
                _meta(d, st)
            finally:
                os.close(s)
                os.close(d)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            os.mknod(name, mode, st.st_rdev, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
        # sockets are not copied: they would be dead anyway


def _meta(fd: int, st: os.stat_result) -> None:
    os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
