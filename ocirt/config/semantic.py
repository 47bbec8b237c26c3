"""Rules of runtime-spec 1.3.0 (and of runc's validator) that a JSON Schema cannot express.

They run after the schema passed, so every field has the right JSON type here. Each rule yields
a ConfigError naming the JSON path of the offending field: `create` raises the first one and
stops (the generators do no work past it), `ocirt validate` collects them all. Rules that only
the host can decide (does the namespace file exist, is the controller there) belong to the code
that applies them.
"""

from __future__ import annotations

import os

from ocirt.errors import ConfigError
from ocirt.features_data import CAPABILITIES  # by capability number

# `typing` alone costs ~5 ms to import, more than validating a config: keep it out of run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Container, Iterable, Iterator, Optional, Union

    PathPart = Union[str, int]
    Parts = tuple[PathPart, ...]

# getrlimit(2); RLIMIT_NLIMITS order is irrelevant here.
RLIMITS = frozenset((
    "RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE", "RLIMIT_NPROC",
    "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
))

_CAPSET = frozenset(CAPABILITIES)
CAPABILITY_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")

# /proc/sys entries that belong to the ipc namespace (runc's list) besides fs.mqueue.*.
_IPC_SYSCTLS = frozenset((
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
    "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
))
_DOT_SLASH = str.maketrans("./", "/.")

_ERRNO_ACTIONS = frozenset(("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"))
_MPOL_NO_NODES = frozenset(("MPOL_DEFAULT", "MPOL_LOCAL"))
_MPOL_NEED_NODES = frozenset(("MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_PREFERRED_MANY",
                              "MPOL_WEIGHTED_INTERLEAVE"))
_IFNAMSIZ = 16


