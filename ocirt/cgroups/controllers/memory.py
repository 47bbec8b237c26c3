"""memory: linux.resources.memory.

v1 swap is the memory+swap total (memory.memsw.limit_in_bytes); v2 memory.swap.max is the swap
alone, so v2 gets swap - limit (runc's ConvertMemorySwapToCgroupV2Value). `kernel` and
`kernelTCP` are accepted and ignored, as runc does since 1.1 (the kernel dropped kmem limits in
5.16 and the spec calls them NOT RECOMMENDED); `useHierarchy` is always on in current kernels.
"""

from __future__ import annotations

import errno

from ocirt.cgroups import fs
from ocirt.cgroups.controllers import Ctx
from ocirt.cgroups.controllers._check import I64_MAX, P, boolean, get_int, obj
from ocirt.errors import CgroupError, ConfigError

V1 = "memory"
V2 = "memory"
KEYS = ("memory",)
F = f"{P}.memory"

_LIMIT_V1 = "memory.limit_in_bytes"
_MEMSW_V1 = "memory.memsw.limit_in_bytes"


def wanted(res: dict) -> bool:
    m = res.get("memory") or {}
    return any(m.get(k) is not None for k in
               ("limit", "reservation", "swap", "swappiness", "disableOOMKiller"))


def _values(res: dict, ctx: Ctx) -> dict:
    m = obj(res["memory"], F, ctx.source)
    v = {k: get_int(m, k, F, ctx.source, -1, I64_MAX)
         for k in ("limit", "reservation", "swap", "kernel", "kernelTCP")}
    v["swappiness"] = get_int(m, "swappiness", F, ctx.source)
    for k in ("disableOOMKiller", "useHierarchy", "checkBeforeUpdate"):
        v[k] = boolean(m[k], f"{F}.{k}", ctx.source) if m.get(k) is not None else None
    return v


def validate(res: dict, version: int, ctx: Ctx) -> None:
    v = _values(res, ctx)
    limit, swap = v["limit"] or 0, v["swap"] or 0
    if (limit > 0 and swap > 0 and swap < limit) or (limit == -1 and swap > 0):
        raise ConfigError(f"{F}.swap", f"memory+swap limit {swap} should be >= memory limit "
                                       f"{limit}", ctx.source)
    sw = v["swappiness"]
    if sw is not None and sw != -1:
        if not 0 <= sw <= 100:
            raise ConfigError(f"{F}.swappiness", f"invalid value {sw} (valid range is 0-100)",
                              ctx.source)
        if version == 2:
            raise ConfigError(f"{F}.swappiness", "not supported on cgroup v2", ctx.source)
    if version == 2:
        if v["disableOOMKiller"]:
            raise ConfigError(f"{F}.disableOOMKiller", "not supported on cgroup v2", ctx.source)
        if swap > 0 and limit <= 0 and not ctx.update:
            raise ConfigError(f"{F}.swap", "unable to set swap limit without memory limit",
                              ctx.source)


def _usage(dirpath: str, version: int) -> tuple[int, int]:
    if version == 1:
        return (fs.read_uint(dirpath, "memory.usage_in_bytes"),
                fs.read_uint(dirpath, "memory.max_usage_in_bytes"))
    return fs.read_uint(dirpath, "memory.current"), fs.read_uint(dirpath, "memory.peak")


def _check_before_update(dirpath: str, version: int, limit: int, ctx: Ctx) -> None:
    usage, _ = _usage(dirpath, version)
    if limit < usage:
        raise ConfigError(f"{F}.limit", f"memory limit {limit} is below the current usage "
                                        f"{usage} (checkBeforeUpdate is set)", ctx.source)


def _set_limit(dirpath: str, name: str, value: int, version: int, field: str,
               ctx: Ctx) -> None:
    try:
        fs.write(dirpath, name, value if version == 1 or value != -1 else "max", field,
                 ctx.source)
    except CgroupError as e:
        if getattr(e, "errno", None) != errno.EBUSY:
            raise
        usage, peak = _usage(dirpath, version)
        raise ConfigError(field, f"unable to set memory limit to {value} (current usage: "
                                 f"{usage}, peak usage: {peak})", ctx.source) from None


def apply(dirpath: str, res: dict, version: int, ctx: Ctx) -> None:
    v = _values(res, ctx)
    limit, swap = v["limit"] or 0, v["swap"] or 0
    if ctx.update and v["checkBeforeUpdate"] and limit > 0:
        _check_before_update(dirpath, version, limit, ctx)
    if version == 1:
        _apply_v1(dirpath, v, limit, swap, ctx)
    else:
        _apply_v2(dirpath, v, limit, swap, ctx)


