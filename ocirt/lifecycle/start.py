"""start: release the init waiting on the exec FIFO, exactly once, then run poststart hooks."""

from __future__ import annotations

import errno
import posix
import select

from ocirt import testpoint
from ocirt.errors import SetupError, StateError
from ocirt.lifecycle.container import Container
from ocirt.log import logger
from ocirt.state import machine
from ocirt.state.store import FIFO_NAME, Store


def start(store: Store, cid: str, notify_in_background: bool = False) -> Container:
    """notify_in_background: for a foreground `run`, which must wait for and forward signals
    to the container at once; a child process relays NOTIFY_SOCKET's READY= instead."""
    with store.lock(cid):
        c = Container.load(store, cid)
        status = c.status()
        if status != machine.CREATED:
            if status == machine.STOPPED:
                raise StateError("cannot start a container that has stopped")
            if status == machine.RUNNING:
                raise StateError("cannot start an already running container")
            raise StateError(f"cannot start a container in the {status} state")
        if not c.config.get("process"):
            raise StateError("cannot start a container without a process (config.json: process is not set)")
        notify = None
        if posix.environ.get(b"NOTIFY_SOCKET"):
            from ocirt.notify_socket import Forwarder
            notify = Forwarder.for_container(c.dir)
        testpoint.reached("start:locked")
        try:
            release(c)
        except BaseException:
            if notify is not None:
                notify.close()
            raise
        testpoint.reached("start:released")
    poststart = (c.config.get("hooks") or {}).get("poststart")
    if poststart:
        _poststart(c, poststart, notify)
    if notify is not None:
        if notify_in_background:
            if posix.fork() == 0:
                try:
                    notify.forward(c.pid)
                finally:
                    posix._exit(0)
            notify.close()
        else:
            # As runc: start returns once the container reported READY= (or exited).
            notify.forward(c.pid)
    return c


def _poststart(c: Container, poststart: list, notify) -> None:
    # Imported here: most containers have no hooks, and the modules would cost every start.
    from ocirt import hooks
    from ocirt.linux import signals
    try:
        hooks.run("poststart", poststart, c.hook_state(machine.RUNNING))
    except SetupError:
        if notify is not None:
            notify.close()
        # Since runtime-spec 1.3.0 a failed poststart hook is an error: stop the container.
        try:
            posix.kill(c.pid, signals.SIGKILL)
        except ProcessLookupError:
            pass
        raise


def release(c: Container) -> None:
    fifo = f"{c.dir}/{FIFO_NAME}"
    # The pidfd first: opening the FIFO releases the init, whose process may then run, exit
    # and be reaped by the manager (a shim reaps at once) before a later pidfd_open.
    try:
        pidfd = posix.pidfd_open(c.pid)
    except OSError:
        raise StateError("container not running") from None
    try:
        # Non-blocking open never hangs, even if the init died; the pidfd tells us if it did.
        rfd = posix.open(fifo, posix.O_RDONLY | posix.O_NONBLOCK | posix.O_CLOEXEC)
        try:
            answer = _read_answer(rfd, pidfd)
        finally:
            posix.unlink(fifo)
            posix.close(rfd)
    finally:
        posix.close(pidfd)
    if answer[:1] == b"0":
        logger.debug("start: init process %d released through the exec fifo", c.pid)
        return
    if answer[:1] == b"E":
        raise SetupError(answer[1:].decode(errors="replace"))
    raise SetupError("container init exited before it could start the process")


def _read_answer(rfd: int, pidfd: int) -> bytes:
    poller = select.poll()
    poller.register(rfd, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    buf = b""
    while True:
        events = dict(poller.poll())
        if rfd in events:
            try:
                chunk = posix.read(rfd, 4096)
            except OSError as e:
                if e.errno == errno.EAGAIN:
                    chunk = None
                else:
                    raise
            if chunk:
                buf += chunk
                if buf[:1] == b"0" or (buf[:1] == b"E" and events.get(rfd, 0) & select.POLLHUP):
                    return buf
                continue
            if chunk == b"" and events[rfd] & select.POLLHUP:
                # The writer closed: all it had to say is in buf.
                return buf
        if pidfd in events and rfd not in events:
            # The init exited; drain what it wrote before dying.
            try:
                buf += posix.read(rfd, 4096)
            except OSError:
                pass
            return buf
