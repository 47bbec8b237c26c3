"""update: change a live container's cgroup resources (runc update).

As runc does (libcontainer Set), the update is merged into the resources saved in state.json
and the whole merged set is written, because some values only make sense together (v1
memory+swap ordering, a v2 swap given alone, quota without period); if a write fails half way,
the previous set is written back. Unlike runc, the merged set is validated first, so a bad
combination (swap below the limit...) is refused before any file is touched.

Merge rules (runc's update.go): scalars of memory, cpu, blockIO, pids replace the saved ones
when given; device throttles and weights are upserted by major:minor, huge page limits by page
size; `unified` is written only with the values of this update (re-writing saved raw v2 values
would undo what the converted ones just set) and merged into the saved map; `devices` cannot be
updated (runc skips them too).
"""

from __future__ import annotations

import copy

from ocirt.errors import CgroupError, ConfigError, ContainerNotRunning, OcirtError, StateError
from ocirt.lifecycle.container import Container
from ocirt.log import logger
from ocirt.state import machine
from ocirt.state.store import Store, discard

SOURCE = "resources"
_OBJECTS = ("memory", "cpu", "pids", "blockIO", "network", "rdma", "unified")
_LISTS = ("hugepageLimits", "devices")
_BLKIO_DEVICE_LISTS = ("weightDevice", "throttleReadBpsDevice", "throttleWriteBpsDevice",
                       "throttleReadIOPSDevice", "throttleWriteIOPSDevice")


def check_shape(given: object) -> dict:
    """Enough structure for merging; value checks are the controllers' (validate)."""
    if not isinstance(given, dict):
        raise ConfigError("linux.resources", "must be an object", SOURCE)
    for k in _OBJECTS:
        if given.get(k) is not None and not isinstance(given[k], dict):
            raise ConfigError(f"linux.resources.{k}", "must be an object", SOURCE)
    for k in _LISTS:
        if given.get(k) is not None and not isinstance(given[k], list):
            raise ConfigError(f"linux.resources.{k}", "must be an array", SOURCE)
    b = given.get("blockIO") or {}
    for k in _BLKIO_DEVICE_LISTS:
        v = b.get(k)
        if v is not None and (not isinstance(v, list)
                              or not all(isinstance(e, dict) for e in v)):
            raise ConfigError(f"linux.resources.blockIO.{k}", "must be an array of objects",
                              SOURCE)
    for i, e in enumerate(given.get("hugepageLimits") or []):
        if not isinstance(e, dict):
            raise ConfigError(f"linux.resources.hugepageLimits[{i}]", "must be an object",
                              SOURCE)
    return given


def _upsert(old: list, new: list, key) -> list:
    out = [dict(e) for e in old if isinstance(e, dict)]
    for e in new:
        for i, o in enumerate(out):
            if key(o) == key(e):
                out[i] = {**o, **{k: v for k, v in e.items() if v is not None}}
                break
        else:
            out.append(dict(e))
    return out


def _dev(e: dict):
    return e.get("major"), e.get("minor")


def merge(saved: dict, given: dict) -> dict:
    """The resources to keep in state.json after `given` is applied over `saved`."""
    out = copy.deepcopy(saved)
    mem = given.get("memory") or {}
    if mem.get("limit") == -1 and mem.get("swap") is None:
        # runc: unlimited memory without a swap value means unlimited memory+swap too.
        given = dict(given, memory=dict(mem, swap=-1))
    for k in ("memory", "cpu", "pids", "rdma", "unified", "network"):
        g = given.get(k)
        if g is None:
            continue
        if k == "network":
            out[k] = copy.deepcopy(g)
            continue
        cur = out.get(k) if isinstance(out.get(k), dict) else {}
        out[k] = {**cur, **{f: copy.deepcopy(v) for f, v in g.items() if v is not None}}
    b = given.get("blockIO")
    if b is not None:
        cur = dict(out.get("blockIO") or {})
        for f, v in b.items():
            if v is None:
                continue
            if f in _BLKIO_DEVICE_LISTS:
                cur[f] = _upsert(cur.get(f) or [], v, _dev)
            else:
                cur[f] = v
        out["blockIO"] = cur
    if given.get("hugepageLimits"):
        out["hugepageLimits"] = _upsert(out.get("hugepageLimits") or [],
                                        given["hugepageLimits"], lambda e: e.get("pageSize"))
    return out


def to_write(merged: dict, given: dict) -> dict:
    """What goes to the cgroup files: the merged set without devices, and only this
    update's raw v2 values."""
    out = {k: v for k, v in merged.items() if k not in ("devices", "unified")}
    if given.get("unified"):
        out["unified"] = given["unified"]
    return out


def update(store: Store, cid: str, given: dict) -> None:
    given = check_shape(given)
    if given.get("devices"):
        logger.warning("device rules cannot be updated; linux.resources.devices is ignored")
    mem = given.get("memory") or {}
    if mem.get("kernel") is not None or mem.get("kernelTCP") is not None:
        logger.warning("Kernel memory settings are ignored and will be removed")
    with store.lock(cid):
        c = Container.load(store, cid)
        if c.status() == machine.STOPPED:
            raise ContainerNotRunning()
        cg = c.cgroup()
        if cg is None:
            raise CgroupError("cannot update a container that runs without cgroups")
        linux = c.state.setdefault("config", {}).setdefault("linux", {})
        saved = linux.get("resources") or {}
        merged = merge(saved, given)
        new = to_write(merged, given)
        # Everything is checked before the first write: the update alone (its own field
        # errors), then the merged set (combinations with the saved values).
        cg.validate(to_write(given, given), update=True)
        cg.validate(new, update=True)
        # The new state is written before the first cgroup write and made current after the
        # last: a state root that cannot take it (full, read-only) refuses the update with
        # nothing applied, and a failed write leaves the saved state as it was.
        linux["resources"] = merged
        try:
            tmp = store.prepare(cid, c.state)
        except StateError as e:
            raise StateError(f"{e.message}; the update was not applied") from None
        try:
            cg.update(new)
        except BaseException:
            discard(tmp)
            try:
                cg.update(to_write(saved, {}))
            except (OcirtError, OSError) as e2:
                logger.warning(f"setting back the previous cgroup values failed: {e2}; the "
                               "saved state and the cgroup files may now disagree")
            raise
        store.commit(cid, tmp)
