"""unified: linux.resources.unified {"<controller>.<file>": "value"}, written verbatim into the
container's cgroup v2 directory after every other resource, so it has the last word.

Only resource files are accepted as keys. The kernel's cgroup v2 documentation splits a cgroup's
files into core files ("cgroup.*") and the interface files of each controller ("memory.*",
"pids.*", "hugetlb.*"...). A controller's files set limits or read statistics; most core files
do something else entirely: cgroup.procs and cgroup.threads move any process of the host into
the container's cgroup, cgroup.subtree_control and cgroup.type reshape the hierarchy (and make
the container's own cgroup unable to hold processes), cgroup.freeze and cgroup.kill act on the
container. So a key must name a controller that the cgroup v2 hierarchy has; of the core files
only the two limits on the container's own subtree, cgroup.max.depth and
cgroup.max.descendants, are allowed.

On a hybrid host the cgroup v2 hierarchy has only the controllers that no v1 hierarchy took
(hugetlb here): keys of those are applied, as the container's cgroup v2 directory is where the
kernel enforces them (hugepageLimits goes there too). Keys of any other controller are
"invalid configuration", runc's wording (runc 1.1 refuses `unified` altogether unless the
host is pure cgroup v2).

The spec requires an error when the controller is missing (and on a host without cgroup v2),
and that unknown files of a present controller are still attempted, leaving the kernel to
judge.
"""

from __future__ import annotations

from ocirt.cgroups import fs
from ocirt.cgroups.controllers import Ctx
from ocirt.cgroups.controllers._check import P, obj, string
from ocirt.errors import ConfigError

V1 = None
V2 = ""          # core cgroup2: present wherever the unified hierarchy is
KEYS = ("unified",)
F = f"{P}.unified"

CORE = "cgroup"
# The core files that only limit the container's own subtree (how deep, how many cgroups).
CORE_LIMITS = frozenset({"cgroup.max.depth", "cgroup.max.descendants"})

INVALID = "invalid configuration: "


def wanted(res: dict) -> bool:
    return bool(res.get("unified"))


def field(key: str) -> str:
    """The JSON path of a key, as the config checks spell it: linux.resources.unified["KEY"]."""
    from ocirt.config.semantic import format_path
    return format_path(("linux", "resources", "unified", key))


def key_problem(key: str) -> str | None:
    """Why `key` can never be a unified resource, on any host; None when it may be one."""
    if not key or "/" in key or "\0" in key or key.startswith("."):
        return f"{key!r} is not a cgroup file name"
    ctrl, dot, rest = key.partition(".")
    if not dot or not rest:
        return f"{key!r} must be in the form CONTROLLER.PARAMETER"
    if ctrl == CORE and key not in CORE_LIMITS:
        return (f"{INVALID}{key} is not a resource limit: only the interface files of a "
                f"cgroup v2 controller, or {' and '.join(sorted(CORE_LIMITS))}, may be set")
    return None


def validate(res: dict, version: int, ctx: Ctx) -> None:
    for key, value in obj(res["unified"], F, ctx.source).items():
        problem = key_problem(key)
        if problem is not None:
            raise ConfigError(field(key), problem, ctx.source)
        string(value, field(key), ctx.source)
        if version != 2:
            raise ConfigError(field(key), f"{INVALID}cannot use unified on cgroup v1",
                              ctx.source)
        ctrl = key.partition(".")[0]
        if ctrl != CORE and ctrl not in ctx.v2_controllers:
            raise ConfigError(field(key), f"{INVALID}controller {ctrl!r} is not available on "
                                          "the cgroup v2 hierarchy of this host", ctx.source)


def apply(d: str, res: dict, version: int, ctx: Ctx) -> None:
    for key, value in res["unified"].items():
        fs.write(d, key, value, field(key), ctx.source)
