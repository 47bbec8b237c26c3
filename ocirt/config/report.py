"""Every problem of a bundle at once, for `ocirt validate`.

`create` stops at the first problem (it must fail fast and cheaply); this module keeps going:
all JSON-Schema violations of config.json (jsonschema over specs/, with its full error
iteration, imported only when the generated validator finds any), every semantic rule (the
generators create raises the first of), fields ocirt does not implement, the rootfs, the
program to run, and everything create's own mount-plan and process checks find; with
`host=True`, also what this host cannot do for the config: the checks create runs before its
first side effect that depend on the host (cgroup controllers, NUMA nodes and CPUs online,
network devices present, LSMs) plus a few host facts (namespaces, cgroup v1 files, the
capability bounding set).
"""

from __future__ import annotations

import os
import stat

from ocirt.config.semantic import format_path
from ocirt.errors import ConfigError, OcirtError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterable, Iterator

ERROR, WARNING = "error", "warning"
_MAX_MESSAGE = 200  # jsonschema repeats whole instances in its messages: keep a line a line
_SPECS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                      "specs")


class Problem:
    """One finding. `path` is the JSON path in config.json ("" for the document or the bundle
    as a whole, then `where` says which)."""

    __slots__ = ("level", "path", "message", "where")

    def __init__(self, level: str, path: str, message: str, where: str = "config.json") -> None:
        self.level, self.path, self.message, self.where = level, path, message, where

    def as_dict(self) -> dict[str, str]:
        return {"level": self.level, "path": self.path, "message": self.message}

    def line(self) -> str:
        return f"{self.level}: {self.path or self.where}: {self.message}"


def _from_error(e: ConfigError, level: str = ERROR) -> Problem:
    prefix = f"{e.source}: {e.path}: " if e.path else f"{e.source}: "
    text = e.message[len(prefix):] if e.message.startswith(prefix) else e.message
    return Problem(level, e.path, text)


def bundle_problems(bundle: str, host: bool = False) -> list[Problem]:
    from ocirt.config.load import _read_json

    bundle = os.path.abspath(bundle)
    if not os.path.isdir(bundle):
        what = "is not a directory" if os.path.exists(bundle) else "does not exist"
        return [Problem(ERROR, "", f"{bundle} {what}", "bundle")]
    try:
        config = _read_json(os.path.join(bundle, "config.json"), "config.json")
    except ConfigError as e:
        return [_from_error(e)]
    out = list(schema_problems(config))
    if not isinstance(config, dict):
        return out
    schema_ok = not out
    out += _guarded(_semantic(config), schema_ok)
    if not schema_ok:
        # The remaining checks read fields as the schema types them.
        return out
    rootfs = _rootfs(config, bundle, out)
    if rootfs is not None and config.get("process"):
        out += _executable(config, rootfs)
    # create's own checks before its first side effect (mount plan, process settings, and
    # with --host what needs this host): a field the rules above already reported (in their
    # own words) is said once.
    seen = {_path_key(p.path) for p in out}
    more = list(create_problems(config, bundle, rootfs))
    if host:
        more += host_problems(config)
    for p in more:
        if _path_key(p.path) not in seen:
            seen.add(_path_key(p.path))
            out.append(p)
    return out


def _path_key(path: str) -> str:
    return path.replace('["', ".").replace('"]', "").replace("[", ".").replace("]", "")


def _guarded(problems: Iterator[Problem], strict: bool) -> Iterator[Problem]:
    """Rules written for schema-valid documents may trip over a wrongly typed field the schema
    already reported: stop there rather than crash."""
    try:
        yield from problems
    except (TypeError, KeyError, AttributeError, ValueError, IndexError):
        if strict:
            raise


# -- the schema --------------------------------------------------------------------------------

def schema_problems(config: Any) -> Iterator[Problem]:
    """Every violation of specs/config-schema.json. The generated validator (create's) says
    in microseconds whether there is any; only then is jsonschema imported (~100 ms) to list
    them all. The two agree on every document (tests/unit/test_config_generated.py)."""
    from ocirt.config import _schema_config
    try:
        _schema_config.check_config(config)
        return
    except _schema_config.Invalid:
        pass
    from ocirt import jsonio, thirdparty

    jsonschema: Any = thirdparty.require("jsonschema", "python3-jsonschema", "ocirt validate")
    with open(os.path.join(_SPECS, "config-schema.json")) as f:
        schema = jsonio.loads(f.read())
    with open(os.path.join(_SPECS, "defs.json")) as f:
        defs = jsonio.loads(f.read())
    validator = _validator(jsonschema, schema, defs)
    for e in validator.iter_errors(config):    # in the schema's order, like create's first
        parts = list(e.absolute_path)
        message = e.message
        if e.validator == "required" and isinstance(e.instance, dict):
            # Name the missing field in the path, as create's messages do.
            missing = [k for k in e.validator_value if k not in e.instance and repr(k) in message]
            if missing:
                parts.append(missing[0])
                message = "is a required property"
        if len(message) > _MAX_MESSAGE:
            message = message[:_MAX_MESSAGE - 3] + "..."
        yield Problem(ERROR, format_path(parts), message)


