"""Mount propagation of the container's root.

Before anything is mounted, `/` of the new mount namespace gets `rootfsPropagation` (runc's
prepareRoot), rslave by default: the host's mount events still reach the container, the
container's never reach the host. With `rshared` (Kubernetes' Bidirectional propagation) the
host's shared mounts stay in their peer groups, so a volume bound from one keeps propagating
both ways. The rootfs's own parent mount is then made private when it is shared (runc's
rootfsParentMountPrivate): the rootfs bind and everything mounted inside it must not appear on
the host, and pivot_root refuses a shared parent. `unbindable`/`runbindable` would make the
rootfs impossible to bind: `/` starts rslave then, and, as every requested propagation, it is
also applied to the container's root after pivot_root.
"""

from __future__ import annotations

import os

from ocirt.linux import mountinfo, procfs
from ocirt.linux import syscalls as sc
from ocirt.rootfs import attach
from ocirt.rootfs.plan import ROOT_PROPAGATION, Plan

_DEFAULT = sc.MS_REC | sc.MS_SLAVE
# What leaves some of the host's shared mounts shared in our namespace.
_KEEPS_SHARED = ("shared", "rshared", "slave", "private")


def isolate_host(plan: Plan) -> None:
    prop = plan.propagation
    if prop is None or prop.endswith("unbindable"):
        flags = _DEFAULT
    else:
        flags = ROOT_PROPAGATION[prop]
    sc.mount(None, "/", None, flags)
    if prop in _KEEPS_SHARED:
        _make_parent_private(plan.rootfs)


def _make_parent_private(rootfs: str) -> None:
    """The mount holding `rootfs` (the last, i.e. topmost, of the longest mountpoint above it)
    leaves its peer group."""
    parent = None
    for e in mountinfo.entries(procfs.read_file("self/mountinfo").decode()):
        mp = e.mountpoint
        if rootfs == mp or rootfs.startswith(mp.rstrip("/") + "/"):
            if parent is None or len(mp) >= len(parent.mountpoint):
                parent = e
    if parent is not None and any(o.startswith("shared:") for o in parent.optional):
        sc.mount(None, parent.mountpoint, None, sc.MS_PRIVATE)


def bind_root(plan: Plan) -> int:
    """rbind the rootfs onto itself so it is a mount point (pivot_root needs one); the
    returned mount fd is the root every later lookup starts from."""
    mnt = sc.open_tree(sc.AT_FDCWD, plan.rootfs,
                       sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC | sc.AT_RECURSIVE)
    try:
        sc.move_mount(mnt, "", sc.AT_FDCWD, plan.rootfs, sc.MOVE_MOUNT_F_EMPTY_PATH)
    except BaseException:
        os.close(mnt)
        raise
    return mnt


def apply_final(plan: Plan, root_fd: int) -> None:
    if plan.propagation:
        attach.set_propagation(root_fd, (ROOT_PROPAGATION[plan.propagation],))
