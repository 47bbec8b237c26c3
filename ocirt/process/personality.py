"""linux.personality: execution domain set with personality(2) before execve."""

from __future__ import annotations

from ocirt.errors import ConfigError, SetupError
from ocirt.linux import syscalls as sc

DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}


def parse(value: object, *, jpath: str = "linux.personality",
          source: str = "config.json") -> int | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(jpath, "must be an object", source)
    dom = value.get("domain")
    if dom not in DOMAINS:
        raise ConfigError(jpath + ".domain",
                          f"unsupported personality domain {dom!r} (LINUX or LINUX32)", source)
    flags = value.get("flags")
    if flags:
        # runtime-spec: "Currently no flag values are supported."
        raise ConfigError(jpath + ".flags", f"unsupported personality flags {flags!r}", source)
    return DOMAINS[dom]


def apply(persona: int) -> None:
    try:
        sc.personality(persona)
    except OSError as e:
        raise SetupError(f"setting personality {persona:#x}: {e.strerror}") from None
