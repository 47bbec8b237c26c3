"""checkpoint: criu dumps the running container into the image directory. Without
--leave-running (or --pre-dump) criu's dump ends the container's processes and the container
is destroyed as runc destroys it (cgroups, state, poststop hooks): `state` no longer knows it,
and `restore` can bring it back under the same id. When criu fails, the container is left as
it was, running."""

from __future__ import annotations

import os

from ocirt.criu import describe, rpc
from ocirt.criu.options import CriuOptions
from ocirt.errors import StateError
from ocirt.lifecycle.container import Container
from ocirt.log import logger
from ocirt.state import machine
from ocirt.state.store import Store


def check_status(c: Container) -> None:
    status = c.status()
    if status in (machine.CREATED, machine.STOPPED, machine.CREATING):
        raise StateError(f"Container cannot be checkpointed in {status} state")


def checkpoint(store: Store, c: Container, o: CriuOptions, criu: str) -> None:
    messages = rpc.messages()
    with store.lock(c.id):
        check_status(c)          # again, under the lock
        _dump(messages, c, o, criu)
        if not (o.leave_running or o.pre_dump):
            from ocirt.lifecycle.delete import destroy
            destroy(c)


def _dump(messages, c: Container, o: CriuOptions, criu: str) -> None:
    images = os.open(o.image_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    work = -1
    try:
        if o.work_path:
            os.makedirs(o.work_path, 0o700, exist_ok=True)
            work = os.open(o.work_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        cg = c.cgroup()
        freezer = None
        if cg is not None:
            from ocirt.cgroups.controllers import freezer as freezer_mod
            route = freezer_mod.route(cg.paths)
            freezer = route[1] if route is not None else None
        req = describe.dump_request(messages, o, config=c.config, rootfs=c.state["rootfs"],
                                    pid=c.pid, images_fd=images, work_fd=work,
                                    freezer=freezer)
        if not o.pre_dump:
            describe.save_descriptors(o.image_path, c.pid)
        log = os.path.join(os.path.abspath(o.log_dir), "dump.log")
        logger.debug("criu %s of container %s (init %d), log %s",
                     "pre-dump" if o.pre_dump else "dump", c.id, c.pid, log)
        rpc.Swrk(criu, log).call(req, _Notifications(o))
    finally:
        os.close(images)
        if work >= 0:
            os.close(work)


class _Notifications:
    """criu's notify scripts during a dump: only the lazy-pages status needs an answer."""

    def __init__(self, o: CriuOptions) -> None:
        self.o = o

    def __call__(self, script: str, _pid: int, _fds: list) -> None:
        logger.debug("criu notify: %s", script)
        if script == "status-ready" and self.o.status_fd >= 0:
            try:
                os.write(self.o.status_fd, b"\0")
            except OSError as e:
                logger.warning(f"can't write \\0 to status fd: {e.strerror}")
            os.close(self.o.status_fd)
            self.o.status_fd = -1