def _apply_v1(d: str, v: dict, limit: int, swap: int, ctx: Ctx) -> None:
    has_memsw = fs.exists(d, _MEMSW_V1)
    if limit == -1 and swap == 0 and has_memsw:
        swap = -1   # "unlimited memory" means unlimited memory+swap too
    if swap and not has_memsw:
        raise ConfigError(f"{F}.swap", "swap limit is not supported (no swap accounting: "
                                       f"{_MEMSW_V1} is missing)", ctx.source)
    if limit and swap:
        # The kernel requires memory <= memsw at every step, so the order depends on
        # whether the new pair is above or below the current one.
        cur = fs.read_uint(d, _LIMIT_V1)
        if swap == -1 or cur < swap:
            _set_limit(d, _MEMSW_V1, swap, 1, f"{F}.swap", ctx)
            _set_limit(d, _LIMIT_V1, limit, 1, f"{F}.limit", ctx)
        else:
            _set_limit(d, _LIMIT_V1, limit, 1, f"{F}.limit", ctx)
            _set_limit(d, _MEMSW_V1, swap, 1, f"{F}.swap", ctx)
    elif limit:
        _set_limit(d, _LIMIT_V1, limit, 1, f"{F}.limit", ctx)
    elif swap:
        _set_limit(d, _MEMSW_V1, swap, 1, f"{F}.swap", ctx)
    if v["reservation"]:
        fs.write(d, "memory.soft_limit_in_bytes", v["reservation"], f"{F}.reservation",
                 ctx.source)
    if v["disableOOMKiller"]:
        fs.write(d, "memory.oom_control", 1, f"{F}.disableOOMKiller", ctx.source)
    sw = v["swappiness"]
    if sw is not None and sw != -1:
        fs.write(d, "memory.swappiness", sw, f"{F}.swappiness", ctx.source)


def swap_v2(swap: int, limit: int) -> int | None:
    """v1-style memory+swap -> memory.swap.max; None: leave it; -1: max."""
    if limit == -1 and swap == 0:
        return -1
    if swap in (-1, 0):
        return swap or None
    return swap - limit


def _apply_v2(d: str, v: dict, limit: int, swap: int, ctx: Ctx) -> None:
    sv = swap_v2(swap, limit)
    if sv is not None and limit <= 0 and sv != -1:
        # An update of swap alone: relative to the limit already in place.
        cur = fs.read_or_none(d, "memory.max")
        if cur is None or cur.strip() == "max":
            raise ConfigError(f"{F}.swap", "unable to set swap limit without memory limit",
                              ctx.source)
        sv = swap - int(cur)
        if sv < 0:
            raise ConfigError(f"{F}.swap", f"memory+swap limit {swap} should be >= memory "
                                           f"limit {int(cur)}", ctx.source)
    # swap first: lowering memory.max never fails because of it, and a v2 host without swap
    # accounting reports the problem before anything changed.
    if sv is not None:
        if not fs.exists(d, "memory.swap.max"):
            if sv not in (-1, 0):
                raise ConfigError(f"{F}.swap", "swap limit is not supported (memory.swap.max "
                                               "is missing)", ctx.source)
        else:
            fs.write(d, "memory.swap.max", "max" if sv == -1 else sv, f"{F}.swap", ctx.source)
    if limit:
        _set_limit(d, "memory.max", limit, 2, f"{F}.limit", ctx)
    if v["reservation"]:
        r = v["reservation"]
        fs.write(d, "memory.low", "max" if r == -1 else r, f"{F}.reservation", ctx.source)


def oom_kills(dirpath: str, version: int) -> int:
    name = "memory.oom_control" if version == 1 else "memory.events"
    return fs.read_keyed(dirpath, name).get("oom_kill", 0)


def _entry(d: str, prefix: str) -> dict:
    return {"limit": fs.read_uint(d, prefix + "limit_in_bytes"),
            "usage": fs.read_uint(d, prefix + "usage_in_bytes"),
            "max": fs.read_uint(d, prefix + "max_usage_in_bytes"),
            "failcnt": fs.read_uint(d, prefix + "failcnt")}


def stats(d: str, version: int) -> dict:
    raw = fs.read_keyed(d, "memory.stat")
    if version == 1:
        return {"cache": raw.get("cache", 0),
                "usage": _entry(d, "memory."),
                "swap": _entry(d, "memory.memsw."),
                "kernel": _entry(d, "memory.kmem."),
                "kernelTCP": _entry(d, "memory.kmem.tcp."),
                "raw": raw}
    usage = {"limit": fs.read_uint(d, "memory.max"),
             "usage": fs.read_uint(d, "memory.current"),
             "max": fs.read_uint(d, "memory.peak"),
             "failcnt": fs.read_keyed(d, "memory.events").get("max", 0)}
    # runc reports v2 swap as memory+swap, so that numbers compare with v1's memsw.
    swap_cur = fs.read_uint(d, "memory.swap.current")
    swap_max = fs.read_uint(d, "memory.swap.max")
    u64 = (1 << 64) - 1
    swap = {"limit": u64 if u64 in (swap_max, usage["limit"]) else swap_max + usage["limit"],
            "usage": swap_cur + usage["usage"],
            "max": 0,
            "failcnt": fs.read_keyed(d, "memory.swap.events").get("max", 0)}
    empty = {"limit": 0, "usage": 0, "max": 0, "failcnt": 0}
    return {"cache": raw.get("file", 0), "usage": usage, "swap": swap,
            "kernel": dict(empty), "kernelTCP": dict(empty), "raw": raw}
