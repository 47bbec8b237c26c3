"""pause/resume: freeze or thaw the container's cgroup (runc: pause needs a running or created
container, resume a paused one). A created container that is paused reads `paused` and goes
back to `created` on resume, as in runc."""

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
        cg = _cgroup(c)
        cg.freeze()
        # The init may have exited between the check and the freeze (runc checks the same
        # way): a frozen, empty cgroup must not make a stopped container read "paused".
        if not cg.pids():
            try:
                cg.thaw()
            except CgroupError:
                pass
            raise ContainerNotRunning()


def resume(store: Store, cid: str) -> None:
    with store.lock(cid):
        c = Container.load(store, cid)
        if c.status() != machine.PAUSED:
            raise ContainerNotPaused()
        _cgroup(c).thaw()
