"""Mount primitives that work on file descriptors only (new mount API).

A mount is built detached — fsopen/fsconfig/fsmount for a new filesystem, open_tree(CLONE) for
a bind — given its attributes while nobody can see it, then attached with move_mount onto an
fd that pathrs resolved inside the root. No path string is looked up between the check and the
mount (CVE-2021-30465), and nothing here depends on which /proc is mounted, so the same code
works before and after pivot_root.
"""

from __future__ import annotations

import errno
import os

from ocirt.linux import syscalls as sc
from ocirt.rootfs.options import MountOptions

_T = sc.MOVE_MOUNT_F_EMPTY_PATH | sc.MOVE_MOUNT_T_EMPTY_PATH
_new_api = True


def _fs_log(fsfd: int) -> str:
    """The kernel's own explanation of an fsconfig failure ("e tmpfs: Bad value for ...")."""
    msgs = []
    for _ in range(8):
        try:
            msgs.append(os.read(fsfd, 512).decode(errors="replace").strip())
        except OSError:
            break
    return "; ".join(m[2:] if m[1:2] == " " else m for m in msgs if m)


def new_fs(fstype: str, source: str | None, opts: MountOptions) -> int:
    """A detached mount of a new `fstype` superblock; returns the mount fd.

    Raises OSError(ENOSYS) when the kernel lacks fsopen (callers fall back to mount(2))."""
    global _new_api
    if not _new_api:
        raise OSError(errno.ENOSYS, "fsopen unavailable")
    try:
        fs = sc.fsopen(fstype, sc.FSOPEN_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ENOSYS:
            _new_api = False
        raise
    try:
        try:
            if source:
                sc.fsconfig(fs, sc.FSCONFIG_SET_STRING, "source", source)
            for flag in opts.sb_flags():
                sc.fsconfig(fs, sc.FSCONFIG_SET_FLAG, flag)
            for param in opts.data:
                key, eq, value = param.partition("=")
                if eq:
                    sc.fsconfig(fs, sc.FSCONFIG_SET_STRING, key, value)
                else:
                    sc.fsconfig(fs, sc.FSCONFIG_SET_FLAG, key)
            sc.fsconfig(fs, sc.FSCONFIG_CMD_CREATE)
            return sc.fsmount(fs, sc.FSMOUNT_CLOEXEC, opts.fresh_attrs())
        except OSError as e:
            why = _fs_log(fs)
            if why:
                raise OSError(e.errno, f"{e.strerror} ({why})") from None
            raise
    finally:
        os.close(fs)


def legacy_mount(fstype: str, source: str | None, opts: MountOptions, target_fd: int) -> None:
    """mount(2) onto the resolved fd via its magic link, for kernels without fsopen."""
    flags = opts.flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
    sc.mount(source or fstype, f"/proc/self/fd/{target_fd}", fstype, flags,
             opts.data_string() or None)


def clone(src_fd: int, recursive: bool) -> int:
    """A detached copy of the mount tree at `src_fd` (the bind-mount source)."""
    flags = sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC | sc.AT_EMPTY_PATH
    if recursive:
        flags |= sc.AT_RECURSIVE
    return sc.open_tree(src_fd, "", flags)


# statvfs f_flag bits -> the mount attributes the kernel locks on mounts a less privileged
# mount namespace got from a more privileged one (MNT_LOCK_*)
_LOCKABLE = ((0x1, sc.MOUNT_ATTR_RDONLY), (0x2, sc.MOUNT_ATTR_NOSUID),
             (0x4, sc.MOUNT_ATTR_NODEV), (0x8, sc.MOUNT_ATTR_NOEXEC))


def keep_locked(src_fd: int, attr_set: int, attr_clr: int) -> tuple[int, int]:
    """(set, clear) without clearing what the source mount has: in a user namespace those
    flags are locked and clearing them fails with EPERM; runc keeps them the same way. A
    different atime mode than the source's is not asked for either, for the same reason."""
    flags = os.fstatvfs(src_fd).f_flag
    for st, attr in _LOCKABLE:
        if flags & st:
            attr_clr &= ~attr
    if attr_clr & sc.MOUNT_ATTR__ATIME:
        attr_clr &= ~sc.MOUNT_ATTR__ATIME
        attr_set &= ~sc.MOUNT_ATTR__ATIME
    return attr_set, attr_clr


def bind_clone(src_fd: int, opts: MountOptions, recursive: bool, userns: bool) -> int:
    """A detached bind of `src_fd` with the attributes `opts` names. In a user namespace,
    flags the kernel locked on the source are kept (keep_locked)."""
    mnt = clone(src_fd, recursive)
    try:
        aset, aclr = opts.bind_attrs()
        if userns:
            aset, aclr = keep_locked(src_fd, aset, aclr)
        set_attrs(mnt, aset, aclr)
    except BaseException:
        os.close(mnt)
        raise
    return mnt


def set_attrs(mnt_fd: int, attr_set: int, attr_clr: int, recursive: bool = False) -> None:
    if attr_set or attr_clr:
        flags = sc.AT_EMPTY_PATH | (sc.AT_RECURSIVE if recursive else 0)
        sc.mount_setattr(mnt_fd, "", flags, attr_set, attr_clr)


def set_propagation(mnt_fd: int, props: tuple[int, ...] | list[int]) -> None:
    for p in props:
        flags = sc.AT_EMPTY_PATH | (sc.AT_RECURSIVE if p & sc.MS_REC else 0)
        sc.mount_setattr(mnt_fd, "", flags, propagation=p & ~sc.MS_REC)


def attach(mnt_fd: int, target_fd: int) -> None:
    sc.move_mount(mnt_fd, "", target_fd, "", _T)
