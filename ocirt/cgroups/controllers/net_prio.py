"""net_prio: linux.resources.network.priorities -> net_prio.ifpriomap, one "iface prio"
write per entry (v1 only)."""

from __future__ import annotations

from ocirt.cgroups import fs
from ocirt.cgroups.controllers import Ctx
from ocirt.cgroups.controllers._check import P, arr, integer, obj, string
from ocirt.errors import ConfigError

V1 = "net_prio"
V2 = None
KEYS = ("network",)
F = f"{P}.network.priorities"


def wanted(res: dict) -> bool:
    return bool((res.get("network") or {}).get("priorities"))


def validate(res: dict, version: int, ctx: Ctx) -> None:
    for i, e in enumerate(arr(res["network"]["priorities"], F, ctx.source)):
        p = f"{F}[{i}]"
        obj(e, p, ctx.source)
        name = string(e.get("name"), f"{p}.name", ctx.source)
        if not name or any(ch.isspace() for ch in name) or "/" in name:
            raise ConfigError(f"{p}.name", f"invalid interface name {name!r}", ctx.source)
        integer(e.get("priority"), f"{p}.priority", ctx.source, 0, 0xFFFFFFFF)
    if version == 2:
        raise ConfigError(F, "net_prio is not supported on cgroup v2", ctx.source)


def apply(d: str, res: dict, version: int, ctx: Ctx) -> None:
    for i, e in enumerate(res["network"]["priorities"]):
        fs.write(d, "net_prio.ifpriomap", f"{e['name']} {e['priority']}", f"{F}[{i}]",
                 ctx.source)
