"""blkio (v1) / io (v2): linux.resources.blockIO.

Weights: v1 writes blkio.bfq.weight when BFQ provides it, else the CFQ-era blkio.weight; v2
writes io.bfq.weight as is, else io.weight converted from the 10..1000 scale to 1..10000
(runc's ConvertBlkIOToIOWeightValue). Throttles: "maj:min rate" per v1 file, "maj:min rbps=N"
(wbps, riops, wiops) lines in v2 io.max.
"""

from __future__ import annotations

from ocirt.cgroups import fs
from ocirt.cgroups.controllers import Ctx
from ocirt.cgroups.controllers._check import P, U64_MAX, arr, get_int, integer, obj
from ocirt.errors import ConfigError

V1 = "blkio"
V2 = "io"
KEYS = ("blockIO",)
F = f"{P}.blockIO"

_THROTTLES = (  # spec member, v1 file, v2 io.max key
    ("throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps"),
    ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps"),
    ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops"),
    ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops"),
)


def wanted(res: dict) -> bool:
    b = res.get("blockIO") or {}
    return any(b.get(k) for k in ("weight", "leafWeight", "weightDevice",
                                  *(t[0] for t in _THROTTLES)))


def weight_to_io(weight: int) -> int:
    return 0 if weight == 0 else 1 + (weight - 10) * 9999 // 990


def validate(res: dict, version: int, ctx: Ctx) -> None:
    b = obj(res["blockIO"], F, ctx.source)
    w = get_int(b, "weight", F, ctx.source, 0, 1000)
    if w and w < 10:
        raise ConfigError(f"{F}.weight", f"{w} is below the minimum 10", ctx.source)
    lw = get_int(b, "leafWeight", F, ctx.source, 0, 1000)
    if lw and version == 2:
        raise ConfigError(f"{F}.leafWeight", "not supported on cgroup v2", ctx.source)
    for i, e in enumerate(arr(b.get("weightDevice") or [], f"{F}.weightDevice", ctx.source)):
        p = f"{F}.weightDevice[{i}]"
        _dev(e, p, ctx)
        for k in ("weight", "leafWeight"):
            x = get_int(e, k, p, ctx.source, 0, 1000)
            if x and x < 10:
                raise ConfigError(f"{p}.{k}", f"{x} is below the minimum 10", ctx.source)
        if e.get("leafWeight") and version == 2:
            raise ConfigError(f"{p}.leafWeight", "not supported on cgroup v2", ctx.source)
    for key, _, _ in _THROTTLES:
        for i, e in enumerate(arr(b.get(key) or [], f"{F}.{key}", ctx.source)):
            p = f"{F}.{key}[{i}]"
            _dev(e, p, ctx)
            integer(e.get("rate"), f"{p}.rate", ctx.source, 0, U64_MAX)


def _dev(e, p: str, ctx: Ctx) -> None:
    obj(e, p, ctx.source)
    integer(e.get("major"), f"{p}.major", ctx.source, 0, 0xFFFFFFFF)
    integer(e.get("minor"), f"{p}.minor", ctx.source, 0, 0xFFFFFFFF)


def apply(d: str, res: dict, version: int, ctx: Ctx) -> None:
    b = res["blockIO"]
    if version == 1:
        _apply_v1(d, b, ctx)
    else:
        _apply_v2(d, b, ctx)


def _apply_v1(d: str, b: dict, ctx: Ctx) -> None:
    bfq = fs.exists(d, "blkio.bfq.weight")
    wfile = "blkio.bfq.weight" if bfq else "blkio.weight"
    wdfile = "blkio.bfq.weight_device" if bfq else "blkio.weight_device"
    if b.get("weight"):
        fs.write(d, wfile, b["weight"], f"{F}.weight", ctx.source)
    if b.get("leafWeight"):
        fs.write(d, "blkio.leaf_weight", b["leafWeight"], f"{F}.leafWeight", ctx.source)
    for i, e in enumerate(b.get("weightDevice") or []):
        p = f"{F}.weightDevice[{i}]"
        if e.get("weight"):
            fs.write(d, wdfile, f"{e['major']}:{e['minor']} {e['weight']}", p, ctx.source)
        if e.get("leafWeight"):
            fs.write(d, "blkio.leaf_weight_device",
                     f"{e['major']}:{e['minor']} {e['leafWeight']}", p, ctx.source)
    for key, v1file, _ in _THROTTLES:
        for i, e in enumerate(b.get(key) or []):
            fs.write(d, v1file, f"{e['major']}:{e['minor']} {e['rate']}", f"{F}.{key}[{i}]",
                     ctx.source)


