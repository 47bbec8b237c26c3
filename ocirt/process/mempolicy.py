"""linux.memoryPolicy: the container's NUMA memory policy, set with set_mempolicy(2).

The init (and every exec'd process) sets it on itself just before it execs, so the
container's program and its children allocate under it; the runtime's own allocations are
unaffected. Nodes that are not online are refused at create, before anything exists.
"""

from __future__ import annotations

from ocirt.config.semantic import format_id_list, id_set
from ocirt.errors import ConfigError, SetupError
from ocirt.linux import syscalls as sc

# include/uapi/linux/mempolicy.h
MODES = {
    "MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3,
    "MPOL_LOCAL": 4, "MPOL_PREFERRED_MANY": 5, "MPOL_WEIGHTED_INTERLEAVE": 6,
}
FLAGS = {
    "MPOL_F_NUMA_BALANCING": 1 << 13, "MPOL_F_RELATIVE_NODES": 1 << 14,
    "MPOL_F_STATIC_NODES": 1 << 15,
}
ONLINE_NODES = "/sys/devices/system/node/online"
_FIELD = "linux.memoryPolicy"


def online_nodes() -> set[int] | None:
    """The online NUMA nodes, or None on a kernel without NUMA support."""
    try:
        with open(ONLINE_NODES) as f:
            return id_set(f.read())
    except OSError:
        return None


def parse(mp: dict | None, source: str = "config.json") -> tuple[int, list[int]] | None:
    """(mode with its MPOL_F_* flags, node numbers) to apply, or None; ConfigError for nodes
    this host does not have. The schema and the semantic rules have already checked the mode,
    flags and list syntax."""
    if not mp:
        return None
    nodes = sorted(id_set(mp.get("nodes", "")))
    online = online_nodes()
    if online is None:
        raise ConfigError(_FIELD, f"this kernel has no NUMA support ({ONLINE_NODES} is missing)",
                          source)
    flags = mp.get("flags") or ()
    # With MPOL_F_RELATIVE_NODES the numbers are positions within the allowed nodes, folded
    # onto them by the kernel: they need not exist.
    if "MPOL_F_RELATIVE_NODES" not in flags:
        missing = [n for n in nodes if n not in online]
        if missing:
            raise ConfigError(f"{_FIELD}.nodes",
                              f"node(s) {format_id_list(missing)} not online on this host "
                              f"(online: {format_id_list(online)})", source)
    mode = MODES[mp["mode"]]
    for flag in flags:
        mode |= FLAGS[flag]
    return mode, nodes


def apply(policy: tuple[int, list[int]]) -> None:
    try:
        sc.set_mempolicy(*policy)
    except OSError as e:
        raise SetupError(f"{_FIELD}: set_mempolicy: {(e.strerror or str(e)).split(': ')[-1]}") \
            from None
