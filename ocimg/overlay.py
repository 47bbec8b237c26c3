"""overlayfs mounts through the kernel's mount calls directly (ocimg.syscalls), no mount(8).

A mount(2) option string is at most one page, which holds about 60 layer paths. Beyond that
the new mount API adds the lower dirs one `lowerdir+` at a time (Linux 6.8 and later); older
kernels get the layers named relative to their common parent (a few more fit), then an error.
"""

from __future__ import annotations

import errno
import os

from ocimg import syscalls
from ocimg.errors import MountError

# mount(2) copies at most one page of options.
_MAX_DATA = 4000


def supported() -> bool:
    try:
        with open("/proc/filesystems", encoding="ascii") as f:
            return any(line.split()[-1] == "overlay" for line in f if line.strip())
    except OSError:
        return False


def mount(lowers: list[str], upper: str, work: str, target: str) -> None:
    """Mount an overlay at `target`. `lowers` is top-most first, as overlayfs wants it."""
    if not lowers:
        raise MountError("an overlay needs at least one lower layer")
    upper, work, target = os.path.abspath(upper), os.path.abspath(work), os.path.abspath(target)
    data = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
    if len(data) <= _MAX_DATA:
        _check_names(lowers)
        _mount(data, target)
        return
    try:
        _mount_layer_by_layer(lowers, upper, work, target)
        return
    except OSError as e:
        if e.errno not in (errno.ENOSYS, errno.EINVAL, errno.EPERM):
            raise MountError(f"mounting overlay on {target} failed: {e.strerror}") from None
    # No `lowerdir+` (before Linux 6.8): name the lower dirs relative to their common parent,
    # which mount(2) resolves against our working directory.
    _check_names(lowers)
    common = os.path.commonpath(lowers)
    rel = [os.path.relpath(p, common) for p in lowers]
    data = f"lowerdir={':'.join(rel)},upperdir={upper},workdir={work}"
    if len(data) > _MAX_DATA:
        raise MountError(f"too many layers ({len(lowers)}) for one overlay mount on this kernel "
                         "(overlayfs takes them one by one from Linux 6.8 on)")
    old = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.chdir(common)
        _mount(data, target)
    finally:
        os.fchdir(old)
        os.close(old)


def mount_readonly(lowers: list[str], target: str) -> None:
    """A read-only overlay of `lowers` alone (top-most first) at `target`: an image's merged view."""
    data = f"lowerdir={':'.join(lowers)}"
    if len(data) > _MAX_DATA:
        raise MountError(f"too many layers ({len(lowers)}) for one read-only overlay mount")
    _check_names(lowers)
    try:
        syscalls.mount("overlay", target, "overlay", syscalls.MS_RDONLY, data)
    except OSError as e:
        raise MountError(f"mounting overlay on {target} failed: {e.strerror}") from None


def _check_names(lowers: list[str]) -> None:
    for p in lowers:
        if ":" in p or "," in p:
            raise MountError(f"cannot use {p} as an overlay lower dir (it contains ':' or ',')")


def _mount_layer_by_layer(lowers: list[str], upper: str, work: str, target: str) -> None:
    fs = syscalls.fsopen("overlay")
    try:
        for d in lowers:
            syscalls.fsconfig(fs, syscalls.FSCONFIG_SET_STRING, "lowerdir+", d)
        syscalls.fsconfig(fs, syscalls.FSCONFIG_SET_STRING, "upperdir", upper)
        syscalls.fsconfig(fs, syscalls.FSCONFIG_SET_STRING, "workdir", work)
        syscalls.fsconfig(fs, syscalls.FSCONFIG_CMD_CREATE)
        mnt = syscalls.fsmount(fs)
    finally:
        os.close(fs)
    try:
        syscalls.move_mount(mnt, target)
    finally:
        os.close(mnt)


def _mount(data: str, target: str) -> None:
    try:
        syscalls.mount("overlay", target, "overlay", 0, data)
    except OSError as e:
        raise MountError(f"mounting overlay on {target} failed: {e.strerror}") from None


def unmount(target: str, lazy: bool = False) -> None:
    try:
        syscalls.umount2(target, syscalls.MNT_DETACH if lazy else 0)
    except OSError as e:
        if e.errno == errno.EINVAL:  # not a mount point (any more)
            return
        hint = " (is a container still running from it?)" if e.errno == errno.EBUSY else ""
        raise MountError(f"unmounting {target} failed: {e.strerror}{hint}") from None


def is_mountpoint(path: str) -> bool:
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            want = os.path.realpath(path)
            for line in f:
                mp = line.split()[4].replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
                if mp == want:
                    return True
    except OSError:
        pass
    return False
