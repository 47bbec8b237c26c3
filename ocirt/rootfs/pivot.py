"""Entering the root: pivot_root(".", ".") like runc, or MS_MOVE + chroot for --no-pivot, or
a plain chroot for a container that shares the runtime's mount namespace."""

from __future__ import annotations

import os

from ocirt.linux import mountinfo, procfs
from ocirt.linux import syscalls as sc


def pivot_root(root_fd: int) -> None:
    """Stack the old root under the new one and detach it, with no put_old directory (so
    nothing needs creating in the image and no host path stays reachable)."""
    old = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fchdir(root_fd)
        sc.pivot_root(".", ".")
        os.fchdir(old)
    finally:
        os.close(old)
    # rslave first: the unmount of the old root must not propagate to the host.
    sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")


def chroot(root_fd: int) -> None:
    """No mount namespace of its own: the container's root is the rootfs directory of the
    runtime's namespace (as runc and crun do; chroot is no isolation, the config chose that)."""
    os.fchdir(root_fd)
    os.chroot(".")
    os.chdir("/")


def move_root(root_fd: int, rootfs: str) -> None:
    """--no-pivot: the host mounts stay in this namespace under the moved root, so first drop
    (or cover) every full procfs and sysfs outside the rootfs, as runc's msMoveRoot does."""
    _hide_host_kernel_fs(rootfs)
    os.fchdir(root_fd)
    sc.move_mount(root_fd, "", sc.AT_FDCWD, "/", sc.MOVE_MOUNT_F_EMPTY_PATH)
    os.chroot(".")
    os.chdir("/")


def _hide_host_kernel_fs(rootfs: str) -> None:
    prefix = rootfs.rstrip("/") + "/"
    points = []
    for e in mountinfo.entries(procfs.read_file("self/mountinfo").decode()):
        mp = e.mountpoint
        if e.fstype in ("proc", "sysfs") and e.root == "/" and \
                mp != rootfs and not mp.startswith(prefix):
            points.append(mp)
    for mp in sorted(points, key=len, reverse=True):
        try:
            sc.mount(None, mp, None, sc.MS_SLAVE | sc.MS_REC)
        except FileNotFoundError:
            continue
        try:
            sc.umount2(mp, sc.MNT_DETACH)
        except OSError:
            sc.mount("tmpfs", mp, "tmpfs", 0)
