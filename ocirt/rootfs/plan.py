"""config.json -> a validated, pre-parsed rootfs Plan. No side effects beyond stat().

Called by the runtime parent before anything exists, so every config mistake we can see
without touching the rootfs fails here, with the JSON path of the field in the error.
"""

from __future__ import annotations

import os
import posixpath

from ocirt.errors import ConfigError
from ocirt.linux.userns import running_in_userns
from ocirt.rootfs import hostns
from ocirt.rootfs import options as mopts
from ocirt.rootfs import sysctl as sysctl_rules

# runc's checkProcMount allow-list: files lxcfs emulates (CVE-2019-16884).
PROC_ALLOWED = frozenset({
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
    "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
})

# The devices the spec requires in every container (config-linux.md "Default Devices").
DEFAULT_DEVICES = (("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
                   ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0))

ROOT_PROPAGATION = dict(mopts.PROPAGATION)

_NS_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")


class Mount:
    __slots__ = ("index", "destination", "source", "fstype", "opts", "kind", "uid_mappings",
                 "gid_mappings")

    def __init__(self, index: int, destination: str, source: str | None, fstype: str,
                 opts: mopts.MountOptions, kind: str, uid_mappings: list | None = None,
                 gid_mappings: list | None = None) -> None:
        self.index = index
        self.destination = destination  # absolute, lexically clean container path
        self.source = source            # for binds: an absolute host path
        self.fstype = fstype
        self.opts = opts
        self.kind = kind                # "bind" | "fresh" | "cgroup"
        # An idmapped mount's own maps (opts.idmap); none: the container's user namespace
        self.uid_mappings = uid_mappings or []
        self.gid_mappings = gid_mappings or []

    def with_opts(self, opts: mopts.MountOptions) -> "Mount":
        return Mount(self.index, self.destination, self.source, self.fstype, opts, self.kind,
                     self.uid_mappings, self.gid_mappings)

    def __repr__(self) -> str:
        return f"Mount({self.where} {self.kind} {self.fstype} {self.source!r} -> " \
               f"{self.destination!r}, {self.opts!r})"

    @property
    def where(self) -> str:
        return f"mounts[{self.index}]"


class Device:
    __slots__ = ("path", "kind", "major", "minor", "mode", "uid", "gid")

    def __init__(self, path: str, kind: str, major: int, minor: int, mode: int, uid: int,
                 gid: int) -> None:
        self.path = path
        self.kind = kind        # "c", "b" or "p"
        self.major = major
        self.minor = minor
        self.mode = mode        # permission bits
        self.uid = uid
        self.gid = gid


class Runtime:
    """What prepare() learns and later steps need (fds are this process's)."""
    __slots__ = ("root_fd", "dev_ro", "before_cgroup", "source_fds", "source_mounted",
                 "source_errors")

    def __init__(self) -> None:
        self.root_fd = -1
        self.dev_ro = False
        # mount index -> O_PATH fd of its bind source (or -errno of the failed open), opened
        # by the host's root when the container has a user namespace (ocirt.rootfs.sources)
        self.source_fds: dict[int, int] = {}
        # indices whose fd above is already the detached, idmapped mount, and the helper's
        # explanation of a failure to make one
        self.source_mounted: set[int] = set()
        self.source_errors: dict[int, str] = {}
        # Called before the first cgroup mount: the init is only known to be in its cgroup
        # (which the mount exposes) from then on; see ocirt.init.standard.
        self.before_cgroup = None


class Plan:
    """Everything rootfs setup needs, decided from config.json before anything is created."""

    def __init__(self, *, rootfs: str, bundle: str, readonly: bool, mounts: list[Mount],
                 devices: list[Device], setup_dev: bool, userns: bool,
                 propagation: str | None, masked: list[str], readonly_paths: list[str],
                 sysctl: list[tuple[str, str, str]], new_ns: frozenset[str],
                 joined_ns: frozenset[str], terminal: bool) -> None:
        self.rootfs = rootfs                # absolute host path
        self.bundle = bundle
        self.readonly = readonly
        self.mounts = mounts
        self.devices = devices
        self.setup_dev = setup_dev
        # Mounts are made in a user namespace: no mknod, no new sysfs without the network
        # namespace, flags locked on mounts copied from the host.
        self.userns = userns
        self.propagation = propagation
        self.masked = masked
        self.readonly_paths = readonly_paths
        self.sysctl = sysctl                # (config key, path below /proc/sys, value)
        self.new_ns = new_ns
        self.joined_ns = joined_ns
        self.terminal = terminal
        self.rt = Runtime()
        # The mount namespace plan() ran in: prepare() refuses to touch that one.
        self.host_mntns = _mntns()

    @property
    def cgroupns(self) -> bool:
        return "cgroup" in self.new_ns or "cgroup" in self.joined_ns

    @property
    def shares_runtime_mntns(self) -> bool:
        return hostns.shares_runtime_mntns(self.new_ns | self.joined_ns)