def _apply_v2(d: str, b: dict, ctx: Ctx) -> None:
    bfq = fs.exists(d, "io.bfq.weight")
    if b.get("weight"):
        if bfq:
            fs.write(d, "io.bfq.weight", b["weight"], f"{F}.weight", ctx.source)
        else:
            fs.write(d, "io.weight", weight_to_io(b["weight"]), f"{F}.weight", ctx.source)
    for i, e in enumerate(b.get("weightDevice") or []):
        if e.get("weight"):
            w = e["weight"] if bfq else weight_to_io(e["weight"])
            fs.write(d, "io.bfq.weight" if bfq else "io.weight",
                     f"{e['major']}:{e['minor']} {w}", f"{F}.weightDevice[{i}]", ctx.source)
    for key, _, iokey in _THROTTLES:
        for i, e in enumerate(b.get(key) or []):
            rate = e["rate"] or "max"   # 0 removes the limit, as on v1
            fs.write(d, "io.max", f"{e['major']}:{e['minor']} {iokey}={rate}",
                     f"{F}.{key}[{i}]", ctx.source)


def _entries(text: str | None) -> list[dict]:
    out = []
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue      # the trailing "Total N" line has no device
        major, _, minor = parts[0].partition(":")
        out.append({"major": int(major), "minor": int(minor), "op": parts[1],
                    "value": int(parts[2])})
    return out


_CFQ = (("ioServiceBytesRecursive", "blkio.io_service_bytes_recursive"),
        ("ioServicedRecursive", "blkio.io_serviced_recursive"),
        ("ioQueueRecursive", "blkio.io_queued_recursive"),
        ("ioServiceTimeRecursive", "blkio.io_service_time_recursive"),
        ("ioWaitTimeRecursive", "blkio.io_wait_time_recursive"),
        ("ioMergedRecursive", "blkio.io_merged_recursive"),
        ("ioTimeRecursive", "blkio.time_recursive"),
        ("sectorsRecursive", "blkio.sectors_recursive"))


def stats(d: str, version: int) -> dict:
    if version == 2:
        return _stats_v2(d)
    # Same preference as runc: CFQ's full set, else BFQ's, else the throttle counters.
    if fs.exists(d, "blkio.io_service_bytes_recursive"):
        files = _CFQ
    elif fs.exists(d, "blkio.bfq.io_service_bytes_recursive"):
        files = (("ioServiceBytesRecursive", "blkio.bfq.io_service_bytes_recursive"),
                 ("ioServicedRecursive", "blkio.bfq.io_serviced_recursive"))
    else:
        files = (("ioServiceBytesRecursive", "blkio.throttle.io_service_bytes_recursive"),
                 ("ioServicedRecursive", "blkio.throttle.io_serviced_recursive"))
    return {key: _entries(fs.read_or_none(d, name)) for key, name in files}


def _stats_v2(d: str) -> dict:
    sb, sd = [], []
    for line in (fs.read_or_none(d, "io.stat") or "").splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        for op, bkey, ikey in (("Read", "rbytes", "rios"), ("Write", "wbytes", "wios")):
            sb.append({"major": int(major), "minor": int(minor), "op": op,
                       "value": int(kv.get(bkey, 0))})
            sd.append({"major": int(major), "minor": int(minor), "op": op,
                       "value": int(kv.get(ikey, 0))})
    return {"ioServiceBytesRecursive": sb, "ioServicedRecursive": sd}
