"""process.scheduler -> sched_setattr(2) on the init before execve (inherited by the process).

Validation follows runc's (1.2+) rules: nice in [-20, 19]; priority only for SCHED_FIFO/SCHED_RR;
runtime/deadline/period only for SCHED_DEADLINE. SCHED_ISO is in the spec but was never merged
into Linux, so it is rejected as an unsupported value up front.
"""

from __future__ import annotations

from ocirt.errors import ConfigError, SetupError
from ocirt.linux import cabi
from ocirt.linux import syscalls as sc

POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3,
            "SCHED_ISO": 4, "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02,
         "SCHED_FLAG_DL_OVERRUN": 0x04, "SCHED_FLAG_KEEP_POLICY": 0x08,
         "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
         "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}


class SchedAttr(cabi.Structure):
    _fields_ = [("size", cabi.c_uint32), ("sched_policy", cabi.c_uint32),
                ("sched_flags", cabi.c_uint64), ("sched_nice", cabi.c_int32),
                ("sched_priority", cabi.c_uint32), ("sched_runtime", cabi.c_uint64),
                ("sched_deadline", cabi.c_uint64), ("sched_period", cabi.c_uint64),
                ("sched_util_min", cabi.c_uint32), ("sched_util_max", cabi.c_uint32)]


def _int(v, lo, hi) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def parse(value: object, *, jpath: str = "process.scheduler",
          source: str = "config.json") -> tuple | None:
    """-> (policy, flags, nice, priority, runtime, deadline, period)"""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(jpath, "must be an object", source)
    pol = value.get("policy")
    if pol not in POLICIES:
        raise ConfigError(jpath + ".policy", f"invalid scheduler policy {pol!r}", source)
    if pol == "SCHED_ISO":
        raise ConfigError(jpath + ".policy", "SCHED_ISO is not supported by Linux", source)
    nice = value.get("nice", 0)
    if not _int(nice, -20, 19):
        raise ConfigError(jpath + ".nice", f"must be an integer in [-20, 19], got {nice!r}",
                          source)
    prio = value.get("priority", 0)
    if not _int(prio, 0, 99):
        raise ConfigError(jpath + ".priority", f"must be an integer in [0, 99], got {prio!r}",
                          source)
    if prio and pol not in ("SCHED_FIFO", "SCHED_RR"):
        raise ConfigError(jpath + ".priority",
                          "can only be specified for SCHED_FIFO or SCHED_RR", source)
    dl = []
    for k in ("runtime", "deadline", "period"):
        v = value.get(k, 0)
        if not _int(v, 0, (1 << 64) - 1):
            raise ConfigError(f"{jpath}.{k}", f"must be an unsigned 64-bit integer, got {v!r}",
                              source)
        if v and pol != "SCHED_DEADLINE":
            raise ConfigError(f"{jpath}.{k}", "can only be specified for SCHED_DEADLINE", source)
        dl.append(v)
    flags = 0
    fl = value.get("flags") or []
    if not isinstance(fl, list):
        raise ConfigError(jpath + ".flags", "must be an array", source)
    for i, f in enumerate(fl):
        if f not in FLAGS:
            raise ConfigError(f"{jpath}.flags[{i}]", f"invalid scheduler flag {f!r}", source)
        flags |= FLAGS[f]
    return (POLICIES[pol], flags, nice, prio, *dl)


def apply(s: tuple) -> None:
    pol, flags, nice, prio, runtime, deadline, period = s
    attr = SchedAttr(cabi.sizeof(SchedAttr), pol, flags, nice, prio, runtime, deadline, period,
                     0, 0)
    try:
        sc.syscall("sched_setattr", cabi.c_int(0), cabi.byref(attr), cabi.c_uint(0))
    except OSError as e:
        raise SetupError(f"setting scheduler attributes: {e.strerror}") from None
