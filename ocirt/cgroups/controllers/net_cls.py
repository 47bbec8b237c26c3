"""net_cls: linux.resources.network.classID -> net_cls.classid (v1 only; cgroup v2 has no
net_cls files, a packet filter matches the cgroup path instead)."""

from __future__ import annotations

from ocirt.cgroups import fs
from ocirt.cgroups.controllers import Ctx
from ocirt.cgroups.controllers._check import P, get_int, obj
from ocirt.errors import ConfigError

V1 = "net_cls"
V2 = None
KEYS = ("network",)
F = f"{P}.network"


def wanted(res: dict) -> bool:
    return (res.get("network") or {}).get("classID") is not None


def validate(res: dict, version: int, ctx: Ctx) -> None:
    get_int(obj(res["network"], F, ctx.source), "classID", F, ctx.source, 0, 0xFFFFFFFF)
    if version == 2:
        raise ConfigError(f"{F}.classID", "net_cls is not supported on cgroup v2", ctx.source)


def apply(d: str, res: dict, version: int, ctx: Ctx) -> None:
    fs.write(d, "net_cls.classid", res["network"]["classID"], f"{F}.classID", ctx.source)
