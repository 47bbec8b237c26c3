"""The `data` object of `runc events --stats` (runc's types/events.go), with Go's omitempty
applied the same way, so that tools parsing runc's output read ours unchanged."""

from __future__ import annotations

from typing import Callable


def _drop_zero(d: dict, keys: tuple[str, ...]) -> dict:
    for k in keys:
        if k in d and not d[k]:
            del d[k]
    return d


def _mem_entry(e: dict) -> dict:
    return _drop_zero(dict(e), ("usage", "max"))


def _blkio_entry(e: dict) -> dict:
    return _drop_zero(dict(e), ("major", "minor", "op", "value"))


def zero_cpu() -> dict:
    return {"usage": {"total": 0, "percpu": [], "percpu_kernel": [], "percpu_user": [],
                      "kernel": 0, "user": 0},
            "throttling": {"periods": 0, "throttledPeriods": 0, "throttledTime": 0}}


def zero_memory() -> dict:
    e = {"limit": 0, "usage": 0, "max": 0, "failcnt": 0}
    return {"cache": 0, "usage": dict(e), "swap": dict(e), "kernel": dict(e),
            "kernelTCP": dict(e), "raw": {}}


def shape(cpu: dict | None, cpuset: dict | None, memory: dict | None, pids: dict | None,
          blkio: dict | None, hugetlb: dict | None) -> dict:
    cpu = cpu or zero_cpu()
    cpu = {"usage": _drop_zero(dict(cpu["usage"]),
                               ("total", "percpu", "percpu_kernel", "percpu_user")),
           "throttling": _drop_zero(dict(cpu["throttling"]),
                                    ("periods", "throttledPeriods", "throttledTime"))}
    cs = dict(cpuset or {"cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0,
                         "memory_migrate": 0, "memory_spread_page": 0,
                         "memory_spread_slab": 0, "memory_pressure": 0,
                         "sched_load_balance": 0, "sched_relax_domain_level": 0})
    _drop_zero(cs, ("cpus", "mems"))
    m = memory or zero_memory()
    mem = {"cache": m["cache"], "usage": _mem_entry(m["usage"]), "swap": _mem_entry(m["swap"]),
           "kernel": _mem_entry(m["kernel"]), "kernelTCP": _mem_entry(m["kernelTCP"]),
           "raw": m["raw"]}
    _drop_zero(mem, ("cache", "raw"))
    p = _drop_zero(dict(pids or {}), ("current", "limit"))
    b = {k: [_blkio_entry(e) for e in v] for k, v in (blkio or {}).items() if v}
    h = {size: _drop_zero(dict(v), ("usage", "max")) for size, v in (hugetlb or {}).items()}
    return {"cpu": cpu, "cpuset": cs, "memory": mem, "pids": p, "blkio": b, "hugetlb": h,
            "intel_rdt": {}, "network_interfaces": None}


def collect(route: Callable[[str], tuple[int, str] | None], acct_dir: str | None) -> dict:
    """route(controller) -> (version, dir) or None; acct_dir: the v1 cpuacct cgroup."""
    from ocirt.cgroups.controllers import load

    def one(name: str, **kw):
        r = route(name)
        if r is None:
            return None
        return load(name).stats(r[1], r[0], **kw)

    cpu_r = route("cpu")
    cpu = None
    if cpu_r is not None or acct_dir:
        from ocirt.cgroups.controllers import cpu as cpu_mod
        if cpu_r is not None and cpu_r[0] == 2:
            cpu = cpu_mod.stats(cpu_r[1], 2)
        else:
            cpu = cpu_mod.stats(cpu_r[1] if cpu_r else "", 1, acct_dir=acct_dir)
    return shape(cpu, one("cpuset"), one("memory"), one("pids"), one("blkio"), one("hugetlb"))
