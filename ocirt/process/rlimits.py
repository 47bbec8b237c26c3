"""process.rlimits: validate names and values (prepare), set them with prlimit(2) (apply).

Values are uint64 in the spec; 2**64-1 is RLIM_INFINITY. ctypes prlimit with a struct of two
uint64 keeps every value exact (Python's resource module would overflow above 2**63-1).
Raising a hard limit above the current one needs CAP_SYS_RESOURCE; without it the kernel says
EPERM and so do runc and crun -- we report which limit failed.
"""

from __future__ import annotations

import os

from ocirt.errors import ConfigError, SetupError
from ocirt.linux import cabi
from ocirt.linux import syscalls as sc

RLIMITS: dict[str, int] = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}
RLIM_INFINITY = (1 << 64) - 1


class _Rlimit(cabi.Structure):
    _fields_ = [("rlim_cur", cabi.c_uint64), ("rlim_max", cabi.c_uint64)]


_libc = sc.libc()


def _u64(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= RLIM_INFINITY


def parse(rlimits: object, *, jpath: str = "process.rlimits",
          source: str = "config.json") -> list[tuple[str, int, int, int]]:
    """[(name, resource, soft, hard)] in config order. Unknown or duplicate type -> ConfigError
    (runtime-spec: the runtime MUST error on both)."""
    if rlimits is None:
        return []
    if not isinstance(rlimits, list):
        raise ConfigError(jpath, "must be an array", source)
    out = []
    seen: set[str] = set()
    for i, rl in enumerate(rlimits):
        p = f"{jpath}[{i}]"
        if not isinstance(rl, dict):
            raise ConfigError(p, "must be an object", source)
        name = rl.get("type")
        if name not in RLIMITS:
            raise ConfigError(p + ".type", f"unknown rlimit type {name!r}", source)
        if name in seen:
            raise ConfigError(p + ".type", f"duplicate rlimit type {name}", source)
        seen.add(name)
        soft, hard = rl.get("soft"), rl.get("hard")
        for k, v in (("soft", soft), ("hard", hard)):
            if not _u64(v):
                raise ConfigError(f"{p}.{k}", f"must be an unsigned 64-bit integer, got {v!r}",
                                  source)
        if soft > hard:
            raise ConfigError(p, f"{name}: soft limit {soft} is greater than hard limit {hard}",
                              source)
        out.append((name, RLIMITS[name], soft, hard))
    return out


def getrlimit(resource: int, pid: int = 0) -> tuple[int, int]:
    old = _Rlimit()
    if _libc.prlimit(cabi.c_int(pid), cabi.c_int(resource), None, cabi.byref(old)) != 0:
        e = cabi.get_errno()
        raise OSError(e, "prlimit: " + os.strerror(e))
    return old.rlim_cur, old.rlim_max


def apply(limits: list[tuple[str, int, int, int]], pid: int = 0) -> None:
    for name, res, soft, hard in limits:
        new = _Rlimit(soft, hard)
        if _libc.prlimit(cabi.c_int(pid), cabi.c_int(res), cabi.byref(new), None) != 0:
            e = cabi.get_errno()
            hint = ""
            if e == 1:
                hint = " (raising a hard limit needs CAP_SYS_RESOURCE)"
            raise SetupError(f"setting rlimit {name} to soft={soft} hard={hard}: "
                             f"{os.strerror(e)}{hint}")
