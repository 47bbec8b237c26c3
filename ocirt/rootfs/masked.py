"""linux.maskedPaths and linux.readonlyPaths, applied after pivot_root.

Masked files get the container's /dev/null bind-mounted over them — only after checking, on an
O_PATH|O_NOFOLLOW fd, that it really is char 1:3, and mounting from that very fd: otherwise a
/dev/null swapped for a symlink to a procfs file would get that file bind-mounted writable over
the masked path (CVE-2025-31133). Masked directories get an empty read-only tmpfs (runc's
maskDir). Missing paths are skipped, as in runc.
"""

from __future__ import annotations

import os
import stat

from ocirt.errors import SecurityError, SetupError
from ocirt.linux import pathrs
from ocirt.linux import syscalls as sc
from ocirt.rootfs import attach
from ocirt.rootfs.options import MountOptions

_RO_ALL = sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV | \
    sc.MOUNT_ATTR_NOEXEC
_MASK_DIR = MountOptions(flags=sc.MS_RDONLY, data=("nr_blocks=1", "nr_inodes=1"))


def open_dev_null(root_fd: int) -> int:
    """An O_PATH fd of the container's /dev/null, verified to be the null device."""
    try:
        fd = pathrs.open_in_root(root_fd, "/dev/null", os.O_PATH | os.O_NOFOLLOW)
    except OSError as e:
        raise SecurityError(f"/dev/null is invalid: {e.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or (os.major(st.st_rdev), os.minor(st.st_rdev)) != (1, 3):
        os.close(fd)
        raise SecurityError("/dev/null is invalid: it is not the char device 1:3 "
                            "(possible attack on maskedPaths)")
    return fd


def _open_existing(root_fd: int, path: str) -> int | None:
    try:
        return pathrs.open_in_root(root_fd, path, os.O_PATH)
    except FileNotFoundError:
        return None


def mask(root_fd: int, paths: list[str]) -> None:
    null = -1
    try:
        for path in paths:
            target = _open_existing(root_fd, path)
            if target is None:
                continue
            try:
                if stat.S_ISDIR(os.fstat(target).st_mode):
                    mnt = attach.new_fs("tmpfs", "tmpfs", _MASK_DIR)
                else:
                    if null < 0:
                        null = open_dev_null(root_fd)
                    mnt = attach.clone(null, recursive=False)
                try:
                    attach.attach(mnt, target)
                finally:
                    os.close(mnt)
            except OSError as e:
                raise SetupError(f"masking {path}: {e.strerror or e}") from None
            finally:
                os.close(target)
    finally:
        if null >= 0:
            os.close(null)


def make_readonly(root_fd: int, paths: list[str]) -> None:
    """A read-only copy of the tree at each path stacked on itself (runc binds and remounts;
    here the whole copied tree is read-only, nosuid, nodev, noexec)."""
    for path in paths:
        target = _open_existing(root_fd, path)
        if target is None:
            continue
        try:
            mnt = attach.clone(target, recursive=True)
            try:
                attach.set_attrs(mnt, _RO_ALL, 0, recursive=True)
                attach.attach(mnt, target)
            finally:
                os.close(mnt)
        except OSError as e:
            raise SetupError(f"making {path} read-only: {e.strerror or e}") from None
        finally:
            os.close(target)
