"""freezer: pause/resume. v1 freezer.state (FROZEN/THAWED), v2 cgroup.freeze + cgroup.events.

v1 freezing can stall in FREEZING while tasks keep forking, so, like runc, it retries the write
and now and then thaws briefly to let the cgroup settle, then gives up and thaws rather than
leave a half-frozen container.
"""

from __future__ import annotations

import time

from ocirt import fspath
from ocirt.cgroups import fs
from ocirt.errors import CgroupError

V1 = "freezer"
V2 = ""


def freeze_v1(d: str) -> None:
    for i in range(1000):
        if i % 50 == 49:
            fs.write(d, "freezer.state", "THAWED")
            time.sleep(0.01)
        fs.write(d, "freezer.state", "FROZEN")
        if i % 25 == 24:
            time.sleep(0.00001)
        state = fs.read(d, "freezer.state").strip()
        if state == "FROZEN":
            return
        if state != "FREEZING":
            raise CgroupError(f"unexpected freezer state {state!r} after writing FROZEN")
    fs.write(d, "freezer.state", "THAWED")
    raise CgroupError(f"unable to freeze {d}")


def thaw_v1(d: str) -> None:
    fs.write(d, "freezer.state", "THAWED")


def is_frozen_v1(d: str) -> bool:
    for _ in range(1000):
        state = (fs.read_or_none(d, "freezer.state") or "").strip()
        if state in ("THAWED", ""):
            return False
        if state == "FROZEN":
            # Frozen because of an ancestor is not "paused" for this container.
            self_ = fs.read_or_none(d, "freezer.self_freezing")
            return self_ is None or self_.strip() == "1"
        time.sleep(0.001)   # FREEZING: transient, wait for a stable answer
    return True


def _events_frozen(d: str) -> bool:
    return fs.read_keyed(d, "cgroup.events").get("frozen") == 1


def freeze_v2(d: str, timeout: float = 10.0) -> None:
    fs.write(d, "cgroup.freeze", "1")
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not _events_frozen(d):
        if time.monotonic() > deadline:
            fs.write(d, "cgroup.freeze", "0")
            raise CgroupError(f"timeout of {timeout:g}s reached waiting for {d} to freeze")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def thaw_v2(d: str) -> None:
    fs.write(d, "cgroup.freeze", "0")


def is_frozen_v2(d: str) -> bool:
    return (fs.read_or_none(d, "cgroup.freeze") or "0").strip() == "1"


def thaw_tree(version: int, d: str) -> None:
    """Thaw `d` and every cgroup below it that is frozen on its own. A frozen task cannot act
    on SIGKILL, and thawing a cgroup leaves a sub-cgroup that was frozen by itself (v1
    freezer.self_freezing, v2 cgroup.freeze) frozen: the container may have frozen one of its
    own sub-cgroups, and a kill must still reach every task."""
    for top in fspath.walk_dirs(d):
        try:
            if version == 1:
                own = (fs.read_or_none(top, "freezer.self_freezing") or "").strip() == "1"
                if top == d or own:
                    thaw_v1(top)
            elif top == d or is_frozen_v2(top):
                thaw_v2(top)
        except CgroupError:
            if top == d:
                raise
            # A sub-cgroup removed meanwhile has nothing left to thaw.


def route(paths: dict[str, str]) -> tuple[int, str] | None:
    """(1 or 2, directory) of the freezer among a container's cgroup paths (Manager.paths, as
    its state records them): the v1 freezer if there is one, else cgroup2 (key "", as
    ocirt.cgroups.paths.UNIFIED)."""
    if "freezer" in paths:
        return 1, paths["freezer"]
    if "" in paths:
        return 2, paths[""]
    return None


def is_frozen_recorded(paths: dict[str, str]) -> bool:
    """is_frozen from the recorded paths alone: `state`, `start`, `kill` and `delete` need
    nothing else of the cgroup manager (importing it costs more than the rest of `state`)."""
    r = route(paths)
    if r is None or not fspath.isdir(r[1]):
        return False
    return (is_frozen_v1 if r[0] == 1 else is_frozen_v2)(r[1])
