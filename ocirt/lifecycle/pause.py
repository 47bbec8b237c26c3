"""pause/resume: freeze or thaw the container's cgroup (runc: pause needs a running or created
container, resume a paused one)."""

from __future__ import annotations

from ocirt.errors import CgroupError, ContainerNotPaused, ContainerNotRunning
from ocirt.lifecycle.container import Container
from ocirt.state import machine
from ocirt.state.store import Store


def _cgroup(c: Container):
    cg = c.cgroup()
    if cg is None:
        raise CgroupError("cannot pause or resume a container without cgroups")
    return cg


def pause(store: Store, cid: str) -> None:
    with store.lock(cid):
        c = Container.load(store, cid)
        if c.status() not in (machine.RUNNING, machine.CREATED):
            raise ContainerNotRunning()
        _cgroup(c).freeze()


def resume(store: Store, cid: str) -> None:
    with store.lock(cid):
        c = Container.load(store, cid)
        if c.status() != machine.PAUSED:
            raise ContainerNotPaused()
        _cgroup(c).thaw()
