"""Value checks shared by the controllers; each failure names the JSON path of the field."""

from __future__ import annotations

from ocirt.errors import ConfigError

P = "linux.resources"
U64_MAX = (1 << 64) - 1
I64_MAX = (1 << 63) - 1


def obj(value: object, path: str, source: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(path, "must be an object", source)
    return value


def arr(value: object, path: str, source: str) -> list:
    if not isinstance(value, list):
        raise ConfigError(path, "must be an array", source)
    return value


def integer(value: object, path: str, source: str, lo: int | None = None,
            hi: int | None = None) -> int:
    # bool is an int in Python but never a valid number in the spec.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(path, f"must be an integer, got {value!r}", source)
    if lo is not None and value < lo:
        raise ConfigError(path, f"{value} is below the minimum {lo}", source)
    if hi is not None and value > hi:
        raise ConfigError(path, f"{value} is above the maximum {hi}", source)
    return value


def boolean(value: object, path: str, source: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(path, f"must be true or false, got {value!r}", source)
    return value


def string(value: object, path: str, source: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(path, f"must be a string, got {value!r}", source)
    return value


def get_int(d: dict, key: str, path: str, source: str, lo: int | None = None,
            hi: int | None = None) -> int | None:
    """The field, checked, or None when absent/null (absent means: leave the file alone)."""
    v = d.get(key)
    if v is None:
        return None
    return integer(v, f"{path}.{key}", source, lo, hi)


def cpu_list(value: object, path: str, source: str) -> str:
    """The kernel's list format ("0-3,6", "1") used by cpuset.cpus/mems."""
    s = string(value, path, source)
    if s.strip() == "":
        return ""
    for item in s.split(","):
        item = item.strip()
        lo, dash, hi = item.partition("-")
        ok = lo.isdigit() and (not dash or hi.isdigit())
        if ok and dash and int(hi) < int(lo):
            ok = False
        if not ok:
            raise ConfigError(path, f"invalid list {s!r}: expected items like 3 or 0-3 "
                                    "separated by commas", source)
    return s


def parse_list(s: str) -> list[int]:
    out: list[int] = []
    for item in s.strip().split(","):
        item = item.strip()
        if not item:
            continue
        lo, _, hi = item.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out
