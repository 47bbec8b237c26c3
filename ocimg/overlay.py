"""overlayfs mounts through mount(2)/umount2(2) directly (ctypes), no mount(8) needed."""

from __future__ import annotations

import ctypes
import errno
import os

from ocimg.errors import MountError

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

MNT_DETACH = 2
# mount(2) copies at most one page of options; longer lowerdir lists need relative paths.
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
    for p in lowers:
        if ":" in p or "," in p:
            raise MountError(f"cannot use {p} as an overlay lower dir (it contains ':' or ',')")
    data = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
    if len(data) <= _MAX_DATA:
        _mount(data, target)
        return
    # Too long for one page: name the lower dirs relative to their common parent, which
    # mount(2) resolves against our working directory.
    common = os.path.commonpath(lowers)
    rel = [os.path.relpath(p, common) for p in lowers]
    data = f"lowerdir={':'.join(rel)},upperdir={os.path.abspath(upper)},workdir={os.path.abspath(work)}"
    if len(data) > _MAX_DATA:
        raise MountError(f"too many layers ({len(lowers)}) for one overlay mount")
    old = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.chdir(common)
        _mount(data, os.path.abspath(target) if os.path.isabs(target) else target)
    finally:
        os.fchdir(old)
        os.close(old)


def _mount(data: str, target: str) -> None:
    if _libc.mount(b"overlay", os.fsencode(target), b"overlay", 0, data.encode()) != 0:
        e = ctypes.get_errno()
        raise MountError(f"mounting overlay on {target} failed: {os.strerror(e)}")


def unmount(target: str, lazy: bool = False) -> None:
    if _libc.umount2(os.fsencode(target), MNT_DETACH if lazy else 0) != 0:
        e = ctypes.get_errno()
        if e == errno.EINVAL:  # not a mount point (any more)
            return
        hint = " (is a container still running from it?)" if e == errno.EBUSY else ""
        raise MountError(f"unmounting {target} failed: {os.strerror(e)}{hint}")


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
