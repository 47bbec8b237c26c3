"""What a container's unit is: its name and slice from linux.cgroupsPath, and the properties
of StartTransientUnit / SetUnitProperties from linux.resources, with runc's rules.

Properties are (name, (D-Bus signature, value)) pairs, jeepney's spelling of a variant. Only
resources systemd has a property for go here; every resource is also written to the unit's
delegated cgroup by the cgroupfs code, as runc does, so values systemd rounds (CPU quota to
10 ms per second) or cannot express still end up exact in the kernel.
"""

from __future__ import annotations

import re

from ocirt.errors import ConfigError

# Where a container goes when config.json has no cgroupsPath: runc's is system.slice:runc:<id>.
DEFAULT_SLICE = "system.slice"
DEFAULT_USER_SLICE = "user.slice"
DEFAULT_PREFIX = "ocirt"

U64_MAX = (1 << 64) - 1         # systemd's "infinity" for byte and task limits, and USEC_INFINITY
DEFAULT_CPU_PERIOD = 100_000

FIELD = "linux.cgroupsPath"

# systemd's unit name alphabet (unit_name_is_valid): letters, digits, ":-_.\".
_UNIT_CHARS = re.compile(r"[A-Za-z0-9:_.\\-]+")


class Unit:
    __slots__ = ("name", "slice", "slice_path")

    def __init__(self, name: str, slice_: str, slice_path: str) -> None:
        self.name = name                # "ocirt-<id>.scope", or a "<name>.slice"
        self.slice = slice_             # the parent slice unit, "system.slice"
        self.slice_path = slice_path    # its cgroup, "/system.slice"

    @property
    def is_slice(self) -> bool:
        return self.name.endswith(".slice")

    @property
    def cgroup(self) -> str:
        """The unit's cgroup below the manager's own: systemd places a slice by its name
        alone, a scope inside its Slice=."""
        if self.is_slice:
            return expand_slice(self.name)
        return self.slice_path.rstrip("/") + "/" + self.name


def expand_slice(slice_: str) -> str:
    """A slice name -> its cgroup path: "a-b.slice" -> "/a.slice/a-b.slice" ("-.slice" is the
    root). Raises ValueError for a name systemd would refuse."""
    if len(slice_) <= len(".slice") or not slice_.endswith(".slice") or "/" in slice_:
        raise ValueError(slice_)
    stem = slice_[:-len(".slice")]
    if stem == "-":
        return "/"
    path, prefix = "", ""
    for part in stem.split("-"):
        if not part:                    # "a--b.slice", "-a.slice", "a-.slice"
            raise ValueError(slice_)
        path += f"/{prefix}{part}.slice"
        prefix += part + "-"
    return path


def parse(container_id: str, cgroups_path: str | None, *, user: bool = False) -> Unit:
    """linux.cgroupsPath "slice:prefix:name" -> the unit to start; empty gets
    ocirt's default, system.slice:ocirt:<id> (user.slice for a user's manager)."""
    if not cgroups_path:
        slice_, prefix, name = (DEFAULT_USER_SLICE if user else DEFAULT_SLICE,
                                DEFAULT_PREFIX, container_id)
    else:
        parts = cgroups_path.split(":")
        if len(parts) != 3:
            raise ConfigError(FIELD, f"expected \"slice:prefix:name\" for the systemd cgroup "
                                     f"driver, got {cgroups_path!r}")
        slice_, prefix, name = parts
        if not slice_:
            slice_ = DEFAULT_USER_SLICE if user else DEFAULT_SLICE
    if not name:
        raise ConfigError(FIELD, f"{cgroups_path!r} has an empty unit name (slice:prefix:name)")
    try:
        slice_path = expand_slice(slice_)
    except ValueError:
        raise ConfigError(FIELD, f"invalid slice name {slice_!r} in {cgroups_path!r}: a slice "
                                 "is named like a-b.slice") from None
    # A name ending in .slice asks for a slice unit of that name; anything else is a scope.
    unit = name if name.endswith(".slice") else f"{prefix}-{name}.scope"
    if not _UNIT_CHARS.fullmatch(unit) or len(unit) > 255:
        raise ConfigError(FIELD, f"{unit!r} is not a valid systemd unit name")
    if unit.endswith(".slice"):
        try:
            expand_slice(unit)
        except ValueError:
            raise ConfigError(FIELD, f"invalid slice name {unit!r} in {cgroups_path!r}") from None
    return Unit(unit, slice_, slice_path)


# --- properties ----------------------------------------------------------------------------

def start_properties(unit: Unit, container_id: str, pid: int | None, resources: dict | None,
                     version: int) -> list[tuple[str, tuple[str, object]]]:
    """StartTransientUnit's properties, as runc sends them."""
    props: list[tuple[str, tuple[str, object]]] = [
        ("Description", ("s", f"ocirt container {container_id}")),
    ]
    if unit.is_slice:
        # A slice is placed by its name; Wants= orders it after its parent.
        props.append(("Wants", ("as", [unit.slice])))
    else:
        props.append(("Slice", ("s", unit.slice)))
        props.append(("Delegate", ("b", True)))
    if pid is not None:
        props.append(("PIDs", ("au", [pid])))
    props += [
        ("MemoryAccounting", ("b", True)),
        ("CPUAccounting", ("b", True)),
        ("IOAccounting", ("b", True)),
        ("TasksAccounting", ("b", True)),
        ("DefaultDependencies", ("b", False)),
    ]
    props += resource_properties(resources or {}, version)
    return props


