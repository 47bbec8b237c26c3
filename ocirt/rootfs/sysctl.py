"""linux.sysctl: which keys a container may set (SECURITY.md rule 14, the rules of
ocirt.config.semantic, checked again here against the namespaces the init really gets) and
writing them through the private procfs (rule 7, CVE-2025-52881), never through a path the
container's mounts could redirect."""

from __future__ import annotations

from ocirt.config.semantic import format_path, joins_host_netns, sysctl_path, sysctl_problem
from ocirt.errors import ConfigError, SetupError
from ocirt.linux import procfs


def validate(sysctl: dict, new_ns: frozenset[str], joined_ns: frozenset[str],
             linux: dict) -> list[tuple[str, str, str]]:
    """(config key, file below /proc/sys, value) for each entry, in the config's order."""
    out = []
    for key, value in sysctl.items():
        where = format_path(("linux", "sysctl", key))
        if not isinstance(value, str):
            raise ConfigError(where, "sysctl values must be strings")
        try:
            path = sysctl_path(key)
        except ValueError as e:
            raise ConfigError(where, str(e)) from None
        problem = sysctl_problem(key, path, new_ns | joined_ns,
                                 "network" in joined_ns and _joins_host_netns(linux))
        if problem is not None:
            raise ConfigError(where, problem)
        out.append((key, path, value))
    return out


def _joins_host_netns(linux: dict) -> bool:
    for ns in linux.get("namespaces") or []:
        if ns.get("type") == "network" and ns.get("path"):
            try:
                return joins_host_netns(ns["path"])
            except OSError:
                return True     # cannot tell: refuse, as for the host's own
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
