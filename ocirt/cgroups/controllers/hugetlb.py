"""hugetlb: linux.resources.hugepageLimits[{pageSize, limit}].

v1 writes hugetlb.<size>.limit_in_bytes, v2 hugetlb.<size>.max, plus the reservation limit
(hugetlb.<size>.rsvd.*) where the kernel has it, as runc 1.2 does, so that a reservation
cannot get around the limit. Sizes are named like the kernel's files: 64KB, 2MB, 1GB.
"""

from __future__ import annotations

import os

from ocirt.cgroups import fs
from ocirt.cgroups.controllers import Ctx
from ocirt.cgroups.controllers._check import P, U64_MAX, arr, integer, obj, string
from ocirt.errors import ConfigError

V1 = "hugetlb"
V2 = "hugetlb"
KEYS = ("hugepageLimits",)
F = f"{P}.hugepageLimits"

_sizes: list[str] | None = None


def _human(kb: int) -> str:
    # runc's units.CustomSize("%g%s", bytes, 1024, [B KB MB GB TB PB])
    size, units = float(kb * 1024), ["B", "KB", "MB", "GB", "TB", "PB"]
    i = 0
    while size >= 1024 and i < len(units) - 1:
        size /= 1024
        i += 1
    return f"{size:g}{units[i]}"


def page_sizes() -> list[str]:
    global _sizes
    if _sizes is None:
        try:
            names = os.listdir("/sys/kernel/mm/hugepages")
        except OSError:
            names = []
        kbs = sorted(int(n[len("hugepages-"):-2]) for n in names
                     if n.startswith("hugepages-") and n.endswith("kB"))
        _sizes = [_human(k) for k in kbs]
    return _sizes


def wanted(res: dict) -> bool:
    return bool(res.get("hugepageLimits"))


def validate(res: dict, version: int, ctx: Ctx) -> None:
    sizes = page_sizes()
    for i, e in enumerate(arr(res["hugepageLimits"], F, ctx.source)):
        p = f"{F}[{i}]"
        obj(e, p, ctx.source)
        size = string(e.get("pageSize"), f"{p}.pageSize", ctx.source)
        if size not in sizes:
            raise ConfigError(f"{p}.pageSize", f"unknown huge page size {size!r} (this host "
                                               f"has {', '.join(sizes) or 'none'})", ctx.source)
        integer(e.get("limit"), f"{p}.limit", ctx.source, 0, U64_MAX)


def apply(d: str, res: dict, version: int, ctx: Ctx) -> None:
    suffix, rsvd = (("limit_in_bytes", "rsvd.limit_in_bytes") if version == 1
                    else ("max", "rsvd.max"))
    for i, e in enumerate(res["hugepageLimits"]):
        p = f"{F}[{i}].limit"
        size = e["pageSize"]
        fs.write(d, f"hugetlb.{size}.{suffix}", e["limit"], p, ctx.source)
        if fs.exists(d, f"hugetlb.{size}.{rsvd}"):
            fs.write(d, f"hugetlb.{size}.{rsvd}", e["limit"], p, ctx.source)


def stats(d: str, version: int) -> dict:
    out = {}
    for size in page_sizes():
        if version == 1:
            out[size] = {"usage": fs.read_uint(d, f"hugetlb.{size}.usage_in_bytes"),
                         "max": fs.read_uint(d, f"hugetlb.{size}.max_usage_in_bytes"),
                         "failcnt": fs.read_uint(d, f"hugetlb.{size}.failcnt")}
        else:
            if not fs.exists(d, f"hugetlb.{size}.current"):
                continue
            out[size] = {"usage": fs.read_uint(d, f"hugetlb.{size}.current"),
                         "max": 0,
                         "failcnt": fs.read_keyed(d, f"hugetlb.{size}.events").get("max", 0)}
    return out
