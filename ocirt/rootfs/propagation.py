"""Mount propagation of the container's root.

Before anything is mounted, `/` of the new mount namespace stops sending events to the host:
rslave by default (runc's prepareRoot), rprivate if the config asks for private. A requested
`shared`/`unbindable` is applied only after pivot_root, on the container's own root: making it
shared earlier would put the host's mounts and ours in one peer group.
"""

from __future__ import annotations

import os

from ocirt.linux import syscalls as sc
from ocirt.rootfs import attach
from ocirt.rootfs.plan import ROOT_PROPAGATION, Plan


def isolate_host(plan: Plan) -> None:
    if plan.propagation in ("private", "rprivate"):
        flags = sc.MS_REC | sc.MS_PRIVATE
    else:
        flags = sc.MS_REC | sc.MS_SLAVE
    sc.mount(None, "/", None, flags)


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
