"""linux.cgroupsPath -> one directory per hierarchy, with runc's rules.

- absolute: relative to each hierarchy's mountpoint;
- relative: relative to the runtime's own cgroup in that hierarchy (/proc/self/cgroup); on the
  unified hierarchy relative to its *parent*, because the runtime's own v2 cgroup holds processes
  and so could not delegate controllers to a child (the "no internal processes" rule);
- absent: DEFAULT_PARENT/<id>, absolute, so that ocirt's cgroups are recognisable and do not
  depend on where the caller happens to run (runc 1.1 uses the relative "<id>").
"""

from __future__ import annotations

import os
import posixpath

from ocirt.cgroups.detect import UNIFIED, Host, own_cgroups  # noqa: F401 (UNIFIED: for importers)
from ocirt.errors import ConfigError, UsageError

DEFAULT_PARENT = "/ocirt"



def clean(path: str) -> str:
    """runc's CleanPath: resolve '..' lexically and never climb above the start, so a relative
    path cannot escape the runtime's cgroup and an absolute one cannot leave the mount."""
    if not path:
        return ""
    if os.path.isabs(path):
        # normpath keeps a leading "//" (POSIX leaves it implementation-defined): "//" would
        # otherwise slip past the root check below and name the hierarchy's root.
        return posixpath.normpath("/" + path.lstrip("/"))
    return posixpath.relpath(posixpath.normpath("/" + path), "/")


def inner_path(container_id: str, cgroups_path: str | None) -> str:
    if not cgroups_path:
        return posixpath.join(DEFAULT_PARENT, container_id)
    p = clean(cgroups_path)
    if p in ("/", ".", ""):
        raise ConfigError("linux.cgroupsPath",
                          f"{cgroups_path!r} names the root cgroup; a container needs its own")
    if ":" in p and not p.startswith("/"):
        raise ConfigError("linux.cgroupsPath",
                          f"{cgroups_path!r} looks like a systemd slice:prefix:name path, "
                          "but the systemd cgroup manager was not requested")
    return p


def _under_mount(mountpoint: str, mount_root: str, cgroup: str) -> str:
    """A cgroup path as /proc/self/cgroup shows it -> a directory under this mount."""
    rel = posixpath.relpath(cgroup, mount_root) if mount_root != "/" else cgroup.lstrip("/")
    if rel.startswith(".."):
        # Our cgroup is outside what this mount shows (e.g. a bind of a sub-tree): use its root.
        rel = ""
    return posixpath.join(mountpoint, rel) if rel and rel != "." else mountpoint


def resolve(host: Host, container_id: str, cgroups_path: str | None) -> dict[str, str]:
    inner = inner_path(container_id, cgroups_path)
    own: dict[str, str] | None = None
    out: dict[str, str] = {}
    for ctrl, h in host.v1.items():
        if inner.startswith("/"):
            out[ctrl] = posixpath.join(h.mountpoint, inner.lstrip("/"))
        else:
            if own is None:
                own = own_cgroups()
            base = _under_mount(h.mountpoint, h.root, own.get(ctrl, "/"))
            out[ctrl] = posixpath.join(base, inner)
    if host.unified is not None:
        h = host.unified
        if inner.startswith("/"):
            out[UNIFIED] = posixpath.join(h.mountpoint, inner.lstrip("/"))
        else:
            if own is None:
                own = own_cgroups()
            parent = posixpath.dirname(own.get(UNIFIED, "/")) or "/"
            out[UNIFIED] = posixpath.join(_under_mount(h.mountpoint, h.root, parent), inner)
    return out


def parse_sub_cgroups(args: list[str]) -> dict[str, str]:
    """exec --cgroup arguments, runc's format: one "PATH" for every hierarchy, or any number of
    "CTRL[,CTRL...]:PATH" -> {controller or "" (every hierarchy): PATH}."""
    out: dict[str, str] = {}
    for arg in args:
        parts = arg.split(":")
        if len(parts) > 2:
            raise UsageError(f"invalid --cgroup argument: {arg}")
        if len(parts) == 1:
            if len(args) != 1:
                raise UsageError(f"invalid --cgroup argument: {arg} (missing <controller>: "
                                 "prefix)")
            out[""] = arg
        else:
            for ctrl in parts[0].split(","):
                out[ctrl] = parts[1]
    return out


def _below(base: str, sub: str) -> str:
    joined = posixpath.normpath(posixpath.join(base, sub.lstrip("/")))
    # Compared by components: runc's string prefix test lets "../c1x" escape from .../c1.
    if joined != base and not joined.startswith(base.rstrip("/") + "/"):
        raise UsageError(f"{sub} is not a sub cgroup path")
    return joined


def sub_paths(paths: dict[str, str], sub: dict[str, str]) -> dict[str, str]:
    """The container's cgroup paths with exec --cgroup's sub-cgroups joined on: never above
    the container's own cgroup in any hierarchy."""
    out = dict(paths)
    if "" in sub and len(sub) == 1:
        for key, d in paths.items():
            out[key] = _below(d, sub[""])
        return out
    for ctrl, add in sub.items():
        if ctrl not in paths:
            raise UsageError(f"unknown controller {ctrl} in --cgroup")
        out[ctrl] = _below(paths[ctrl], add)
    return out
