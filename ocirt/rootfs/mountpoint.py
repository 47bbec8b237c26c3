"""Finding or creating the place a mount goes, inside the root, as an fd."""

from __future__ import annotations

import os
import stat

from ocirt.errors import SecurityError
from ocirt.linux import pathrs

_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


def directory(root_fd: int, dest: str) -> tuple[int, bool]:
    """(O_PATH fd of the directory at `dest`, whether it existed). Symlinks on the way, the
    last one included, are followed inside the root."""
    try:
        return pathrs.open_in_root(root_fd, dest, _DIR), True
    except FileNotFoundError:
        return pathrs.mkdir_all_in_root(root_fd, dest), False


def file(root_fd: int, dest: str) -> int:
    return pathrs.create_file_in_root(root_fd, dest)


def ordinary_directory(root_fd: int, dest: str, fstype: str) -> tuple[int, bool]:
    """For /proc and /sys (CVE-2019-19921, CVE-2023-27561): the last component must be a real
    directory, never a symlink, so a racing swap cannot send procfs and the masks that later
    protect it to two different places."""
    parent, name = pathrs.open_parent_in_root(root_fd, dest)
    try:
        existed = True
        try:
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        except FileNotFoundError:
            existed = False
            try:
                os.mkdir(name, 0o755, dir_fd=parent)
            except FileExistsError:
                pass
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            os.close(fd)
            raise SecurityError(f'filesystem "{fstype}" must be mounted on ordinary directory '
                                f"({dest})")
        return fd, existed
    finally:
        os.close(parent)

