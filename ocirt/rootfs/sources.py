"""Bind-mount sources opened by the host's root for a container with a user namespace.

Inside its user namespace the init is the container's root, which the host's root-owned 0700
directories (a bundle's private dir, ocirt's own state dir with the NOTIFY_SOCKET directory)
do not let through: opening such a source there fails with EACCES. As runc 1.1.5 does
(nsexec's send_mountsources), a helper that stays the host's root joins the container's new
mount namespace once the intermediate has created it, opens every bind source there with
O_PATH, and hands the fds over; the init then clones each mount from its fd. Opening them in
the container's mount namespace (not the host's) is what lets the init clone them, and the
clones keep the locks the kernel put on the host's mounts when that namespace was copied.

The helper is forked by the intermediate before it enters the user namespace (so it is the
host's root, single-threaded and non-dumpable like its parent). A source the helper cannot
open fails the init's mount with the helper's error (ENOENT, not the init's EACCES); should
the helper itself fail, the init opens the sources as it does without a user namespace.
"""

from __future__ import annotations

import os

from ocirt.linux import syscalls as sc
from ocirt.spawn.sync import Sync


def bind_sources(plan: object) -> list[tuple[int, str]]:
    """(mount index, host path) of every bind mount of `plan` that has a source."""
    return [(m.index, m.source) for m in plan.mounts if m.kind == "bind" and m.source]


class Opener:
    """The helper process: start() before entering the user namespace, collect() after the
    mount namespace exists."""

    def __init__(self, sources: list[tuple[int, str]]) -> None:
        self.sources = sources
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
                _open_in_mntns_of(parent, self.sources, theirs)
                code = 0
            except BaseException:  # noqa: BLE001 - a forked child must never unwind
                pass
            finally:
                os._exit(code)
        theirs.close()
        self.pid, self.sync = pid, ours

    def collect(self) -> dict[int, int]:
        """{mount index: O_PATH fd, or -errno of the helper's failed open}."""
        fds: dict[int, int] = {}
        sync = self.sync
        try:
            sync.send("go")
            while True:
                msg, got = sync.recv()
                if msg["type"] == "done":
                    break
                if got:
                    fds[msg["index"]] = got[0]
                    for extra in got[1:]:
                        os.close(extra)
                elif msg.get("errno"):
                    fds[msg["index"]] = -msg["errno"]
        except Exception:  # noqa: BLE001 - the init opens what is missing itself
            pass
        finally:
            sync.close()
            os.waitpid(self.pid, 0)
        return fds


def _open_in_mntns_of(pid: int, sources: list[tuple[int, str]], sync: Sync) -> None:
    ns = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(ns, sc.CLONE_NEWNS)
    finally:
        os.close(ns)
    for index, path in sources:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError as e:
            sync.send("source", index=index, errno=e.errno)
            continue
        try:
            sync.send("source", fds=[fd], index=index)
        finally:
            os.close(fd)
    sync.send("done")
