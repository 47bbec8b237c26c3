"""events: the container's cgroup statistics and OOM kills as runc prints them (one JSON
object per line: {"type":"stats","id":..,"data":{..}} and {"type":"oom","id":..}).

runc waits for OOM notifications on an eventfd and samples statistics on a ticker; here one
loop polls the OOM kill counter (memory.oom_control / memory.events `oom_kill`) every
OOM_POLL seconds and samples statistics every `interval`. runc stops when the memory cgroup
is removed (after `delete`); this loop also stops once the container's init is gone, after a
last look at the OOM counter so that a kill that stopped the container is still reported.
"""

from __future__ import annotations

import gc
import json
import signal
import sys
import time

from ocirt.errors import CgroupError, ContainerNotFound, OcirtError
from ocirt.lifecycle.container import Container
from ocirt.log import logger
from ocirt.state import machine
from ocirt.state.store import Store

OOM_POLL = 0.1


def _emit(event: dict) -> None:
    # Go's json.Encoder: compact, one object per line.
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _load(store: Store, cid: str, interval: float):
    # runc's order: the container must exist, then the interval be valid (even with --stats),
    # then the container be running.
    c = Container.load(store, cid)
    if interval <= 0:
        raise OcirtError("duration interval must be greater than 0")
    if c.status() == machine.STOPPED:
        raise OcirtError(f"container with id {cid} is not running")
    cg = c.cgroup()
    if cg is None or not cg.paths:
        # paths is empty for a rootless container that could create no cgroup of its own
        raise CgroupError("cannot read statistics of a container without cgroups")
    return c, cg


def stats_once(store: Store, cid: str, interval: float = 5.0) -> None:
    _, cg = _load(store, cid, interval)
    _emit({"type": "stats", "id": cid, "data": cg.stats()})


def stream(store: Store, cid: str, interval: float) -> None:
    c, cg = _load(store, cid, interval)
    gc.freeze()     # the launcher turned the collector off for start-up (see foreground)
    gc.enable()     # a stream may run for days
    stop = []

    def _stop(signum, frame):
        stop.append(signum)

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)

    def ooms() -> int | None:
        try:
            return cg.oom_events()
        except (OSError, CgroupError):
            return None      # the cgroup is gone

    seen = ooms() or 0

    def report_ooms() -> bool:
        nonlocal seen
        n = ooms()
        if n is None:
            return False
        for _ in range(max(0, n - seen)):
            _emit({"type": "oom", "id": cid})
        seen = max(seen, n)
        return True

    next_stats = time.monotonic() + interval
    while not stop:
        now = time.monotonic()
        time.sleep(max(0.0, min(next_stats - now, OOM_POLL)))
        alive = report_ooms()
        if time.monotonic() >= next_stats:
            next_stats += interval
            try:
                _emit({"type": "stats", "id": cid, "data": cg.stats()})
            except (OSError, CgroupError) as e:
                logger.error(f"stats: {e}")
        if not alive or not _running(store, c):
            report_ooms()
            return


def _running(store: Store, c: Container) -> bool:
    try:
        return machine.derive(c.state, c.dir) != machine.STOPPED and store.exists(c.id)
    except ContainerNotFound:
        return False
