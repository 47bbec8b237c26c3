"""Container status, derived from the live system and never trusted from disk.

A pid alone can be reused, so the init's start time (field 22 of /proc/PID/stat) is saved at
create and compared: a different start time, a zombie or no process at all means "stopped".
A frozen cgroup means "paused"; otherwise the exec FIFO, which exists until `start` consumes
it, means "created".
"""

from __future__ import annotations

from ocirt import fspath

CREATING = "creating"
CREATED = "created"
RUNNING = "running"
PAUSED = "paused"
STOPPED = "stopped"


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may contain spaces and parentheses: split after the LAST ')'.
    rest = data[data.rindex(b")") + 2:].split()
    return rest[0].decode(), int(rest[19])


def start_time(pid: int) -> int | None:
    st = proc_stat(pid)
    return None if st is None else st[1]


def init_alive(state: dict) -> bool:
    pid = state.get("pid") or 0
    if pid <= 0:
        return False
    st = proc_stat(pid)
    if st is None or st[0] in ("Z", "X", "x"):
        return False
    return st[1] == state.get("pid_start")


def derive(state: dict, state_dir: str) -> str:
    if state.get("creating"):
        from ocirt.state import store
        return CREATING if store.create_running(state_dir) else STOPPED
    if not init_alive(state):
        return STOPPED
    # Frozen wins over the FIFO, as in runc: a created container that was paused is "paused",
    # and `start` must refuse it rather than wait for an init that cannot run.
    cg = state.get("cgroup")
    if cg:
        from ocirt.cgroups.controllers import freezer
        try:
            if freezer.is_frozen_recorded(cg.get("paths") or {}):
                return PAUSED
        except OSError:
            pass
    if fspath.exists(f"{state_dir}/exec.fifo"):
        return CREATED
    return RUNNING
