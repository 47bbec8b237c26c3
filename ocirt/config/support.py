"""Fields of runtime-spec 1.3.0 that this version of ocirt does not implement.

The spec says a runtime MUST error on values it does not support rather than ignore them, so
a config that uses one of these fails at create, naming the field. The README lists them.
"""

from __future__ import annotations

import os

from ocirt.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterator

RESCTRL_INFO = "/sys/fs/resctrl/info"   # there when resctrl is mounted

# JSON path -> why
UNSUPPORTED = {
    ("linux", "intelRdt"): "Intel RDT (resctrl) is not supported by ocirt",
}


def check(config: dict, source: str = "config.json") -> None:
    for problem in problems(config, source):
        raise problem


def problems(config: dict, source: str = "config.json") -> Iterator[ConfigError]:
    for (top, key), why in UNSUPPORTED.items():
        section = config.get(top)
        if isinstance(section, dict) and section.get(key) not in (None, {}, []):
            if key == "intelRdt" and not os.path.isdir(RESCTRL_INFO):
                why += " (and this host has no resctrl filesystem at /sys/fs/resctrl)"
            yield ConfigError(f"{top}.{key}", why, source)