def _validator(jsonschema: Any, schema: dict, defs: dict) -> Any:
    try:  # jsonschema >= 4.18 resolves $ref through `referencing`
        import referencing
        from referencing.jsonschema import DRAFT4
    except ImportError:  # Debian 12's jsonschema 4.10
        base = "file:///specs/"
        resolver = jsonschema.RefResolver(base + "config-schema.json", schema,
                                          store={base + "defs.json": defs})
        return jsonschema.Draft4Validator(schema, resolver=resolver)
    registry = referencing.Registry().with_resource(
        "defs.json", referencing.Resource.from_contents(defs, default_specification=DRAFT4))
    return jsonschema.Draft4Validator(schema, registry=registry)


# -- rules of a schema-valid config ------------------------------------------------------------

def _semantic(config: dict) -> Iterator[Problem]:
    from ocirt.config import semantic, support

    for e in semantic.config_problems(config):
        yield _from_error(e)
    if config.get("root") is None:
        yield Problem(ERROR, "root", "is a required property (a Linux container needs a rootfs)")
    for e in support.problems(config):
        yield _from_error(e)
    for w in semantic.config_warnings(config):
        path, _, text = w.partition(": ")
        yield Problem(WARNING, path, text)


def _rootfs(config: dict, bundle: str, out: list[Problem]) -> str | None:
    root = config.get("root")
    if not root or not root.get("path"):
        return None
    rootfs = os.path.join(bundle, root["path"])
    if not os.path.isdir(rootfs):
        what = "is not a directory" if os.path.exists(rootfs) else "does not exist"
        out.append(Problem(ERROR, "root.path", f"rootfs {rootfs} {what}"))
        return None
    return os.path.realpath(rootfs)


def _executable(config: dict, rootfs: str) -> Iterator[Problem]:
    """process.args[0] as the init will find it: searched in process.env's PATH (relative
    names against process.cwd), every lookup resolved inside the rootfs, symlinks included."""
    process = config["process"]
    name = process["args"][0]
    if not name:
        return  # the semantic rules said so
    env = dict(kv.partition("=")[::2] for kv in process.get("env", ()))
    cwd = process["cwd"]
    if "/" in name:
        candidates = [os.path.join(cwd, name)]
    else:
        candidates = [os.path.join(cwd, d, name) for d in env.get("PATH", "").split(":")
                      if "PATH" in env]
    from ocirt.linux import pathrs

    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for cand in candidates:
            try:
                fd = pathrs.open_in_root(root_fd, cand, os.O_PATH)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
            finally:
                os.close(fd)
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
                return
            if "/" in name:
                yield Problem(ERROR, "process.args[0]",
                              f"{name!r} is not an executable file in the rootfs")
                return
    finally:
        os.close(root_fd)
    where = "in the rootfs" if "/" in name else (
        f"in the rootfs along PATH={env['PATH']}" if "PATH" in env
        else "(process.env sets no PATH to search)")
    mount = _under_mount(config, candidates)
    if mount is not None:
        yield Problem(WARNING, "process.args[0]",
                      f"{name!r} not found {where}; it may come from the mount at mounts[{mount}]")
    else:
        yield Problem(ERROR, "process.args[0]", f"{name!r} not found {where}")


def _under_mount(config: dict, paths: Iterable[str]) -> int | None:
    """The last mount (later mounts cover earlier ones) whose destination holds one of paths."""
    found = None
    for i, m in enumerate(config.get("mounts", ())):
        dest = os.path.normpath("/" + m["destination"].lstrip("/"))
        if dest in ("/proc", "/sys", "/dev"):
            continue
        for p in paths:
            p = os.path.normpath(p)
            if p == dest or p.startswith(dest.rstrip("/") + "/"):
                found = i
    return found


# -- what this host can do ---------------------------------------------------------------------

