"""unified: linux.resources.unified {"<controller>.<file>": "value"}, written verbatim into the
container's cgroup v2 directory after every other resource, so it has the last word.

The spec requires an error when the controller is missing (and on a host without cgroup v2),
and that unknown keys of a present controller are still attempted, leaving the kernel to judge.
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

# Files of cgroup2 itself rather than of a controller.
_CORE = frozenset({"cgroup"})


def wanted(res: dict) -> bool:
    return bool(res.get("unified"))


def validate(res: dict, version: int, ctx: Ctx) -> None:
    for key, value in obj(res["unified"], F, ctx.source).items():
        p = f"{F}.{key}"
        string(value, p, ctx.source)
        ctrl, dot, rest = key.partition(".")
        if not dot or not ctrl or not rest or "/" in key or key.startswith("."):
            raise ConfigError(p, f"unified resource {key!r} must be in the form "
                                 "CONTROLLER.PARAMETER", ctx.source)
        if version != 2:
            raise ConfigError(p, "unified resources need cgroup v2, and this host has only "
                                 "cgroup v1", ctx.source)
        if ctrl not in _CORE and ctrl not in ctx.v2_controllers:
            raise ConfigError(p, f"unified resource {key!r} can't be set: controller "
                                 f"{ctrl!r} is not available on the cgroup v2 hierarchy",
                              ctx.source)


def apply(d: str, res: dict, version: int, ctx: Ctx) -> None:
    for key, value in res["unified"].items():
        fs.write(d, key, value, f"{F}.{key}", ctx.source)
