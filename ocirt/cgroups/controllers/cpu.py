"""cpu: shares/weight, CFS quota and period, burst, idle, realtime runtime and period.

On v1 the `cpuacct` hierarchy (separate from `cpu` on some hosts) only provides statistics.
"""

from __future__ import annotations

import os

from ocirt.cgroups import fs
from ocirt.cgroups.controllers import Ctx
from ocirt.cgroups.controllers._check import I64_MAX, P, get_int, obj
from ocirt.errors import ConfigError

V1 = "cpu"
V2 = "cpu"
KEYS = ("cpu",)
F = f"{P}.cpu"

_FIELDS = ("shares", "quota", "period", "burst", "idle", "realtimeRuntime", "realtimePeriod")


def wanted(res: dict) -> bool:
    c = res.get("cpu") or {}
    return any(c.get(k) is not None for k in _FIELDS)


def shares_to_weight(shares: int) -> int:
    """runc's ConvertCPUSharesToCgroupV2Value: [2, 262144] -> [1, 10000]; 0 stays unset."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def _values(res: dict, ctx: Ctx) -> dict:
    c = obj(res["cpu"], F, ctx.source)
    return {
        "shares": get_int(c, "shares", F, ctx.source, 0, 262144),
        "quota": get_int(c, "quota", F, ctx.source, -1, I64_MAX),
        "period": get_int(c, "period", F, ctx.source, 0, 1_000_000),
        "burst": get_int(c, "burst", F, ctx.source, 0, I64_MAX),
        "idle": get_int(c, "idle", F, ctx.source, 0, 1),
        "realtimeRuntime": get_int(c, "realtimeRuntime", F, ctx.source, -1, I64_MAX),
        "realtimePeriod": get_int(c, "realtimePeriod", F, ctx.source, 0, I64_MAX),
    }


def validate(res: dict, version: int, ctx: Ctx) -> None:
    v = _values(res, ctx)
    if v["shares"] == 1:
        raise ConfigError(f"{F}.shares", "the minimum allowed cpu-shares is 2", ctx.source)
    if v["period"] and v["period"] < 1000:
        raise ConfigError(f"{F}.period", f"{v['period']} is below the minimum 1000 (us)",
                          ctx.source)
    if v["quota"] is not None and 0 < v["quota"] < 1000:
        raise ConfigError(f"{F}.quota", f"{v['quota']} is below the minimum 1000 (us)",
                          ctx.source)
    if version == 2:
        for k in ("realtimeRuntime", "realtimePeriod"):
            if v[k]:
                raise ConfigError(f"{F}.{k}", "realtime scheduling limits are not supported "
                                              "on cgroup v2", ctx.source)


def _w(d: str, name: str, value, key: str, ctx: Ctx) -> None:
    fs.write(d, name, value, f"{F}.{key}", ctx.source)


def apply(d: str, res: dict, version: int, ctx: Ctx) -> None:
    v = _values(res, ctx)
    if version == 1:
        _apply_v1(d, v, ctx)
    else:
        _apply_v2(d, v, ctx)


def _apply_v1(d: str, v: dict, ctx: Ctx) -> None:
    # Realtime budget first: the kernel refuses RT tasks in a group without one.
    if v["realtimePeriod"]:
        _w(d, "cpu.rt_period_us", v["realtimePeriod"], "realtimePeriod", ctx)
    if v["realtimeRuntime"]:
        _w(d, "cpu.rt_runtime_us", v["realtimeRuntime"], "realtimeRuntime", ctx)
    # idle first: an idle group has no weight of its own (the kernel then reports the
    # minimum), so shares only mean something once idle is 0, and are skipped when it is 1.
    if v["idle"] is not None:
        _w(d, "cpu.idle", v["idle"], "idle", ctx)
    if v["shares"] and not v["idle"]:
        _w(d, "cpu.shares", v["shares"], "shares", ctx)
        got = fs.read_uint(d, "cpu.shares")
        if got != v["shares"]:
            # The kernel clamps instead of failing; runc reports that as an error.
            word = "maximum" if v["shares"] > got else "minimum"
            raise ConfigError(f"{F}.shares", f"the {word} allowed cpu-shares is {got}",
                              ctx.source)
    period = v["period"]
    pending_period = False
    if period:
        try:
            _w(d, "cpu.cfs_period_us", period, "period", ctx)
        except ConfigError:
            # A smaller period can be refused while the old quota/new period would exceed
            # the parent's; it goes through once the quota is set, so retry after it.
            if not v["quota"]:
                raise
            pending_period = True
    if v["quota"]:
        _w(d, "cpu.cfs_quota_us", v["quota"], "quota", ctx)
        if pending_period:
            _w(d, "cpu.cfs_period_us", period, "period", ctx)
    if v["burst"] is not None:
        _w(d, "cpu.cfs_burst_us", v["burst"], "burst", ctx)


def _apply_v2(d: str, v: dict, ctx: Ctx) -> None:
    if v["idle"] is not None:
        _w(d, "cpu.idle", v["idle"], "idle", ctx)
    if v["shares"] and not v["idle"]:
        _w(d, "cpu.weight", shares_to_weight(v["shares"]), "shares", ctx)
    if v["quota"] or v["period"]:
        value = cpu_max(v["quota"] or 0, v["period"] or 0)
        _w(d, "cpu.max", value, "quota", ctx)
    if v["burst"] is not None:
        _w(d, "cpu.max.burst", v["burst"], "burst", ctx)


def cpu_max(quota: int, period: int) -> str:
    """cpu.max is "$QUOTA $PERIOD", QUOTA "max" for no limit; a lone quota keeps the period."""
    s = str(quota) if quota > 0 else "max"
    return f"{s} {period}" if period else s


def _ns_list(text: str | None) -> list[int]:
    return [int(x) for x in (text or "").split()]


def stats(d: str, version: int, acct_dir: str | None = None) -> dict:
    if version == 2:
        st = fs.read_keyed(d, "cpu.stat")
        usage = {"total": st.get("usage_usec", 0) * 1000,
                 "percpu": [], "percpu_kernel": [], "percpu_user": [],
                 "kernel": st.get("system_usec", 0) * 1000,
                 "user": st.get("user_usec", 0) * 1000}
        thr = {"periods": st.get("nr_periods", 0), "throttledPeriods": st.get("nr_throttled", 0),
               "throttledTime": st.get("throttled_usec", 0) * 1000}
        return {"usage": usage, "throttling": thr}
    st = fs.read_keyed(d, "cpu.stat") if d else {}
    thr = {"periods": st.get("nr_periods", 0), "throttledPeriods": st.get("nr_throttled", 0),
           "throttledTime": st.get("throttled_time", 0)}
    usage = {"total": 0, "percpu": [], "percpu_kernel": [], "percpu_user": [],
             "kernel": 0, "user": 0}
    if acct_dir:
        usage["total"] = fs.read_uint(acct_dir, "cpuacct.usage")
        usage["percpu"] = _ns_list(fs.read_or_none(acct_dir, "cpuacct.usage_percpu"))
        all_ = fs.read_or_none(acct_dir, "cpuacct.usage_all") or ""
        for line in all_.splitlines()[1:]:      # "cpu user system" header
            parts = line.split()
            if len(parts) == 3:
                usage["percpu_user"].append(int(parts[1]))
                usage["percpu_kernel"].append(int(parts[2]))
        # cpuacct.stat counts clock ticks.
        tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
        ks = fs.read_keyed(acct_dir, "cpuacct.stat")
        usage["user"] = ks.get("user", 0) * tick
        usage["kernel"] = ks.get("system", 0) * tick
    return {"usage": usage, "throttling": thr}

