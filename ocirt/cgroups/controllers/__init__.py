"""One module per controller. Each module offers:

    V1: str | None        its cgroup v1 subsystem name (None: not a v1 controller)
    V2: str | None        its cgroup v2 controller name ("" : core cgroup2, always there;
                          None: does not exist on v2)
    KEYS                  the linux.resources members it reads
    wanted(res) -> bool   whether `res` asks anything of it
    validate(res, version, ctx)           side-effect free checks -> ConfigError
    apply(dirpath, res, version, ctx)     write the files

and optionally stats(dirpath, version) -> dict. Modules are imported only when a resource
needs them, keeping `ocirt create` of an unconstrained container free of them.
"""

from __future__ import annotations

import sys

# runc's order: cpuset first (v1 needs cpus/mems before anything joins), devices early
# (security), memory before cpu; unified last so that raw v2 values override converted ones.
ORDER = ("cpuset", "devices", "memory", "cpu", "pids", "blkio", "hugetlb",
         "net_cls", "net_prio", "rdma", "unified")

# linux.resources member -> controller modules that read it
BY_KEY = {
    "devices": ("devices",),
    "memory": ("memory",),
    "cpu": ("cpuset", "cpu"),
    "pids": ("pids",),
    "blockIO": ("blkio",),
    "hugepageLimits": ("hugetlb",),
    "network": ("net_cls", "net_prio"),
    "rdma": ("rdma",),
    "unified": ("unified",),
}


class Ctx:
    def __init__(self, source: str = "config.json", update: bool = False,
                 v2_controllers: frozenset[str] = frozenset()) -> None:
        self.source = source                # which document the field paths refer to
        self.update = update                # `ocirt update` rather than create
        self.v2_controllers = v2_controllers


def load(name: str) -> object:
    # __import__, not importlib: importing importlib (and warnings) costs start-up time.
    full = f"{__name__}.{name}"
    __import__(full)
    return sys.modules[full]


def wanted(resources: dict | None) -> list[object]:
    """The controller modules `resources` needs, in application order."""
    if not resources:
        return []
    names = {n for key, mods in BY_KEY.items() if resources.get(key) is not None for n in mods}
    mods = [load(n) for n in ORDER if n in names]
    return [m for m in mods if m.wanted(resources)]
