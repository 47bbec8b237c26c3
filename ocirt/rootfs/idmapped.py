"""Idmapped bind mounts: mount options `idmap` (the top mount) and `ridmap` (every mount of the
tree), with the mount's own uidMappings/gidMappings or, without them, the container's user
namespace (as crun does).

The mount is cloned detached (open_tree with OPEN_TREE_CLONE), gets its bind attributes, then
MOUNT_ATTR_IDMAP with a user namespace fd (mount_setattr), and is attached with move_mount by
the caller. A mapping line "containerID hostID size" is written as is into a user namespace
made for the mount: a file that is containerID on disk shows as hostID, and a process whose
id is hostID writes containerID to disk.

The kernel lets only a process privileged over the filesystem's own user namespace idmap it:
the host's root for a host filesystem. With a user namespace that is the source helper
(ocirt.rootfs.sources), which stays the host's root; an unprivileged runtime cannot idmap a
host filesystem at all. Not every filesystem supports it (ext4, xfs, btrfs, tmpfs do; an
overlay mount does not on this kernel): the error names the mount and the reason.
"""

from __future__ import annotations

import errno
import os

from ocirt.errors import SetupError
from ocirt.linux import syscalls as sc
from ocirt.rootfs import attach

_OVERLAYFS_SUPER_MAGIC = 0x794C7630


def make(src_fd: int, m, userns: bool, container_userns_fd: int | None = None) -> int:
    """The detached, idmapped clone of `src_fd` for mount `m` (a plan.Mount). Without
    per-mount maps the user namespace is `container_userns_fd`, else our own."""
    ns_fd = -1
    try:
        if m.uid_mappings:
            ns_fd = mapping_userns(m.uid_mappings, m.gid_mappings)
        elif container_userns_fd is None:
            ns_fd = os.open("/proc/self/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        mnt = attach.bind_clone(src_fd, m.opts, m.opts.recursive, userns)
        try:
            flags = sc.AT_EMPTY_PATH | (sc.AT_RECURSIVE if m.opts.idmap == "ridmap" else 0)
            sc.mount_setattr(mnt, "", flags, sc.MOUNT_ATTR_IDMAP,
                             userns_fd=ns_fd if ns_fd >= 0 else container_userns_fd)
        except BaseException:
            os.close(mnt)
            raise
        return mnt
    except OSError as e:
        raise SetupError(explain(m, src_fd, e)) from None
    except SetupError as e:
        raise SetupError(f"{m.where}: idmapped mount of {m.source!r}: {e.message}") from None
    finally:
        if ns_fd >= 0:
            os.close(ns_fd)


def explain(m, src_fd: int, e: OSError) -> str:
    """One line naming the mount and why the kernel refused to idmap it."""
    what = f"{m.where}: cannot idmap {m.source!r}"
    if e.errno == errno.EINVAL:
        try:
            magic = sc.fstatfs_type(src_fd)
        except OSError:
            magic = 0
        if magic == _OVERLAYFS_SUPER_MAGIC:
            return f"{what}: an overlay filesystem does not support idmapped mounts"
        return (f"{what}: its filesystem (type {magic:#x}) does not support idmapped mounts, "
                "or a mount below it does not (ridmap)")
    if e.errno == errno.EPERM:
        return (f"{what}: only a process privileged over its filesystem may idmap it (the "
                "host's root for a host filesystem; an unprivileged runtime cannot)")
    return f"{what}: {e.strerror or e}"


def mapping_userns(uid_mappings: list[dict], gid_mappings: list[dict]) -> int:
    """An fd of a new user namespace with these maps. A child process makes it and lives
    only until we hold the fd."""
    from ocirt.init import idmaps
    hold_r, hold_w = os.pipe()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        # Sleeps until the namespace is taken; it runs nothing else and dies before any
        # container process exists.
        code = 1
        try:
            os.close(hold_w)
            os.close(ready_r)
            sc.unshare(sc.CLONE_NEWUSER)
            if os.geteuid() != 0:
                # An unprivileged writer needs our /proc files to be its own (idmaps).
                sc.prctl(sc.PR_SET_DUMPABLE, 1)
            # Our pid as /proc sees it: the init calls this from a new pid namespace while
            # /proc is still the host's.
            os.write(ready_w, os.readlink("/proc/self").encode())
            os.read(hold_r, 1)
            code = 0
        finally:
            os._exit(code)
    os.close(hold_r)
    os.close(ready_w)
    try:
        seen = os.read(ready_r, 32)
        if not seen.isdigit():
            raise SetupError("cannot create a user namespace for an idmapped mount")
        proc_pid = int(seen)
        idmaps.write(proc_pid, {"uidMappings": uid_mappings, "gidMappings": gid_mappings})
        return os.open(f"/proc/{proc_pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(hold_w)
        os.waitpid(pid, 0)
