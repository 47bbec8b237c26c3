"""Reading and writing cgroupfs files, with errors that name the OCI field being applied.

cgroupfs wants one write(2) per value, so files are opened and written directly rather than
through buffered text I/O (a buffered writer may split or retry a short write).
"""

from __future__ import annotations

import errno
import posix

from ocirt import fspath
from ocirt.errors import CgroupError, ConfigError
from ocirt.log import logger

# The kernel refused the value itself (as opposed to the environment refusing us): the
# config is at fault, so the error names the field.
_VALUE_ERRNOS = frozenset({errno.EINVAL, errno.ERANGE, errno.EOVERFLOW, errno.ENODEV,
                           errno.EOPNOTSUPP, errno.ENOENT, errno.ENOSPC})

# Which document the field path belongs to; `update` applies a bare LinuxResources object.
SOURCE = {"create": "config.json", "update": "resources"}


def write(dirpath: str, name: str, value: str | int, field: str | None = None,
          source: str = "config.json") -> None:
    path = f"{dirpath}/{name}"
    data = str(value).encode()
    logger.debug("cgroup: writing %r to %s", value, path)
    try:
        fd = posix.open(path, posix.O_WRONLY | posix.O_TRUNC | posix.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ENOENT and field:
            raise ConfigError(field, f"not supported on this host: {path} does not exist",
                              source) from None
        err = CgroupError(f"cannot open {path}: {e.strerror}")
        err.errno = e.errno
        raise err from None
    try:
        posix.write(fd, data)
    except OSError as e:
        msg = f"cannot write {data.decode()!r} to {path}: {e.strerror}"
        if field and e.errno in _VALUE_ERRNOS:
            raise ConfigError(field, msg, source) from None
        err = CgroupError(msg + (f" (setting {field})" if field else ""))
        err.errno = e.errno   # callers turn some (EBUSY on a memory limit) into better words
        raise err from None
    finally:
        posix.close(fd)


def read(dirpath: str, name: str) -> str:
    with open(f"{dirpath}/{name}", "rb") as f:
        return f.read().decode()


def read_or_none(dirpath: str, name: str) -> str | None:
    try:
        return read(dirpath, name)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        # ENODEV: the cgroup was removed under us; treat like a missing file.
        if e.errno in (errno.ENODEV, errno.EOPNOTSUPP):
            return None
        raise


def parse_uint(text: str) -> int:
    """cgroup v2 spells "no limit" as max; report it like runc does (the largest u64)."""
    text = text.strip()
    if text == "max":
        return (1 << 64) - 1
    return int(text)


def read_uint(dirpath: str, name: str, default: int = 0) -> int:
    text = read_or_none(dirpath, name)
    if text is None or not text.strip():
        return default
    return parse_uint(text)


def read_keyed(dirpath: str, name: str) -> dict[str, int]:
    """Flat keyed files: "key value" per line (memory.stat, cpu.stat, memory.events...)."""
    text = read_or_none(dirpath, name)
    out: dict[str, int] = {}
    if not text:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = parse_uint(parts[1])
            except ValueError:
                pass
    return out


def exists(dirpath: str, name: str) -> bool:
    return fspath.exists(f"{dirpath}/{name}")
