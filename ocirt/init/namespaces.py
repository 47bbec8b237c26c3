"""Namespace kinds: their clone flag and /proc/<pid>/ns name, and the order they are entered.

The user namespace always comes first (it owns the others); the pid namespace only takes effect
for children, which is why the init is a grandchild of the runtime.
"""

from __future__ import annotations

import os

from ocirt.errors import SetupError
from ocirt.linux import syscalls as sc
from ocirt.log import logger

FLAGS = {
    "user": sc.CLONE_NEWUSER,
    "pid": sc.CLONE_NEWPID,
    "network": sc.CLONE_NEWNET,
    "mount": sc.CLONE_NEWNS,
    "ipc": sc.CLONE_NEWIPC,
    "uts": sc.CLONE_NEWUTS,
    "cgroup": sc.CLONE_NEWCGROUP,
    "time": sc.CLONE_NEWTIME,
}
PROC_NAME = {"user": "user", "pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc",
             "uts": "uts", "cgroup": "cgroup", "time": "time"}
# setns order: user first so we hold privileges over the rest; mount last so paths given for
# the others are still resolved in the runtime's mount namespace.
JOIN_ORDER = ("user", "pid", "network", "ipc", "uts", "cgroup", "time", "mount")


def split(namespaces: list[dict]) -> tuple[set[str], dict[str, str]]:
    """(kinds to create, kind -> path to join)."""
    new: set[str] = set()
    join: dict[str, str] = {}
    for ns in namespaces or []:
        if ns.get("path"):
            join[ns["type"]] = ns["path"]
        else:
            new.add(ns["type"])
    return new, join


def open_for_join(join: dict[str, str]) -> list[tuple[str, int]]:
    """Open every namespace path up front, in the runtime's mount namespace, and check each is
    the namespace kind it claims to be."""
    out: list[tuple[str, int]] = []
    for kind in JOIN_ORDER:
        path = join.get(kind)
        if path is None:
            continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise SetupError(f"failed to open {kind} namespace {path}: {e.strerror}") from None
        out.append((kind, fd))
    return out


def join_all(fds: list[tuple[str, int]]) -> None:
    for kind, fd in fds:
        logger.debug("nsexec: joining the %s namespace", kind)
        try:
            sc.setns(fd, FLAGS[kind])
        except OSError as e:
            raise SetupError(f"failed to join {kind} namespace: {e.strerror}") from None
        os.close(fd)


def unshare_flags(new: set[str], exclude: tuple[str, ...] = ()) -> int:
    flags = 0
    for kind in new:
        if kind not in exclude:
            flags |= FLAGS[kind]
    return flags