def resource_properties(res: dict, version: int) -> list[tuple[str, tuple[str, object]]]:
    """The resources systemd (cgroup v2) has properties for, as runc's
    genV2ResourcesProperties. Values were validated by the cgroupfs code already."""
    from ocirt.cgroups.controllers import blkio, cpu, memory

    props: list[tuple[str, tuple[str, object]]] = []
    mem = res.get("memory") or {}
    limit = mem.get("limit") or 0
    if limit:
        props.append(("MemoryMax", ("t", _u64(limit))))
    if mem.get("reservation"):
        props.append(("MemoryLow", ("t", _u64(mem["reservation"]))))
    swap = memory.swap_v2(mem.get("swap") or 0, limit)
    if swap is not None and swap != 0:
        props.append(("MemorySwapMax", ("t", _u64(swap))))

    c = res.get("cpu") or {}
    if c.get("shares"):
        props.append(("CPUWeight", ("t", cpu.shares_to_weight(c["shares"]))))
    props += _cpu_quota(c.get("quota") or 0, c.get("period") or 0, version)
    if version >= 244:
        if c.get("cpus"):
            props.append(("AllowedCPUs", ("ay", list_to_mask(c["cpus"]))))
        if c.get("mems"):
            props.append(("AllowedMemoryNodes", ("ay", list_to_mask(c["mems"]))))

    pids = res.get("pids") or {}
    lim = pids.get("limit")
    if lim is not None and (lim > 0 or lim == -1):
        props.append(("TasksMax", ("t", _u64(lim))))

    weight = (res.get("blockIO") or {}).get("weight")
    if weight:
        props.append(("IOWeight", ("t", blkio.weight_to_io(weight))))
    props += _unified(res.get("unified") or {}, version)
    return props


def _u64(v: int) -> int:
    return U64_MAX if v < 0 else v


def _cpu_quota(quota: int, period: int, version: int) -> list:
    """CPUQuotaPerSecUSec counts microseconds per second and systemd keeps it in whole
    percent: round up to 10 ms so the kernel's own quota (written by cgroupfs) is never
    above the unit's."""
    out: list = []
    if period and version >= 242:
        out.append(("CPUQuotaPeriodUSec", ("t", period)))
    if quota or period:
        per_sec = U64_MAX
        if quota > 0:
            per_sec = quota * 1_000_000 // (period or DEFAULT_CPU_PERIOD)
            if per_sec % 10_000:
                per_sec = (per_sec // 10_000 + 1) * 10_000
        out.append(("CPUQuotaPerSecUSec", ("t", per_sec)))
    return out


def list_to_mask(text: str) -> bytes:
    """"0-2,4" -> systemd's CPU/node bitmask: byte i holds bits 8i..8i+7, lowest first."""
    from ocirt.cgroups.controllers._check import parse_list
    ids = parse_list(text)
    if not ids:
        return b""
    out = bytearray(max(ids) // 8 + 1)
    for i in ids:
        out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def _unified(unified: dict, version: int) -> list:
    """linux.resources.unified keys systemd has a property for (runc's
    unifiedResToSystemdProps); the rest only go to cgroupfs."""
    out: list = []
    for key, value in unified.items():
        v = str(value).strip()
        if key in ("memory.min", "memory.low", "memory.high", "memory.max", "memory.swap.max"):
            name = {"memory.min": "MemoryMin", "memory.low": "MemoryLow",
                    "memory.high": "MemoryHigh", "memory.max": "MemoryMax",
                    "memory.swap.max": "MemorySwapMax"}[key]
            if v == "max":
                out.append((name, ("t", U64_MAX)))
            elif v.isdigit():
                out.append((name, ("t", int(v))))
        elif key == "pids.max":
            if v == "max":
                out.append(("TasksMax", ("t", U64_MAX)))
            elif v.isdigit():
                out.append(("TasksMax", ("t", int(v))))
        elif key == "cpu.weight" and v.isdigit():
            out.append(("CPUWeight", ("t", int(v))))
        elif key == "cpu.max":
            parts = v.split()
            if parts and (parts[0] == "max" or parts[0].isdigit()) and \
                    all(p.isdigit() for p in parts[1:2]):
                quota = -1 if parts[0] == "max" else int(parts[0])
                out += _cpu_quota(quota, int(parts[1]) if len(parts) > 1 else 0, version)
        elif key in ("cpuset.cpus", "cpuset.mems") and version >= 244 and v:
            name = "AllowedCPUs" if key == "cpuset.cpus" else "AllowedMemoryNodes"
            try:
                out.append((name, ("ay", list_to_mask(v))))
            except ValueError:
                pass                    # cgroupfs's validation names the key
    return out