# Fields whose check depends on the host: create_problems() leaves them to host_problems().
_HOST_PROCESS_FIELDS = ("apparmorProfile", "selinuxLabel", "execCPUAffinity")
_HOST_LINUX_FIELDS = ("memoryPolicy",)


def create_problems(config: dict, bundle: str, rootfs: str | None) -> Iterator[Problem]:
    """The parts of create's checks that depend on the config alone: the rootfs mount plan
    (mount options, idmapped mounts, devices) and the process settings (rlimits, seccomp,
    scheduler, user, ...)."""
    from ocirt import jsonio

    config = jsonio.loads(jsonio.dumps(config))   # a copy the retries below may cut down
    linux = config.get("linux") or {}
    if config.get("process"):
        for k in _HOST_PROCESS_FIELDS:
            config["process"].pop(k, None)
        for k in _HOST_LINUX_FIELDS:
            linux.pop(k, None)
        yield from _every_problem(
            lambda: _prepare_process(config["process"], config.get("linux") or {}), config)
    if rootfs is not None:
        from ocirt.rootfs import setup as rootfs_setup
        yield from _every_problem(lambda: rootfs_setup.plan(config, rootfs, bundle), config)


def host_problems(config: dict) -> Iterator[Problem]:
    linux = config.get("linux") or {}
    for i, ns in enumerate(linux.get("namespaces", ())):
        from ocirt.init.namespaces import PROC_NAME
        if not os.path.exists(f"/proc/self/ns/{PROC_NAME[ns['type']]}"):
            yield Problem(ERROR, f"linux.namespaces[{i}].type",
                          f"this kernel has no {ns['type']} namespaces")
    process = config.get("process")
    if process:
        yield from _lsm_problems(config)
        yield from _capabilities_outside_bounding(process)
        if process.get("execCPUAffinity"):
            from ocirt.process import affinity
            yield from _create_check(affinity.parse, process["execCPUAffinity"])
    if linux.get("memoryPolicy"):
        from ocirt.process import mempolicy
        yield from _create_check(mempolicy.parse, linux["memoryPolicy"])
    yield from _cgroup_problems(linux)
    yield from _cgroup_file_problems(linux.get("resources") or {})
    if linux.get("netDevices"):
        from ocirt import netdevices
        yield from _create_check(netdevices.check, config)


def _every_problem(check: Any, config: dict) -> Iterator[Problem]:
    """Run one of create's stop-at-the-first-problem checks until it passes, each time without
    the part of `config` it stopped at (a list entry, or a field of process or linux), so it
    reports all it can find. Indexes in the paths stay those of the original document."""
    kept: dict[tuple, list[int]] = {}   # list path -> original index of each remaining entry
    for _ in range(100):
        try:
            check()
            return
        except ConfigError as e:
            problem = _from_error(e)
            cut = _cut(config, _parse_path(e.path), kept)
            if cut is not None:
                problem.path = cut
            yield problem
            if cut is None:
                return
        except OcirtError as e:
            yield Problem(ERROR, "", e.message, "host")
            return


def _parse_path(path: str) -> list:
    """format_path's output back into keys and indexes: dotted identifiers, [i] indexes and
    ["key"] for keys that are not identifiers (a sysctl name, an annotation)."""
    parts: list = []
    i, n = 0, len(path)
    while i < n:
        c = path[i]
        if c == ".":
            i += 1
        elif path.startswith('["', i):
            j, key = i + 2, []
            while j < n and path[j] != '"':
                if path[j] == "\\" and j + 1 < n:
                    j += 1
                key.append(path[j])
                j += 1
            parts.append("".join(key))
            i = j + 2                      # past '"]'
        elif c == "[":
            j = path.index("]", i)
            parts.append(int(path[i + 1:j]))
            i = j + 1
        else:
            j = i
            while j < n and path[j] not in ".[":
                j += 1
            parts.append(path[i:j])
            i = j
    return parts


def _cut(config: dict, parts: list, kept: dict[tuple, list[int]]) -> str | None:
    """Remove what `parts` points into: a list entry of a top-level list (mounts[i]) or of a
    list field of process/linux (linux.devices[i]), else that field itself. Returns the path
    with original indexes, or None when nothing could be removed."""
    depth = 2 if parts[:1] in (["process"], ["linux"]) else 1
    if len(parts) < depth:
        return None
    parent: Any = config
    for key in parts[:depth - 1]:
        parent = parent.get(key) if isinstance(parent, dict) else None
    key = parts[depth - 1]
    if not isinstance(parent, dict) or key not in parent:
        return None
    value = parent[key]
    if isinstance(value, list) and len(parts) > depth and isinstance(parts[depth], int):
        where = tuple(parts[:depth])
        index = kept.setdefault(where, list(range(len(value))))
        i = parts[depth]
        if i >= len(value):
            return None
        original = index.pop(i)
        del value[i]
        return format_path(parts[:depth] + [original] + parts[depth + 1:])
    del parent[key]
    return format_path(parts)