def format_path(parts: Iterable[PathPart]) -> str:
    """JSON path as dotted keys and [i] indexes; non-identifier keys as ["key"]."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif p.isidentifier():
            out += ("." + p) if out else p
        else:
            out += '["' + p.replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return out


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, parts: Parts, message: str) -> ConfigError:
        return ConfigError(format_path(parts), message, self.source)


# -- helpers shared with the code that applies the config ------------------------------------

def sysctl_path(key: str) -> str:
    """Return the file below /proc/sys for a sysctl name ("net.ipv4.ip_forward" or
    "net/ipv4/ip_forward"), or raise ValueError.

    As in sysctl.d(5), the first separator decides the notation: with '/', dots belong to the
    names ("net/ipv4/conf/eth0.100/rp_filter"); with '.', slashes do. A component that maps to
    "", "." or ".." could walk out of the namespaced subtree, so it is refused.
    """
    if not key or "\0" in key:
        raise ValueError(f"invalid sysctl name {key!r}")
    dot, slash = key.find("."), key.find("/")
    slash_first = slash != -1 and (dot == -1 or slash < dot)
    path = key if slash_first else key.translate(_DOT_SLASH)
    if any(c in ("", ".", "..") for c in path.split("/")):
        raise ValueError(f"sysctl name {key!r} has an empty, '.' or '..' component")
    return path


def parse_id_list(text: str) -> Optional[list[tuple[int, int]]]:
    """Parse "0-3,7" (runtime-spec's list format for CPUs and NUMA nodes) into inclusive
    ranges; None if malformed. Blanks around items are allowed, an empty string is no ids."""
    ranges: list[tuple[int, int]] = []
    if not text.strip():
        return ranges
    for item in text.split(","):
        lo, sep, hi = item.strip().partition("-")
        lo, hi = lo.strip(), hi.strip()
        if not lo.isdigit() or not lo.isascii() or (sep and (not hi.isdigit() or not hi.isascii())):
            return None
        a = int(lo)
        b = int(hi) if sep else a
        if a > b:
            return None
        ranges.append((a, b))
    return ranges


def id_set(text: str) -> set[int]:
    """The ids of a list in that format ("0-3,7" -> {0, 1, 2, 3, 7}); nothing if malformed."""
    return {n for lo, hi in parse_id_list(text) or () for n in range(lo, hi + 1)}


def format_id_list(ids: Iterable[int]) -> str:
    """The inverse of id_set: {0, 1, 2, 3, 7} -> "0-3,7"."""
    ranges: list[list[int]] = []
    for n in sorted(ids):
        if ranges and ranges[-1][1] == n - 1:
            ranges[-1][1] = n
        else:
            ranges.append([n, n])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def _is_abs(p: str) -> bool:
    return p.startswith("/")


def _has_dotdot(p: str) -> bool:
    return ".." in p.split("/")


# -- config ------------------------------------------------------------------------------------

def check_config(doc: dict[str, Any], source: str = "config.json") -> None:
    """Raise the first problem of config_problems()."""
    for problem in config_problems(doc, source):
        raise problem


def config_problems(doc: dict[str, Any], source: str = "config.json") -> Iterator[ConfigError]:
    """Every semantic problem of a schema-valid config, in document order."""
    c = _Checker(source)
    root = doc.get("root")
    if root is not None and not root["path"]:
        yield c.fail(("root", "path"), "must not be empty")
    for i, m in enumerate(doc.get("mounts", ())):
        yield from _check_mount(c, m, ("mounts", i))
    proc = doc.get("process")
    if proc is not None:
        yield from _check_process(c, proc, ("process",))
    for kind, hooks in doc.get("hooks", {}).items():
        if type(hooks) is not list:  # an unknown hook kind: tolerated, not ours to judge
            continue
        for i, h in enumerate(hooks):
            if type(h) is dict and type(h.get("path")) is str and not _is_abs(h["path"]):
                yield c.fail(("hooks", kind, i, "path"), f"{h['path']!r} is not an absolute path")
    for key in doc.get("annotations", {}):
        if not key:
            yield c.fail(("annotations",), "keys must not be empty")
    yield from _check_linux(c, doc, doc.get("linux", {}))


def check_process(proc: dict[str, Any], prefix: Parts = ("process",),
                  source: str = "config.json") -> None:
    for problem in _check_process(_Checker(source), proc, prefix):
        raise problem


def _check_mount(c: _Checker, m: dict[str, Any], at: Parts) -> Iterator[ConfigError]:
    dest = m["destination"]
    # runtime-spec 1.2 allows a relative destination (deprecated) and defines it as relative to
    # "/": accept it silently, as the spec asks; only an empty one names nothing.
    if not dest:
        yield c.fail(at + ("destination",), "must not be empty")
    for field in ("destination", "source", "type"):
        if "\0" in m.get(field, ""):
            yield c.fail(at + (field,), "contains a NUL byte")
    for j, opt in enumerate(m.get("options", ())):
        if "\0" in opt:
            yield c.fail(at + ("options", j), "contains a NUL byte")
    has_uid, has_gid = "uidMappings" in m, "gidMappings" in m
    if has_uid != has_gid:
        missing = "gidMappings" if has_uid else "uidMappings"
        yield c.fail(at + (missing,), "is required when "
                     + ("uidMappings" if has_uid else "gidMappings") + " is set (id-mapped mount)")
    for field in ("uidMappings", "gidMappings"):
        yield from _check_mappings(c, m.get(field, ()), at + (field,))


def _check_mappings(c: _Checker, maps: list[dict[str, int]], at: Parts) -> Iterator[ConfigError]:
    for i, mp in enumerate(maps):
        if mp["size"] < 1:
            yield c.fail(at + (i, "size"), "must be at least 1")
        for f in ("containerID", "hostID"):
            if mp[f] + mp["size"] > 1 << 32:
                yield c.fail(at + (i,), f"{f} + size exceeds the 32-bit id space")


def _check_process(c: _Checker, p: dict[str, Any], at: Parts) -> Iterator[ConfigError]:
    cwd = p["cwd"]
    if not _is_abs(cwd):
        yield c.fail(at + ("cwd",), f"{cwd!r} is not an absolute path")
    elif "\0" in cwd:
        yield c.fail(at + ("cwd",), "contains a NUL byte")
    args = p.get("args")
    if args:
        if not args[0]:
            yield c.fail(at + ("args", 0), "must not be empty: it names the program to run")
        for i, a in enumerate(args):
            if "\0" in a:
                yield c.fail(at + ("args", i), "contains a NUL byte")
    for i, kv in enumerate(p.get("env", ())):
        name, eq, _ = kv.partition("=")
        if not eq:
            yield c.fail(at + ("env", i), f"{kv!r} is not of the form NAME=value")
        elif not name:
            yield c.fail(at + ("env", i), f"{kv!r} has an empty variable name")
        elif "\0" in kv:
            yield c.fail(at + ("env", i), "contains a NUL byte")
    seen: dict[str, int] = {}
    for i, rl in enumerate(p.get("rlimits", ())):
        t = rl["type"]
        if t not in RLIMITS:
            yield c.fail(at + ("rlimits", i, "type"), f"unknown rlimit type {t!r}")
        elif t in seen:
            yield c.fail(at + ("rlimits", i, "type"),
                         f"duplicate rlimit type {t!r} (first at {format_path(at + ('rlimits', seen[t]))})")
        seen[t] = i
        if rl["soft"] > rl["hard"]:
            yield c.fail(at + ("rlimits", i), f"soft limit {rl['soft']} is greater than hard limit {rl['hard']}")
    sched = p.get("scheduler")
    if sched is not None:
        yield from _check_scheduler(c, sched, at + ("scheduler",))
    aff = p.get("execCPUAffinity", {})
    for f in ("initial", "final"):
        if f in aff and parse_id_list(aff[f]) is None:
            yield c.fail(at + ("execCPUAffinity", f),
                         f"{aff[f]!r} is not a CPU list such as '0-3,7'")


def _check_scheduler(c: _Checker, s: dict[str, Any], at: Parts) -> Iterator[ConfigError]:
    # Rules of sched_setattr(2), as runc checks them before the kernel would refuse.
    policy = s["policy"]
    if policy in ("SCHED_OTHER", "SCHED_BATCH") and not -20 <= s.get("nice", 0) <= 19:
        yield c.fail(at + ("nice",), f"{s['nice']} is outside -20..19 for {policy}")
    if policy in ("SCHED_FIFO", "SCHED_RR"):
        if not 1 <= s.get("priority", 0) <= 99:
            yield c.fail(at + ("priority",), f"{policy} needs a priority in 1..99")
    elif s.get("priority", 0) != 0:
        yield c.fail(at + ("priority",), "can only be set for SCHED_FIFO or SCHED_RR")
    if policy != "SCHED_DEADLINE":
        for f in ("runtime", "deadline", "period"):
            if s.get(f, 0) != 0:
                yield c.fail(at + (f,), "can only be set for SCHED_DEADLINE")


# -- linux ---------------------------------------------------------------------------------------

def _check_linux(c: _Checker, doc: dict[str, Any], lx: dict[str, Any]) -> Iterator[ConfigError]:
    at: Parts = ("linux",)
    ns: dict[str, tuple[int, str]] = {}  # type -> (index, path or "")
    for i, n in enumerate(lx.get("namespaces", ())):
        t, path = n["type"], n.get("path", "")
        if t in ns:
            yield c.fail(at + ("namespaces", i, "type"),
                         f"duplicate namespace type {t!r} (first at linux.namespaces[{ns[t][0]}])")
            continue
        if "path" in n and not _is_abs(path):
            yield c.fail(at + ("namespaces", i, "path"), f"{path!r} is not an absolute path")
        ns[t] = (i, path)

    has_maps = bool(lx.get("uidMappings")) or bool(lx.get("gidMappings"))
    if "user" not in ns:
        if has_maps:
            field = "uidMappings" if lx.get("uidMappings") else "gidMappings"
            yield c.fail(at + (field,), "is set but there is no user namespace in linux.namespaces")
    elif not ns["user"][1]:
        # A new user namespace without both maps leaves ids unmapped (setgid fails, files
        # show as nobody): refuse it up front. Joining one by path brings its own maps.
        for field in ("uidMappings", "gidMappings"):
            if not lx.get(field):
                yield c.fail(at + (field,), "is required (non-empty) with a new user namespace")
    for field in ("uidMappings", "gidMappings"):
        yield from _check_mappings(c, lx.get(field, ()), at + (field,))

    if "timeOffsets" in lx:
        if "time" not in ns:
            yield c.fail(at + ("timeOffsets",), "needs a new time namespace in linux.namespaces")
        if ns["time"][1]:
            yield c.fail(at + ("timeOffsets",), "cannot be set when joining a time namespace by path")
        for clock, off in lx["timeOffsets"].items():
            if type(off) is dict and off.get("nanosecs", 0) > 999_999_999:
                yield c.fail(at + ("timeOffsets", clock, "nanosecs"), "must be less than 1000000000")

    for field in ("hostname", "domainname"):
        if doc.get(field) and "uts" not in ns:
            yield c.fail((field,), "needs a uts namespace in linux.namespaces")

    for field in ("maskedPaths", "readonlyPaths"):
        paths = lx.get(field, ())
        for i, p in enumerate(paths):
            if not _is_abs(p):
                yield c.fail(at + (field, i), f"{p!r} is not an absolute path")
        if paths and "mount" not in ns:
            yield c.fail(at + (field,), "needs a mount namespace in linux.namespaces")
    # Without a mount namespace the rootfs is a directory of the runtime's namespace: making
    # it read-only, or changing its propagation, would change the host's mounts.
    if "mount" not in ns:
        if type(doc.get("root")) is dict and doc["root"].get("readonly"):
            yield c.fail(("root", "readonly"), "needs a mount namespace in linux.namespaces")
        if lx.get("rootfsPropagation"):
            yield c.fail(at + ("rootfsPropagation",),
                         "needs a mount namespace in linux.namespaces")

    for key in lx.get("sysctl", {}):
        yield from _check_sysctl(c, key, ns, at + ("sysctl", key))

    for i, d in enumerate(lx.get("devices", ())):
        path = d["path"]
        if not _is_abs(path) or _has_dotdot(path) or "\0" in path:
            yield c.fail(at + ("devices", i, "path"),
                         f"{path!r} must be an absolute path without '..' components")
        if d["type"] != "p":
            for f in ("major", "minor"):
                if f not in d:
                    yield c.fail(at + ("devices", i, f), f"is required for a device of type {d['type']!r}")

    for name, nd in lx.get("netDevices", {}).items():
        if not _valid_ifname(name):
            yield c.fail(at + ("netDevices", name), f"{name!r} is not a valid network device name")
        new = nd.get("name", "")
        if new and not _valid_ifname(new):
            yield c.fail(at + ("netDevices", name, "name"), f"{new!r} is not a valid network device name")
    if lx.get("netDevices") and "network" not in ns:
        yield c.fail(at + ("netDevices",), "needs a network namespace in linux.namespaces")

    cgpath = lx.get("cgroupsPath", "")
    if _has_dotdot(cgpath) or "\0" in cgpath:
        yield c.fail(at + ("cgroupsPath",), f"{cgpath!r} must not contain '..' components")

    if "resources" in lx:
        yield from _check_resources(c, lx["resources"], at + ("resources",))
    if "seccomp" in lx:
        yield from _check_seccomp(c, lx["seccomp"], at + ("seccomp",))
    if "intelRdt" in lx:
        yield from _check_intel_rdt(c, lx["intelRdt"], at + ("intelRdt",))
    if "memoryPolicy" in lx:
        yield from _check_memory_policy(c, lx["memoryPolicy"], at + ("memoryPolicy",))


def _check_sysctl(c: _Checker, key: str, ns: dict[str, tuple[int, str]],
                  at: Parts) -> Iterator[ConfigError]:
    try:
        path = sysctl_path(key)
    except ValueError as e:
        yield c.fail(at, str(e))
        return
    host_netns = False
    if "network" in ns and ns["network"][1]:
        idx, nspath = ns["network"]
        try:
            host_netns = joins_host_netns(nspath)
        except OSError as e:
            yield c.fail(("linux", "namespaces", idx, "path"),
                         f"cannot check network namespace {nspath!r}: {e.strerror}")
            return
    problem = sysctl_problem(key, path, ns, host_netns)
    if problem is not None:
        yield c.fail(at, problem)


def joins_host_netns(path: str) -> bool:
    """Whether a network namespace path names the runtime's own (the host's) namespace."""
    a, b = os.stat("/proc/self/ns/net"), os.stat(path)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def sysctl_problem(key: str, path: str, namespaces: Container[str],
                   host_netns: bool) -> str | None:
    """Why the container may not set sysctl `key` (file `path` below /proc/sys), or None.

    /proc/sys is only partly namespaced: allow what the container's own namespaces cover
    (SECURITY.md rule 14, runc's validator), refuse anything that would change the host.
    `namespaces` are the types the container has (new or joined); `host_netns` says that the
    network namespace it joins by path is the host's own."""
    name = path.translate(_DOT_SLASH)
    if name in _IPC_SYSCTLS or name.startswith("fs.mqueue."):
        if "ipc" not in namespaces:
            return f"sysctl {key!r} is not allowed in the host's ipc namespace"
    elif name.startswith("net."):
        if "network" not in namespaces or host_netns:
            return f"sysctl {key!r} is not allowed in the host's network namespace"
    elif name == "kernel.domainname":
        if "uts" not in namespaces:
            return f"sysctl {key!r} is not allowed in the host's uts namespace"
    elif name == "kernel.hostname":
        return f"sysctl {key!r} is not allowed: set the 'hostname' field instead"
    elif name.startswith("user."):
        # ucounts in the initial user namespace would limit every process of the host.
        if "user" not in namespaces:
            return f"sysctl {key!r} is not allowed without a user namespace"
    else:
        return f"sysctl {key!r} is not in a separate kernel namespace"
    return None


def _valid_ifname(name: str) -> bool:
    # dev_valid_name() of net/core/dev.c
    return (0 < len(name) < _IFNAMSIZ and name not in (".", "..")
            and not any(ch in "/:" or ch.isspace() for ch in name))


def _check_resources(c: _Checker, r: dict[str, Any], at: Parts) -> Iterator[ConfigError]:
    for i, wd in enumerate(r.get("blockIO", {}).get("weightDevice", ())):
        if "weight" not in wd and "leafWeight" not in wd:
            yield c.fail(at + ("blockIO", "weightDevice", i), "needs weight or leafWeight")
    for dev, lim in r.get("rdma", {}).items():
        if "hcaHandles" not in lim and "hcaObjects" not in lim:
            yield c.fail(at + ("rdma", dev), "needs hcaHandles or hcaObjects")
    if r.get("unified"):
        # Keys are resource files inside the container's cgroup directory (not cgroup.procs).
        from ocirt.cgroups.controllers.unified import key_problem
        for key in r["unified"]:
            problem = key_problem(key)
            if problem is not None:
                yield c.fail(at + ("unified", key), problem)


def _check_seccomp(c: _Checker, s: dict[str, Any], at: Parts) -> Iterator[ConfigError]:
    default = s["defaultAction"]
    if default == "SCMP_ACT_NOTIFY":
        yield c.fail(at + ("defaultAction",), "SCMP_ACT_NOTIFY cannot be the default action")
    if "defaultErrnoRet" in s and default not in _ERRNO_ACTIONS:
        yield c.fail(at + ("defaultErrnoRet",), f"is not allowed with defaultAction {default}")
    listener = s.get("listenerPath", "")
    if "listenerMetadata" in s and not listener:
        yield c.fail(at + ("listenerMetadata",), "must not be set without listenerPath")
    for i, rule in enumerate(s.get("syscalls", ())):
        action = rule["action"]
        if "errnoRet" in rule and action not in _ERRNO_ACTIONS:
            yield c.fail(at + ("syscalls", i, "errnoRet"), f"is not allowed with action {action}")
        if action == "SCMP_ACT_NOTIFY":
            if not listener:
                yield c.fail(at + ("syscalls", i, "action"), "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath")
            if "write" in rule["names"]:
                # The runtime itself writes while it passes the notify fd on: it would hang.
                yield c.fail(at + ("syscalls", i, "names"), "SCMP_ACT_NOTIFY cannot be used for the write syscall")
        for j, name in enumerate(rule["names"]):
            if not name:
                yield c.fail(at + ("syscalls", i, "names", j), "must not be empty")
        for j, arg in enumerate(rule.get("args", ())):
            if arg["index"] > 5:
                yield c.fail(at + ("syscalls", i, "args", j, "index"),
                             f"{arg['index']} is out of range: syscalls have 6 arguments (0..5)")


def _check_intel_rdt(c: _Checker, rdt: dict[str, Any], at: Parts) -> Iterator[ConfigError]:
    clos = rdt.get("closID")
    if clos is not None and clos != "/" and (clos in ("", ".", "..") or "/" in clos or "\n" in clos):
        yield c.fail(at + ("closID",), f"{clos!r} is not a valid resctrl group name")
    if "\n" in rdt.get("l3CacheSchema", ""):
        yield c.fail(at + ("l3CacheSchema",), "must not contain newlines")
    for i, line in enumerate(rdt.get("schemata", ())):
        if "\n" in line:
            yield c.fail(at + ("schemata", i), "must not contain newlines")


def _check_memory_policy(c: _Checker, mp: dict[str, Any], at: Parts) -> Iterator[ConfigError]:
    mode = mp["mode"]
    nodes = parse_id_list(mp.get("nodes", ""))
    if nodes is None:
        yield c.fail(at + ("nodes",), f"{mp['nodes']!r} is not a node list such as '0-3,7'")
        return
    if mode in _MPOL_NO_NODES and nodes:
        yield c.fail(at + ("nodes",), f"must be empty for {mode}")
    if mode in _MPOL_NEED_NODES and not nodes:
        yield c.fail(at + ("nodes",), f"{mode} needs at least one node")
    flags = mp.get("flags", ())
    if "MPOL_F_STATIC_NODES" in flags and "MPOL_F_RELATIVE_NODES" in flags:
        yield c.fail(at + ("flags",), "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other")


# -- warnings ------------------------------------------------------------------------------------

def config_warnings(doc: dict[str, Any]) -> list[str]:
    """Things to log but not to fail on, for an already valid config.

    runtime-spec: a capability that cannot be mapped to the kernel MUST be logged as a warning
    and SHOULD NOT fail the container, so unknown names (perhaps from a newer kernel) land here.
    """
    return process_warnings(doc.get("process") or {}, ("process",))


def process_warnings(proc: dict[str, Any], at: Parts = ()) -> list[str]:
    out = []
    caps = proc.get("capabilities") or {}
    for kind in CAPABILITY_SETS:
        for i, name in enumerate(caps.get(kind, ())):
            if name not in _CAPSET:
                out.append(f"{format_path(at + ('capabilities', kind, i))}: unknown capability {name!r} ignored")
    return out