def clean(path: str) -> str:
    """Lexical clean as if rooted at / (so `..` can never climb above it)."""
    return posixpath.normpath("/" + path).replace("//", "/")


def build(config: dict, rootfs: str, bundle: str) -> Plan:
    linux = config.get("linux") or {}
    root = config.get("root") or {}
    bundle = os.path.abspath(bundle)
    # Canonical, because every fd we later resolve is checked against this prefix; resolving
    # it on the host is fine: the bundle path is the caller's, not the image's.
    rootfs = os.path.realpath(os.path.join(bundle, rootfs))
    try:
        st = os.stat(rootfs)
    except OSError as e:
        raise ConfigError("root.path", f"rootfs {rootfs}: {e.strerror}") from None
    if not (st.st_mode & 0o170000 == 0o040000):
        raise ConfigError("root.path", f"rootfs {rootfs} is not a directory")

    new_ns, joined_ns = _namespaces(linux)
    mounts = [_mount(i, m, bundle) for i, m in enumerate(config.get("mounts") or [])]
    _check_idmaps(mounts, "user" in new_ns or "user" in joined_ns)
    dev_bound = any(m.destination == "/dev" and m.kind == "bind" for m in mounts)
    dev_ro = any(m.destination == "/dev" and m.kind == "fresh" and m.opts.readonly
                 for m in mounts)

    propagation = linux.get("rootfsPropagation") or None
    if propagation is not None and propagation not in ROOT_PROPAGATION:
        raise ConfigError("linux.rootfsPropagation",
                          f"invalid rootfs propagation {propagation!r}, expected one of "
                          + ", ".join(sorted(ROOT_PROPAGATION)))

    plan = Plan(
        rootfs=rootfs, bundle=bundle, readonly=bool(root.get("readonly")), mounts=mounts,
        devices=_devices(linux.get("devices") or []), setup_dev=not dev_bound,
        userns="user" in new_ns or "user" in joined_ns or running_in_userns(),
        propagation=propagation,
        masked=_paths(linux.get("maskedPaths") or [], "linux.maskedPaths"),
        readonly_paths=_paths(linux.get("readonlyPaths") or [], "linux.readonlyPaths"),
        sysctl=sysctl_rules.validate(linux.get("sysctl") or {}, new_ns, joined_ns, linux),
        new_ns=new_ns, joined_ns=joined_ns,
        terminal=bool((config.get("process") or {}).get("terminal")))
    plan.rt.dev_ro = dev_ro
    return plan


def _namespaces(linux: dict) -> tuple[frozenset[str], frozenset[str]]:
    new: set[str] = set()
    joined: set[str] = set()
    for ns in linux.get("namespaces") or []:
        t = ns.get("type")
        (joined if ns.get("path") else new).add(t)
    return frozenset(new), frozenset(joined)


def _mntns() -> int:
    try:
        return os.stat("/proc/self/ns/mnt").st_ino
    except OSError:
        return 0


def _mount(i: int, m: dict, bundle: str) -> Mount:
    where = f"mounts[{i}]"
    dest = m.get("destination")
    if not isinstance(dest, str) or not dest:
        raise ConfigError(f"{where}.destination", "destination is required")
    dest = clean(dest)
    try:
        opts = mopts.parse(list(m.get("options") or []))
    except ValueError as e:
        raise ConfigError(f"{where}.options", str(e)) from None
    fstype = m.get("type") or ""
    source = m.get("source")
    if opts.flags & mopts.sc.MS_REMOUNT:
        raise ConfigError(f"{where}.options", "mount option 'remount' is not supported")
    if opts.bind or fstype == "bind":
        if not source:
            raise ConfigError(f"{where}.source", "a bind mount needs a source")
        if not opts.bind:
            opts = opts.with_flags(mopts.sc.MS_BIND)
        source = os.path.normpath(os.path.join(bundle, source))
        kind = "bind"
    elif fstype == "cgroup":
        kind = "cgroup"
    else:
        if not fstype:
            raise ConfigError(f"{where}.type", "a mount that is not a bind needs a type")
        kind = "fresh"
    if opts.tmpcopyup and fstype != "tmpfs":
        raise ConfigError(f"{where}.options", "tmpcopyup is only supported for tmpfs")
    uids, gids = _idmapping(where, m, opts, kind)
    mount = Mount(i, dest, source, fstype, opts, kind, uids, gids)
    err = proc_rule(dest, mount)
    if err:
        raise ConfigError(f"{where}.destination", err)
    return mount


