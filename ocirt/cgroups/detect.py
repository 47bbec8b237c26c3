"""Which cgroup hierarchies this host has: v1 (legacy), v2 (unified) or hybrid.

Read once per process from /proc/self/mountinfo (one small read; no statfs walk), so that
`for_container` stays free of side effects and cheap on the start-up path.
"""

from __future__ import annotations

from ocirt import fspath

# The paths key of the cgroup2 hierarchy, as in runc's state.json (re-exported by paths).
UNIFIED = ""

V1, V2, HYBRID = "v1", "v2", "hybrid"

# Superblock options of a v1 cgroup mount that are not controller names.
_NOT_CONTROLLERS = frozenset({"rw", "ro", "noprefix", "clone_children", "xattr",
                              "cpuset_v2_mode", "favordynmods", "nsdelegate",
                              "memory_localevents", "memory_recursiveprot"})


class Hierarchy:
    # (plain classes here: dataclasses/typing cost ~10 ms of imports on every invocation)
    __slots__ = ("mountpoint", "root", "controllers", "version")

    def __init__(self, mountpoint: str, root: str, controllers: frozenset[str],
                 version: int) -> None:
        self.mountpoint = mountpoint
        self.root = root                # the part of the hierarchy this mount shows
        self.controllers = controllers  # v1: subsystems and "name=..."; v2: empty (see Host)
        self.version = version

    def __repr__(self) -> str:
        return f"Hierarchy({self.mountpoint!r}, {self.root!r}, v{self.version})"


class Host:
    def __init__(self, mode: str, v1: dict[str, Hierarchy] | None = None,
                 unified: Hierarchy | None = None) -> None:
        self.mode = mode
        self.v1 = v1 or {}                      # controller -> hierarchy
        self.unified = unified
        self._v2_controllers: frozenset[str] | None = None

    @property
    def v2_controllers(self) -> frozenset[str]:
        """Controllers the unified root offers (read lazily: pure-v1 callers never pay)."""
        if self._v2_controllers is None:
            ctl = frozenset()
            if self.unified is not None:
                try:
                    with open(f"{self.unified.mountpoint}/cgroup.controllers") as f:
                        ctl = frozenset(f.read().split())
                except OSError:
                    pass
            self._v2_controllers = ctl
        return self._v2_controllers

    def route(self, controller: str) -> int | None:
        """1 or 2: the hierarchy that has `controller`; v1 wins in hybrid mode (as there the
        kernel binds a controller to at most one hierarchy, this only matters for bookkeeping)."""
        if controller in self.v1:
            return 1
        if self.unified is not None and controller in self.v2_controllers:
            return 2
        return None



def parse_mountinfo(text: str) -> Host:
    # Imported here: kill and delete import this module for its constants only.
    from ocirt.linux import mountinfo
    v1: dict[str, Hierarchy] = {}
    unified: Hierarchy | None = None
    for e in mountinfo.entries(text):
        if e.fstype not in ("cgroup", "cgroup2"):
            continue
        root, mnt = e.root, e.mountpoint
        if e.fstype == "cgroup2":
            # Keep the first mount, unless a later one is at the conventional place.
            if unified is None or mnt in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
                unified = Hierarchy(mnt, root, frozenset(), 2)
            continue
        ctrls = frozenset(o for o in e.super_options.split(",")
                          if o not in _NOT_CONTROLLERS and not o.startswith("release_agent="))
        h = Hierarchy(mnt, root, ctrls, 1)
        for c in ctrls:
            # A hierarchy may be mounted more than once; prefer the mount of its root.
            if c not in v1 or (v1[c].root != "/" and root == "/"):
                v1[c] = h
    real_v1 = [c for c in v1 if not c.startswith("name=")]
    if real_v1:
        mode = HYBRID if unified is not None else V1
    elif unified is not None:
        mode = V2
    else:
        mode = V1   # no cgroups at all; the manager reports it when asked to create
    return Host(mode, v1, unified)


_host: Host | None = None


def host() -> Host:
    global _host
    if _host is None:
        with open("/proc/self/mountinfo") as f:
            _host = parse_mountinfo(f.read())
    return _host


def mode() -> str:
    return host().mode


def own_cgroups(text: str | None = None) -> dict[str, str]:
    """/proc/self/cgroup as {controller: path}; "" is the v2 entry (hierarchy 0)."""
    if text is None:
        with open("/proc/self/cgroup") as f:
            text = f.read()
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, ctrls, path = parts
        if not ctrls:
            out[""] = path
        else:
            for c in ctrls.split(","):
                out[c] = path
    return out


def systemd_running() -> bool:
    # The test systemd itself documents (sd_booted(3)); runc uses the same one.
    return fspath.isdir("/run/systemd/system")
