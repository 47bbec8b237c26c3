"""rdma: linux.resources.rdma {device: {hcaHandles, hcaObjects}} -> rdma.max lines
"<dev> hca_handle=N hca_object=M" (same file on v1 and v2)."""

from __future__ import annotations

from ocirt.cgroups import fs
from ocirt.cgroups.controllers import Ctx
from ocirt.cgroups.controllers._check import P, get_int, obj
from ocirt.errors import ConfigError

V1 = "rdma"
V2 = "rdma"
KEYS = ("rdma",)
F = f"{P}.rdma"


def wanted(res: dict) -> bool:
    return bool(res.get("rdma"))


def line(dev: str, limits: dict) -> str:
    parts = [dev]
    if limits.get("hcaHandles") is not None:
        parts.append(f"hca_handle={limits['hcaHandles']}")
    if limits.get("hcaObjects") is not None:
        parts.append(f"hca_object={limits['hcaObjects']}")
    return " ".join(parts)


def validate(res: dict, version: int, ctx: Ctx) -> None:
    for dev, lim in obj(res["rdma"], F, ctx.source).items():
        p = f"{F}.{dev}"
        if not dev or any(ch.isspace() for ch in dev):
            raise ConfigError(p, f"invalid device name {dev!r}", ctx.source)
        obj(lim, p, ctx.source)
        get_int(lim, "hcaHandles", p, ctx.source, 0, 0xFFFFFFFF)
        get_int(lim, "hcaObjects", p, ctx.source, 0, 0xFFFFFFFF)


def apply(d: str, res: dict, version: int, ctx: Ctx) -> None:
    for dev, lim in res["rdma"].items():
        if lim.get("hcaHandles") is None and lim.get("hcaObjects") is None:
            continue
        fs.write(d, "rdma.max", line(dev, lim), f"{F}.{dev}", ctx.source)
