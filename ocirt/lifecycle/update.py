"""update: change a live container's cgroup resources (runc update). Only the fields given are
written; the saved config gets them merged in, so later calls see the current limits."""

from __future__ import annotations

from ocirt.errors import ContainerNotRunning
from ocirt.lifecycle.container import Container
from ocirt.state import machine
from ocirt.state.store import Store


def merge(base: dict, given: dict) -> dict:
    """`given`'s non-null fields over `base`, object by object (runc sets only the non-nil
    pointers of its LinuxResources)."""
    out = dict(base)
    for k, v in given.items():
        if v is None:
            continue
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def update(store: Store, cid: str, resources: dict) -> None:
    with store.lock(cid):
        c = Container.load(store, cid)
        if c.status() == machine.STOPPED:
            raise ContainerNotRunning()
        cg = c.cgroup()
        if cg is None:
            raise ContainerNotRunning()
        cg.update(resources)
        linux = c.state.setdefault("config", {}).setdefault("linux", {})
        linux["resources"] = merge(linux.get("resources") or {}, resources)
        store.save(cid, c.state)