def _create_check(fn: Any, *args: Any) -> Iterator[Problem]:
    try:
        fn(*args)
    except ConfigError as e:
        yield _from_error(e)
    except OcirtError as e:
        yield Problem(ERROR, "", e.message, "host")


def _prepare_process(process: dict, linux: dict) -> None:
    from ocirt.process import security

    security.prepare(process, linux)


def _lsm_problems(config: dict) -> Iterator[Problem]:
    from ocirt.security import lsm

    process = config.get("process") or {}
    if process.get("apparmorProfile") and not lsm.apparmor_enabled():
        yield Problem(ERROR, "process.apparmorProfile", "AppArmor is not enabled on this host")
    for path, value in (("process.selinuxLabel", process.get("selinuxLabel")),
                        ("linux.mountLabel", (config.get("linux") or {}).get("mountLabel"))):
        if value and not lsm.selinux_enabled():
            yield Problem(ERROR, path, "SELinux is not enabled on this host")


def _capabilities_outside_bounding(process: dict) -> Iterator[Problem]:
    from ocirt.features_data import CAPABILITIES

    try:
        with open("/proc/self/status") as f:
            bnd = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    except (OSError, StopIteration):
        return
    number = {name: n for n, name in enumerate(CAPABILITIES)}
    for kind, names in (process.get("capabilities") or {}).items():
        for i, name in enumerate(names if isinstance(names, list) else ()):
            n = number.get(name)
            if n is not None and not bnd >> n & 1:
                yield Problem(WARNING, f"process.capabilities.{kind}[{i}]",
                              f"{name} is outside this host's bounding set: it will not be granted")


def _cgroup_problems(linux: dict) -> Iterator[Problem]:
    """create's own cgroup checks, one resource at a time so that each is reported."""
    from ocirt.cgroups import manager

    resources = linux.get("resources") or {}
    try:
        cg = manager.for_container("validate", linux.get("cgroupsPath"))
    except OcirtError as e:
        yield Problem(ERROR, "linux.cgroupsPath", e.message)
        return
    for key, value in resources.items():
        yield from _create_check(cg.validate, {key: value})


# Resource fields whose cgroup v1 files only some kernels (or setups) have: (resources key,
# field, controller, any of these files at the hierarchy's root).
_V1_FILES = (
    ("blockIO", "weight", "blkio", ("blkio.weight", "blkio.bfq.weight")),
    ("blockIO", "weightDevice", "blkio", ("blkio.weight_device", "blkio.bfq.weight_device")),
    ("blockIO", "leafWeight", "blkio", ("blkio.leaf_weight",)),
    ("blockIO", "leafWeightDevice", "blkio", ("blkio.leaf_weight_device",)),
    ("memory", "swap", "memory", ("memory.memsw.limit_in_bytes",)),
    ("memory", "kernel", "memory", ("memory.kmem.limit_in_bytes",)),
    ("memory", "kernelTCP", "memory", ("memory.kmem.tcp.limit_in_bytes",)),
    ("cpu", "realtimeRuntime", "cpu", ("cpu.rt_runtime_us",)),
    ("cpu", "realtimePeriod", "cpu", ("cpu.rt_period_us",)),
    ("cpu", "burst", "cpu", ("cpu.cfs_burst_us",)),
    ("cpu", "idle", "cpu", ("cpu.idle",)),
)


def _cgroup_file_problems(resources: dict) -> Iterator[Problem]:
    """Fields that need a cgroup v1 file this host's hierarchy lacks (create would fail
    writing it). cgroup v2 files exist only below the root, so they are not checked."""
    from ocirt.cgroups import detect

    v1 = detect.host().v1
    for key, field, controller, files in _V1_FILES:
        value = (resources.get(key) or {}).get(field)
        if value in (None, [], 0) or controller not in v1:
            continue
        root = v1[controller].mountpoint
        if not any(os.path.exists(os.path.join(root, f)) for f in files):
            yield Problem(ERROR, f"linux.resources.{key}.{field}",
                          f"this host's {controller} cgroup has no {' or '.join(files)}")
