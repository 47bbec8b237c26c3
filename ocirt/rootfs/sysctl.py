"""linux.sysctl: which keys a container may set (SECURITY.md rule 14, runc's validator) and
writing them through the private procfs (rule 7, CVE-2025-52881), never through a path the
container's mounts could redirect."""

from __future__ import annotations

import os

from ocirt.config.semantic import format_path
from ocirt.errors import ConfigError, SetupError
from ocirt.linux import procfs

_IPC_KEYS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                       "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                       "kernel.shm_rmid_forced"})


def split_key(key: str) -> list[str]:
    """runc accepts `/` as the separator too; then dots are part of names (eth0.100)."""
    return key.split("/") if "/" in key else key.split(".")


def validate(sysctl: dict, new_ns: frozenset[str], joined_ns: frozenset[str],
             linux: dict) -> list[tuple[str, str, str]]:
    out = []
    for key, value in sysctl.items():
        where = format_path(("linux", "sysctl", key))
        parts = split_key(key)
        if any(p in ("", ".", "..") for p in parts):
            raise ConfigError(where, f"invalid sysctl key {key!r}")
        if not isinstance(value, str):
            raise ConfigError(where, "sysctl values must be strings")
        dotted = ".".join(parts)
        ns = new_ns | joined_ns
        if dotted in _IPC_KEYS or dotted.startswith("fs.mqueue."):
            if "ipc" not in ns:
                raise ConfigError(where, f"sysctl {key!r} is not allowed in the hosts ipc "
                                  "namespace")
        elif parts[0] == "net":
            if "network" not in new_ns and not _foreign_netns(linux):
                raise ConfigError(where, f"sysctl {key!r} not allowed in host network "
                                  "namespace")
        elif dotted == "kernel.domainname" and "uts" in ns:
            pass
        elif dotted == "kernel.hostname" and "uts" in ns:
            raise ConfigError(where, f"sysctl {key!r} is not allowed as it conflicts with "
                              "the OCI \"hostname\" field")
        else:
            raise ConfigError(where, f"sysctl {key!r} is not in a separate kernel namespace")
        out.append((key, "/".join(parts), value))
    return out


def _foreign_netns(linux: dict) -> bool:
    for ns in linux.get("namespaces") or []:
        if ns.get("type") == "network" and ns.get("path"):
            try:
                return os.stat(ns["path"]).st_ino != os.stat("/proc/self/ns/net").st_ino
            except OSError:
                return False
    return False


def apply(entries: list[tuple[str, str, str]]) -> None:
    """Run in the init after it entered the container's namespaces: /proc/sys/net (and ipc,
    uts) follow the namespaces of the process that opens the file."""
    for key, rel, value in entries:
        try:
            procfs.write_file("sys/" + rel, value.encode())
        except OSError as e:
            raise SetupError(f"{format_path(('linux', 'sysctl', key))}: write /proc/sys/{rel}: "
                             f"{e.strerror or e}") from None
