"""process.oomScoreAdj: written to /proc/self/oom_score_adj only when set (runtime-spec).

Lowering the value below the current one needs CAP_SYS_RESOURCE, which root's bounding set lacks on
some hosts; the kernel then says EACCES and we report it like runc does (it is a real failure).
"""

from __future__ import annotations

from ocirt.errors import ConfigError, SetupError


def parse(value: object, *, jpath: str = "process.oomScoreAdj",
          source: str = "config.json") -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not -1000 <= value <= 1000:
        raise ConfigError(jpath, f"must be an integer in [-1000, 1000], got {value!r}", source)
    return value


def apply(value: int, proc) -> None:
    """`proc` is an open ocirt.security._procfs.ProcRoot."""
    try:
        proc.write("self/oom_score_adj", str(value).encode())
    except OSError as e:
        hint = " (lowering it needs CAP_SYS_RESOURCE)" if e.errno == 13 else ""
        raise SetupError(f"setting oom_score_adj to {value}: {e.strerror}{hint}") from None
