"""process.ioPriority -> ioprio_set(2).

runtime-spec says the priority applies to the container's process group. Like runc and crun we
call ioprio_set(IOPRIO_WHO_PROCESS, 0, ...) on the init just before execve: every process of the
container descends from it and inherits the I/O priority across fork. (runc's constant is named
ioprioWhoPgrp but its value is 1 = IOPRIO_WHO_PROCESS.) IOPRIO_WHO_PGRP with who=0 would hit
the init's current process group, which the runtime may share with host processes.
"""

from __future__ import annotations

from ocirt.errors import ConfigError, SetupError
from ocirt.linux import cabi
from ocirt.linux import syscalls as sc

CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
IOPRIO_WHO_PROCESS = 1
IOPRIO_CLASS_SHIFT = 13


def parse(value: object, *, jpath: str = "process.ioPriority",
          source: str = "config.json") -> int | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(jpath, "must be an object", source)
    cls = value.get("class")
    if cls not in CLASSES:
        raise ConfigError(jpath + ".class", f"invalid io priority class {cls!r}", source)
    prio = value.get("priority", 0)
    if not isinstance(prio, int) or isinstance(prio, bool) or not 0 <= prio <= 7:
        raise ConfigError(jpath + ".priority", f"must be an integer in [0, 7], got {prio!r}",
                          source)
    return CLASSES[cls] << IOPRIO_CLASS_SHIFT | prio


def apply(ioprio: int) -> None:
    try:
        sc.syscall("ioprio_set", cabi.c_int(IOPRIO_WHO_PROCESS), cabi.c_int(0),
                   cabi.c_int(ioprio))
    except OSError as e:
        raise SetupError(f"setting io priority: {e.strerror}") from None


def get() -> int:
    return sc.syscall("ioprio_get", cabi.c_int(IOPRIO_WHO_PROCESS), cabi.c_int(0))
