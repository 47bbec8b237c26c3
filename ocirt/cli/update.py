"""update: resources from --resources (a LinuxResources JSON file, or - for stdin) or from
runc's per-resource flags."""

from __future__ import annotations

import re
import sys

from ocirt.cli import common
from ocirt.cli.flags import Flag, need_args
from ocirt.errors import UsageError

FLAGS = [
    Flag("resources", "str", "", aliases=("r",), help="path to the file containing the resources to update or '-' to read from the standard input"),
    Flag("blkio-weight", "int", None, help="specifies per cgroup weight, range is from 10 to 1000"),
    Flag("cpu-period", "str", None, help="CPU CFS period to be used for hardcapping (in usecs). 0 to use system default"),
    Flag("cpu-quota", "str", None, help="CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period"),
    Flag("cpu-burst", "str", None, help="CPU CFS hardcap burst limit (in usecs). Allowed accumulated cpu time additionally for burst a given period"),
    Flag("cpu-share", "str", None, aliases=("cpu-shares",), help="CPU shares (relative weight vs. other containers)"),
    Flag("cpu-rt-period", "str", None, help="CPU realtime period to be used for hardcapping (in usecs). 0 to use system default"),
    Flag("cpu-rt-runtime", "str", None, help="CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period"),
    Flag("cpuset-cpus", "str", None, help="CPU(s) to use"),
    Flag("cpuset-mems", "str", None, help="Memory node(s) to use"),
    Flag("cpu-idle", "str", None, help="set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE"),
    Flag("memory", "str", None, help="Memory limit (in bytes)"),
    Flag("memory-reservation", "str", None, help="Memory reservation or soft_limit (in bytes)"),
    Flag("memory-swap", "str", None, help="Total memory usage (memory + swap); set '-1' to enable unlimited swap"),
    Flag("pids-limit", "int", None, help="Maximum number of pids allowed in the container"),
    Flag("l3-cache-schema", "str", None, help="The string of Intel RDT/CAT L3 cache schema"),
    Flag("mem-bw-schema", "str", None, help="The string of Intel RDT/MBA memory bandwidth schema"),
    Flag("kernel-memory", "str", None, hidden=True),
    Flag("kernel-memory-tcp", "str", None, hidden=True),
    common.HELP,
]

# Flag -> (resources object, field, value kind)
_FIELDS = [
    ("blkio-weight", "blockIO", "weight"),
    ("cpu-period", "cpu", "period"), ("cpu-quota", "cpu", "quota"), ("cpu-burst", "cpu", "burst"),
    ("cpu-share", "cpu", "shares"), ("cpu-rt-period", "cpu", "realtimePeriod"),
    ("cpu-rt-runtime", "cpu", "realtimeRuntime"), ("cpuset-cpus", "cpu", "cpus"),
    ("cpuset-mems", "cpu", "mems"), ("cpu-idle", "cpu", "idle"),
    ("memory", "memory", "limit"), ("memory-reservation", "memory", "reservation"),
    ("memory-swap", "memory", "swap"), ("pids-limit", "pids", "limit"),
]
_MEMORY_FLAGS = {"memory", "memory-reservation", "memory-swap"}
# String flags in runc, parsed by its update command with strconv (and its error words).
_UINT_FLAGS = {"cpu-period", "cpu-share", "cpu-burst", "cpu-rt-period"}
_INT_FLAGS = {"cpu-quota", "cpu-rt-runtime", "cpu-idle"}
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_SIZE = re.compile(r"(\d+(?:\.\d+)?) ?([kmgtp]?)i?b?\Z", re.IGNORECASE)


def ram_in_bytes(text: str) -> int:
    """docker/go-units RAMInBytes: "64m", "1.5g", "1024" (binary units); "-1" is unlimited."""
    if text.strip() == "-1":
        return -1
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"invalid size: '{text}'")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _strconv(flag: str, text: str, signed: bool) -> int:
    """Go's strconv.ParseInt / ParseUint(text, 10, 64), with runc's message on failure."""
    fn = "ParseInt" if signed else "ParseUint"
    digits = text[1:] if signed and text[:1] in ("+", "-") else text
    if not (digits.isdigit() and digits.isascii()):
        why = "invalid syntax"
    else:
        n = int(text)
        if (-(1 << 63) <= n < 1 << 63) if signed else n < 1 << 64:
            return n
        why = "value out of range"
    raise UsageError(f'invalid value for {flag}: strconv.{fn}: parsing "{text}": {why}')


def resources_from(parsed) -> dict:
    path = parsed["resources"]
    if path:
        import json
        try:
            if path == "-":
                data = sys.stdin.buffer.read()
            else:
                with open(path, "rb") as f:
                    data = f.read()
            r = json.loads(data)
        except OSError as e:
            raise UsageError(f"open {path}: {(e.strerror or str(e)).lower()}") from None
        except ValueError as e:
            raise UsageError(f"decoding resources: {e}") from None
        if not isinstance(r, dict):
            raise UsageError("resources: not a JSON object")
        return r
    for flag in ("kernel-memory", "kernel-memory-tcp"):
        if parsed[flag] is not None:
            from ocirt.log import logger
            logger.warning(f"Setting --{flag} is ignored and will be removed")
    r: dict = {}
    for flag, obj, field in _FIELDS:
        v = parsed[flag]
        if v is None:
            continue
        if flag in _MEMORY_FLAGS:
            try:
                v = ram_in_bytes(v)
            except ValueError as e:
                raise UsageError(f"invalid value for {flag}: {e}") from None
        elif flag in _UINT_FLAGS or flag in _INT_FLAGS:
            v = _strconv(flag, v, signed=flag in _INT_FLAGS)
        r.setdefault(obj, {})[field] = v
    return r


def run(ctx, parsed) -> int:
    need_args(parsed, "update", exact=1)
    # runc checks these whatever else is given; ocirt has no Intel RDT support at all.
    if parsed["l3-cache-schema"]:
        raise UsageError("Intel RDT/CAT: l3 cache schema is not enabled (ocirt does not "
                         "support Intel RDT)")
    if parsed["mem-bw-schema"]:
        raise UsageError("Intel RDT/MBA: memory bandwidth schema is not enabled (ocirt does "
                         "not support Intel RDT)")
    resources = resources_from(parsed)
    from ocirt.lifecycle.update import update
    update(common.store(ctx), parsed.args[0], resources)
    return 0
