"""Taking down the mounts of a container that shares the runtime's mount namespace.

Without a mount namespace of its own (runtime-spec: an unlisted namespace type is inherited),
the init mounts the config's `mounts` under the rootfs in the runtime's namespace, where nothing
removes them when the container goes; runc leaves them there. ocirt removes exactly what it
made when the container is deleted or its create fails: for each config mount, last first, the
topmost mount at its destination (resolved inside the rootfs, never through a symlink out of
it), detached together with anything mounted below it.
"""

from __future__ import annotations

import os

# Imported by `delete` for every container without a mount namespace of its own: the syscall
# layer is loaded only when needed.


def shares_runtime_mntns(ns_types) -> bool:
    """No mount namespace in the config: the container inherits the runtime's (spec)."""
    return "mount" not in ns_types


def _mnt_id(fd: int) -> int | None:
    try:
        with open(f"/proc/self/fdinfo/{fd}", "rb") as f:
            for line in f:
                if line.startswith(b"mnt_id:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _is_mount_root(fd: int) -> bool:
    try:
        parent = os.open("..", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
    except OSError:
        return False
    try:
        mine, theirs = _mnt_id(fd), _mnt_id(parent)
        return mine is not None and theirs is not None and mine != theirs
    finally:
        os.close(parent)


def unmount(rootfs: str, config: dict) -> list[str]:
    """Detach the config's mounts under `rootfs`; returns the destinations that failed."""
    from ocirt.linux import pathrs
    from ocirt.linux import syscalls as sc
    from ocirt.rootfs.plan import clean
    failed = []
    try:
        root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return failed
    try:
        for m in reversed(config.get("mounts") or []):
            dest = clean(str(m.get("destination") or "/"))
            if dest == "/":
                continue
            try:
                fd = pathrs.open_in_root(root, dest, os.O_PATH)
            except OSError:
                continue
            try:
                if _is_mount_root(fd):
                    sc.umount2(f"/proc/self/fd/{fd}", sc.MNT_DETACH)
            except OSError:
                failed.append(dest)
            finally:
                os.close(fd)
    finally:
        os.close(root)
    return failed
