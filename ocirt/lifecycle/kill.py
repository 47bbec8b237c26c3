"""kill: signal the init (or, with --all, every process of the container's cgroup)."""

from __future__ import annotations

import posix

from ocirt.errors import ContainerNotRunning, OcirtError, UsageError
from ocirt.lifecycle.container import Container
from ocirt.linux import signals
from ocirt.state import machine
from ocirt.state.store import Store


def parse_signal(text: str) -> int:
    try:
        return signals.parse(text)
    except ValueError:
        raise UsageError(f"unknown signal \"{text}\"") from None


def kill(store: Store, cid: str, sig: int, all_processes: bool = False) -> None:
    with store.lock(cid):
        c = Container.load(store, cid)
        status = c.status()
        if not 0 <= sig <= signals.SIGRTMAX:
            raise OcirtError("unable to signal init: invalid argument")
        if all_processes:
            # As runc: every process left in the cgroup, whatever the init's status; a
            # stopped container whose cgroup is empty (or gone) is not an error.
            cg = c.cgroup()
            if cg is not None:
                cg.kill_all(sig)
                return
            if status == machine.STOPPED:
                return
        if status not in (machine.CREATED, machine.RUNNING, machine.PAUSED):
            raise ContainerNotRunning()
        signal_init(c, sig)


def signal_init(c: Container, sig: int) -> None:
    # A pidfd pins the process we checked (pid + start time) so a recycled pid is never hit.
    try:
        fd = posix.pidfd_open(c.pid)
    except OSError:
        raise ContainerNotRunning() from None
    try:
        if machine.start_time(c.pid) != c.state.get("pid_start"):
            raise ContainerNotRunning()
        signals.pidfd_send_signal(fd, sig)
    except ProcessLookupError:
        raise ContainerNotRunning() from None
    except OSError as e:
        raise OcirtError(f"unable to signal init: {e.strerror.lower()}") from None
    finally:
        posix.close(fd)
