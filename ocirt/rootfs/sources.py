"""Bind-mount sources opened by the host's root for a container with a user namespace.

Inside its user namespace the init is the container's root, which the host's root-owned 0700
directories (a bundle's private dir, ocirt's own state dir with the NOTIFY_SOCKET directory)
do not let through: opening such a source there fails with EACCES. As runc 1.1.5 does
(nsexec's send_mountsources), a helper that stays the host's root joins the container's new
mount namespace once the intermediate has created it, opens every bind source there with
O_PATH, and hands the fds over; the init then clones each mount from its fd. Opening them in
the container's mount namespace (not the host's) is what lets the init clone them, and the
clones keep the locks the kernel put on the host's mounts when that namespace was copied. An
idmapped mount is made whole here (ocirt.rootfs.idmapped), since only the host's root may
idmap a host filesystem, and handed over detached.

The helper is forked by the intermediate before it enters the user namespace (so it is the
host's root, single-threaded and non-dumpable like its parent). A source the helper cannot
open fails the init's mount with the helper's error (ENOENT, not the init's EACCES); should
the helper itself fail, the init opens the sources as it does without a user namespace.
"""

from __future__ import annotations

import errno
import os

from ocirt.errors import SetupError
from ocirt.linux import syscalls as sc
from ocirt.spawn.sync import Sync


def bind_sources(plan: object) -> list:
    """Every bind mount (plan.Mount) of `plan` that has a source."""
    return [m for m in plan.mounts if m.kind == "bind" and m.source]


class Opener:
    """The helper process: start() before entering the user namespace, collect() after the
    mount namespace exists."""

    def __init__(self, mounts: list) -> None:
        self.mounts = mounts
        self.pid = 0
        self.sync: Sync | None = None

    def start(self) -> None:
        ours, theirs = Sync.pair()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                ours.close()
                theirs.expect("go")
                _open_in_mntns_of(parent, self.mounts, theirs)
                code = 0
            except BaseException:  # noqa: BLE001 - a forked child must never unwind
                pass
            finally:
                os._exit(code)
        theirs.close()
        self.pid, self.sync = pid, ours

    def collect(self, rt: object) -> None:
        """Fill the plan's runtime part: source_fds {mount index: O_PATH fd, the detached
        idmapped mount (source_mounted), or -errno of the helper's failure}, and
        source_errors {mount index: why an idmapped mount could not be made}."""
        fds: dict[int, int] = {}
        sync = self.sync
        try:
            sync.send("go")
            while True:
                msg, got = sync.recv()
                if msg["type"] == "done":
                    break
                index = msg["index"]
                if got:
                    fds[index] = got[0]
                    for extra in got[1:]:
                        os.close(extra)
                    if msg.get("mounted"):
                        rt.source_mounted.add(index)
                elif msg.get("errno"):
                    fds[index] = -msg["errno"]
                    if msg.get("message"):
                        rt.source_errors[index] = msg["message"]
        except Exception:  # noqa: BLE001 - the init opens what is missing itself
            pass
        finally:
            sync.close()
            os.waitpid(self.pid, 0)
        rt.source_fds = fds


def _open_in_mntns_of(pid: int, mounts: list, sync: Sync) -> None:
    ns = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(ns, sc.CLONE_NEWNS)
    finally:
        os.close(ns)
    userns = -1
    for m in mounts:
        try:
            fd = os.open(m.source, os.O_PATH | os.O_CLOEXEC)
        except OSError as e:
            sync.send("source", index=m.index, errno=e.errno)
            continue
        try:
            if not m.opts.idmap:
                sync.send("source", fds=[fd], index=m.index)
                continue
            from ocirt.rootfs import idmapped
            if userns < 0 and not m.uid_mappings:
                userns = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
            try:
                mnt = idmapped.make(fd, m, True, userns if userns >= 0 else None)
            except SetupError as e:
                sync.send("source", index=m.index, errno=errno.EPERM, message=e.message)
                continue
            try:
                sync.send("source", fds=[mnt], index=m.index, mounted=True)
            finally:
                os.close(mnt)
        finally:
            os.close(fd)
    sync.send("done")