def _idmapping(where: str, m: dict, opts: mopts.MountOptions,
               kind: str) -> tuple[list, list]:
    """The per-mount maps of an idmapped mount, checked as crun does."""
    uids, gids = m.get("uidMappings") or [], m.get("gidMappings") or []
    if (uids or gids) and not opts.idmap:
        key = "uidMappings" if uids else "gidMappings"
        raise ConfigError(f"{where}.{key}", "mount id mappings need the idmap or ridmap option")
    if opts.idmap and kind != "bind":
        raise ConfigError(f"{where}.options",
                          f"{opts.idmap} is supported for bind mounts only")
    if bool(uids) != bool(gids):
        key = "gidMappings" if uids else "uidMappings"
        raise ConfigError(f"{where}.{key}",
                          "an idmapped mount needs both uidMappings and gidMappings")
    return uids, gids


def _check_idmaps(mounts: list[Mount], userns: bool) -> None:
    for m in mounts:
        if m.opts.idmap and not m.uid_mappings and not userns:
            raise ConfigError(f"{m.where}.options",
                              f"{m.opts.idmap} without uidMappings maps the mount as the "
                              "container's user namespace, and the container has none")


def proc_rule(dest: str, m: Mount) -> str | None:
    """runc's checkProcMount (CVE-2019-16884): only procfs on /proc, and below it only the
    lxcfs files. Applied here on the configured path and again in prepare() on the path the
    destination really resolved to. A bind onto /proc is checked against its source later."""
    if dest == "/proc":
        if m.fstype == "proc" or m.kind == "bind":
            return None
        return f'"{dest}" cannot be mounted because it is not of type proc'
    if dest.startswith("/proc/") and dest not in PROC_ALLOWED:
        return f'"{dest}" cannot be mounted because it is inside /proc'
    return None


_S_IFMT = 0o170000
_S_IFTYPE = {"c": 0o020000, "b": 0o060000, "p": 0o010000}


def _devices(devs: list[dict]) -> list[Device]:
    out: list[Device] = []
    seen: set[str] = set()
    for i, d in enumerate(devs):
        where = f"linux.devices[{i}]"
        path = d.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigError(f"{where}.path", "device path must be absolute")
        path = clean(path)
        kind = d.get("type")
        if kind == "u":
            kind = "c"
        if kind not in ("c", "b", "p"):
            raise ConfigError(f"{where}.type", f"invalid device type {d.get('type')!r}")
        major, minor = d.get("major", 0), d.get("minor", 0)
        if kind != "p" and ("major" not in d or "minor" not in d):
            raise ConfigError(where, "major and minor are required for c, b and u devices")
        mode = d.get("fileMode")
        mode = 0o666 if mode is None else int(mode)
        # Managers (podman) send Go's mode with the file type bits: they may name the type of
        # the device, nothing else.
        if mode & ~(_S_IFMT | 0o7777) or mode & _S_IFMT not in (0, _S_IFTYPE[kind]):
            raise ConfigError(f"{where}.fileMode",
                              f"fileMode {mode:#o} holds more than the device's permission bits "
                              "and file type")
        mode &= 0o7777
        out.append(Device(path, kind, int(major), int(minor), mode, int(d.get("uid") or 0),
                          int(d.get("gid") or 0)))
        seen.add(path)
    for path, major, minor in DEFAULT_DEVICES:
        if path not in seen:
            out.append(Device(path, "c", major, minor, 0o666, 0, 0))
    return out


def _paths(paths: list, where: str) -> list[str]:
    out = []
    for i, p in enumerate(paths):
        if not isinstance(p, str) or not p.startswith("/"):
            raise ConfigError(f"{where}[{i}]", f"path {p!r} must be absolute")
        out.append(clean(p))
    return out
