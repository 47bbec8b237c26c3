"""kill: signal the init (or, with --all, every process of the container's cgroup)."""

from __future__ import annotations

import os
import signal as _signal

from ocirt.errors import ContainerNotRunning, UsageError
from ocirt.lifecycle.container import Container
from ocirt.linux import syscalls as sc
from ocirt.state import machine
from ocirt.state.store import Store


def parse_signal(text: str) -> int:
    t = text.strip()
    if t.isdigit():
        n = int(t)
        if 0 < n < 65:
            return n
        raise UsageError(f"invalid signal: {text}")
    name = t.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    sig = getattr(_signal.Signals, name, None) if name in _signal.Signals.__members__ else None
    if sig is None:
        rt = _realtime(name)
        if rt is not None:
            return rt
        raise UsageError(f"unknown signal \"{text}\"")
    return int(sig)


def _realtime(name: str) -> int | None:
    base_min, base_max = _signal.SIGRTMIN, _signal.SIGRTMAX
    for prefix, base, sign in (("SIGRTMIN+", base_min, 1), ("SIGRTMAX-", base_max, -1)):
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            n = base + sign * int(name[len(prefix):])
            if base_min <= n <= base_max:
                return n
    if name == "SIGRTMIN":
        return base_min
    if name == "SIGRTMAX":
        return base_max
    return None


def kill(store: Store, cid: str, sig: int, all_processes: bool = False) -> None:
    with store.lock(cid):
        c = Container.load(store, cid)
        status = c.status()
        if status not in (machine.CREATED, machine.RUNNING, machine.PAUSED):
            raise ContainerNotRunning()
        if all_processes:
            cg = c.cgroup()
            if cg is not None:
                cg.kill_all(sig)
                return
        signal_init(c, sig)


def signal_init(c: Container, sig: int) -> None:
    # A pidfd pins the process we checked (pid + start time) so a recycled pid is never hit.
    try:
        fd = sc.pidfd_open(c.pid)
    except OSError:
        raise ContainerNotRunning() from None
    try:
        if machine.start_time(c.pid) != c.state.get("pid_start"):
            raise ContainerNotRunning()
        sc.pidfd_send_signal(fd, sig)
    except ProcessLookupError:
        raise ContainerNotRunning() from None
    finally:
        os.close(fd)
