"""pids: linux.resources.pids.limit -> pids.max (same file on v1 and v2).

Since runtime-spec 1.3.0 a limit of 0 is a real value (no new tasks), -1 (any negative) means
"max", and an absent limit leaves the file alone.
"""

from __future__ import annotations

from ocirt.cgroups import fs
from ocirt.cgroups.controllers import Ctx
from ocirt.cgroups.controllers._check import I64_MAX, P, get_int, obj

V1 = "pids"
V2 = "pids"
KEYS = ("pids",)
F = f"{P}.pids"


def wanted(res: dict) -> bool:
    return (res.get("pids") or {}).get("limit") is not None


def validate(res: dict, version: int, ctx: Ctx) -> None:
    get_int(obj(res["pids"], F, ctx.source), "limit", F, ctx.source, None, I64_MAX)


def apply(d: str, res: dict, version: int, ctx: Ctx) -> None:
    limit = res["pids"]["limit"]
    fs.write(d, "pids.max", "max" if limit < 0 else limit, f"{F}.limit", ctx.source)


def stats(d: str, version: int) -> dict:
    limit = (fs.read_or_none(d, "pids.max") or "").strip()
    return {"current": fs.read_uint(d, "pids.current"),
            "limit": int(limit) if limit.isdigit() else 0}
