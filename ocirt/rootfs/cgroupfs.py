"""A `type: cgroup` mount (usually /sys/fs/cgroup), the way runc builds it.

* cgroup v1 / hybrid host: a tmpfs (nosuid,nodev,noexec,mode=755) at the destination and, for
  each host hierarchy, its subdirectory: a bind of the container's own cgroup directory (read
  from /proc/self/cgroup, so the init must already be in its cgroup), or a fresh cgroup mount
  when the container has a cgroup namespace. Co-mounted controllers get runc's symlinks
  (cpu -> cpu,cpuacct). Unlike runc 1.1 the hybrid cgroup2 hierarchy is provided too, at
  <dest>/unified, and the tmpfs itself is made read-only when the mount asks for `ro`.
* cgroup v2 host: a fresh cgroup2 mount with a cgroup namespace, else a bind of the
  container's own cgroup directory (never the whole host hierarchy).

The `ro` of a fresh cgroup mount is applied as a mount attribute only: cgroup superblocks are
shared with the host, and must not be touched.
"""

from __future__ import annotations

import os

from ocirt.errors import SetupError
from ocirt.linux import pathrs, procfs
from ocirt.linux import syscalls as sc
from ocirt.linux import mountinfo
from ocirt.rootfs import attach, mountpoint
from ocirt.rootfs.options import MountOptions
from ocirt.rootfs.plan import Mount, Plan

_DEFAULT = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC


class Hierarchy:
    __slots__ = ("mountpoint", "root", "fstype", "controllers")

    def __init__(self, mountpoint: str, root: str, fstype: str, controllers: frozenset[str]):
        self.mountpoint = mountpoint
        self.root = root
        self.fstype = fstype
        self.controllers = controllers



def hierarchies(exclude_under: str) -> list[Hierarchy]:
    """cgroup mounts of our mount namespace (the host's, copied), first one per hierarchy."""
    out: list[Hierarchy] = []
    seen: set[frozenset[str]] = set()
    for e in mountinfo.entries(procfs.read_file("self/mountinfo").decode()):
        if e.fstype not in ("cgroup", "cgroup2"):
            continue
        mp = e.mountpoint
        if mp == exclude_under or mp.startswith(exclude_under.rstrip("/") + "/"):
            continue
        if e.fstype == "cgroup2":
            ctrls: frozenset[str] = frozenset()
        else:
            ctrls = frozenset(o for o in e.super_options.split(",") if o not in ("rw", "ro"))
        if ctrls in seen:
            continue
        seen.add(ctrls)
        out.append(Hierarchy(mp, e.root, e.fstype, ctrls))
    return out


def own_cgroups(proc: str = "self") -> dict[frozenset[str], str]:
    """/proc/<proc>/cgroup as {controllers: path}; cgroup2 is the empty set."""
    out: dict[frozenset[str], str] = {}
    for line in procfs.read_file(f"{proc}/cgroup").decode().splitlines():
        _, ctrls, path = line.split(":", 2)
        out[frozenset(c for c in ctrls.split(",") if c)] = path
    return out


def own_path(h: Hierarchy, own: dict[frozenset[str], str]) -> str | None:
    """Host path of our cgroup directory in hierarchy `h`, None if it lies outside it."""
    if h.fstype == "cgroup2":
        path = own.get(frozenset())
    else:
        path = next((p for c, p in own.items() if c and c <= h.controllers), None)
    if path is None:
        return None
    rel = os.path.relpath(path, h.root)
    if rel == ".." or rel.startswith("../"):
        return None
    return os.path.normpath(os.path.join(h.mountpoint, rel))


def mount(plan: Plan, m: Mount) -> None:
    try:
        hs = hierarchies(plan.rootfs)
        own = own_cgroups()
        if any(h.fstype == "cgroup2" and h.mountpoint == "/sys/fs/cgroup" for h in hs):
            _unified(plan, m, hs, own)
        else:
            _v1(plan, m, hs, own)
    except OSError as e:
        raise SetupError(f"{m.where}: mounting cgroup to rootfs at {m.destination!r}: "
                         f"{e.strerror or e}") from None


def _hierarchy_mount(plan: Plan, m: Mount, h: Hierarchy, own: dict, target: int) -> None:
    if plan.cgroupns:
        if h.fstype == "cgroup2":
            data: tuple[str, ...] = ()
            source = "cgroup2"
        else:
            data = tuple(sorted(h.controllers))
            source = "systemd" if data == ("name=systemd",) else "cgroup"
        mnt = attach.new_fs(h.fstype, source, MountOptions(flags=_DEFAULT, data=data))
    else:
        path = own_path(h, own)
        if path is None:
            raise SetupError(f"{m.where}: cannot find the container's cgroup in "
                             f"{h.mountpoint}")
        src = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            mnt = attach.clone(src, recursive=True)
        finally:
            os.close(src)
    try:
        aset, aclr = m.opts.bind_attrs()
        attach.set_attrs(mnt, aset, aclr)
        attach.attach(mnt, target)
        attach.set_propagation(mnt, m.opts.propagation)
    finally:
        os.close(mnt)


def _unified(plan: Plan, m: Mount, hs: list[Hierarchy], own: dict) -> None:
    h = next(h for h in hs if h.fstype == "cgroup2" and h.mountpoint == "/sys/fs/cgroup")
    target, _ = mountpoint.directory(plan.rt.root_fd, m.destination)
    try:
        pathrs.check_in_root(target, plan.rootfs)
        _hierarchy_mount(plan, m, h, own, target)
    finally:
        os.close(target)


def _v1(plan: Plan, m: Mount, hs: list[Hierarchy], own: dict) -> None:
    target, _ = mountpoint.directory(plan.rt.root_fd, m.destination)
    tmpfs = -1
    try:
        pathrs.check_in_root(target, plan.rootfs)
        tmpfs = attach.new_fs("tmpfs", "tmpfs", MountOptions(flags=_DEFAULT, data=("mode=755",)))
        attach.attach(tmpfs, target)
        attach.set_propagation(tmpfs, m.opts.propagation)
        # The tmpfs is ours and brand new: names in it need no in-root resolution.
        top = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=tmpfs)
        try:
            for h in hs:
                name = os.path.basename(h.mountpoint)
                os.mkdir(name, 0o755, dir_fd=top)
                sub = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                              dir_fd=top)
                try:
                    _hierarchy_mount(plan, m, h, own, sub)
                finally:
                    os.close(sub)
                if "," in name:
                    for ctrl in name.split(","):
                        try:
                            os.symlink(name, ctrl, dir_fd=top)
                        except FileExistsError:
                            pass
        finally:
            os.close(top)
        if m.opts.readonly:
            attach.set_attrs(tmpfs, sc.MOUNT_ATTR_RDONLY, 0)
    finally:
        os.close(target)
        if tmpfs >= 0:
            os.close(tmpfs)
