"""process.execCPUAffinity: the CPUs a process of `ocirt exec` runs on.

runtime-spec 1.3: `initial` is for the runtime's process that enters the container, before it
moves into the container's cgroup; `final` is for the user's process, after that move. If
`final` is omitted the process gets the CPUs of the container's cgroup: a cpuset move may
keep an affinity that is a subset, so (like runc) the runtime resets it, and an `initial`
meant for the runtime's work never sticks to the user's process. The setting "is not
applicable to the container's init process", so create and run only check it (it is the
default of every `exec` without --process).
"""

from __future__ import annotations

import os

from ocirt.config.semantic import format_id_list, id_set
from ocirt.errors import ConfigError, SetupError

ONLINE_CPUS = "/sys/devices/system/cpu/online"


def parse(aff: dict | None, at: str = "process.execCPUAffinity",
          source: str = "config.json") -> tuple[set[int] | None, set[int] | None]:
    """(initial, final) CPU sets, None where not given; ConfigError for a CPU that is not
    online (the schema and the semantic rules checked the list syntax)."""
    if not aff:
        return None, None
    try:
        with open(ONLINE_CPUS) as f:
            online = id_set(f.read())
    except OSError:
        online = set(range(os.cpu_count() or 1))
    out: list[set[int] | None] = []
    for field in ("initial", "final"):
        cpus = id_set(aff.get(field) or "")
        missing = sorted(cpus - online)
        if missing:
            raise ConfigError(f"{at}.{field}",
                              f"CPU(s) {format_id_list(missing)} not online on this host "
                              f"(online: {format_id_list(online)})", source)
        out.append(cpus or None)
    return out[0], out[1]


def apply(pid: int, cpus: set[int] | None, what: str) -> None:
    """sched_setaffinity(2) of `pid` (0: the caller), if cpus were given."""
    if cpus is None:
        return
    try:
        os.sched_setaffinity(pid, cpus)
    except OSError as e:
        raise SetupError(f"process.execCPUAffinity.{what}: sched_setaffinity: "
                         f"{(e.strerror or str(e)).lower()}") from None


def cgroup_cpus(cpuset_dir: str | None, version: int) -> set[int]:
    """The CPUs a process of this cpuset cgroup may use; every online CPU without one."""
    name = "cpuset.effective_cpus" if version == 1 else "cpuset.cpus.effective"
    for path in ([os.path.join(cpuset_dir, name)] if cpuset_dir else []) + [ONLINE_CPUS]:
        try:
            with open(path) as f:
                cpus = id_set(f.read())
        except OSError:
            continue
        if cpus:
            return cpus
    return set(range(os.cpu_count() or 1))
