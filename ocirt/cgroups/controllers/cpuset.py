"""cpuset: linux.resources.cpu.cpus / .mems.

The v1 pitfall: a new cpuset cgroup starts with empty cpus and mems, and the kernel refuses to
attach a task to it (ENOSPC). `prepare_v1` copies them down from the parent for every level,
which the manager calls after each mkdir, before any resource or process goes in.
"""

from __future__ import annotations

import os

from ocirt.cgroups import fs
from ocirt.cgroups.controllers import Ctx
from ocirt.cgroups.controllers._check import P, cpu_list, obj, parse_list

V1 = "cpuset"
V2 = "cpuset"
KEYS = ("cpu",)
F = f"{P}.cpu"


def wanted(res: dict) -> bool:
    c = res.get("cpu") or {}
    return bool(c.get("cpus")) or bool(c.get("mems"))


def validate(res: dict, version: int, ctx: Ctx) -> None:
    c = obj(res["cpu"], F, ctx.source)
    for k in ("cpus", "mems"):
        if c.get(k) is not None:
            cpu_list(c[k], f"{F}.{k}", ctx.source)


def apply(d: str, res: dict, version: int, ctx: Ctx) -> None:
    c = res["cpu"]
    for k in ("cpus", "mems"):
        if c.get(k):
            fs.write(d, f"cpuset.{k}", c[k], f"{F}.{k}", ctx.source)


def prepare_v1(d: str, stop_at: str) -> None:
    """Fill empty cpuset.cpus/mems from the nearest ancestor, top-down, from `stop_at` (the
    mountpoint) to `d`."""
    chain = []
    cur = d
    while True:
        chain.append(cur)
        if cur == stop_at or len(cur) <= len(stop_at):
            break
        cur = os.path.dirname(cur)
    chain.reverse()
    for parent, child in zip(chain, chain[1:]):
        for name in ("cpuset.cpus", "cpuset.mems"):
            have = fs.read_or_none(child, name)
            if have is not None and not have.strip():
                value = fs.read(parent, name).strip()
                if value:
                    fs.write(child, name, value)


def stats(d: str, version: int) -> dict:
    if version == 2:
        return {"cpus": parse_list(fs.read_or_none(d, "cpuset.cpus.effective") or ""),
                "cpu_exclusive": 0,
                "mems": parse_list(fs.read_or_none(d, "cpuset.mems.effective") or ""),
                "mem_hardwall": 0, "mem_exclusive": 0, "memory_migrate": 0,
                "memory_spread_page": 0, "memory_spread_slab": 0, "memory_pressure": 0,
                "sched_load_balance": 0, "sched_relax_domain_level": 0}

    def num(name: str) -> int:
        t = fs.read_or_none(d, "cpuset." + name)
        return int(t) if t and t.strip().lstrip("-").isdigit() else 0

    return {"cpus": parse_list(fs.read_or_none(d, "cpuset.cpus") or ""),
            "cpu_exclusive": num("cpu_exclusive"),
            "mems": parse_list(fs.read_or_none(d, "cpuset.mems") or ""),
            "mem_hardwall": num("mem_hardwall"), "mem_exclusive": num("mem_exclusive"),
            "memory_migrate": num("memory_migrate"),
            "memory_spread_page": num("memory_spread_page"),
            "memory_spread_slab": num("memory_spread_slab"),
            "memory_pressure": num("memory_pressure"),
            "sched_load_balance": num("sched_load_balance"),
            "sched_relax_domain_level": num("sched_relax_domain_level")}
