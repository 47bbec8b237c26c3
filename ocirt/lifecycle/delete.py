"""delete: destroy a stopped container (a created one too, as runc does: containerd relies on it),
or any container with --force; then poststop hooks."""

from __future__ import annotations

import posix

from ocirt import fspath, testpoint
from ocirt.errors import CgroupError, ContainerNotFound, StateError
from ocirt.lifecycle.container import Container
from ocirt.linux import signals
from ocirt.log import logger
from ocirt.state import machine
from ocirt.state.store import Store


def delete(store: Store, cid: str, force: bool = False) -> None:
    d = store.dir(cid)
    if not fspath.isdir(d):
        if force:
            return
        raise ContainerNotFound(cid)
    try:
        lock = store.lock(cid)
        lock.__enter__()
    except ContainerNotFound:
        if force:
            return      # deleted by someone else meanwhile
        raise
    try:
        try:
            c = Container.load(store, cid)
        except ContainerNotFound:
            # No state.json under the lock: a create killed between making the directory
            # and recording the container, before anything else of it existed.
            store.remove(cid)
            return
        if c.state.get("creating"):
            # We hold the lock, so the create that wrote this record is dead: remove what it
            # may have made (the cgroups it recorded, with anything in them, its mounts).
            destroy(c, poststop=False)
            return
        status = c.status()
        if status in (machine.RUNNING, machine.PAUSED) and not force:
            raise StateError(f"cannot delete container {cid} that is not stopped: {status}")
        if status != machine.STOPPED:
            if (c.config.get("linux") or {}).get("netDevices"):
                # Before the kill: the devices leave with the namespace's last process.
                from ocirt import netdevices
                netdevices.detach_from(c.config, c.pid)
            kill_and_wait(c, status == machine.PAUSED)
            testpoint.reached("delete:killed")
        destroy(c)
    finally:
        lock.__exit__()


def kill_and_wait(c: Container, paused: bool) -> None:
    cg = c.cgroup()
    try:
        fd = posix.pidfd_open(c.pid)
    except OSError:
        fd = None
    if fd is not None:
        try:
            if machine.start_time(c.pid) == c.state.get("pid_start"):
                signals.pidfd_send_signal(fd, signals.SIGKILL)
        except ProcessLookupError:
            pass
    if cg is not None:
        if paused or not _own_pid_namespace(c.config):
            # With a pid namespace of its own, the kernel kills every process of it when its
            # init dies (runc signals the whole cgroup only without one); a frozen init
            # cannot die until thawed. destroy() still kills whatever is left in the cgroup.
            try:
                cg.kill_all(signals.SIGKILL)
            except OSError:
                pass
        if paused:
            try:
                cg.thaw()
            except OSError:
                pass
    if fd is not None:
        import select
        p = select.poll()
        p.register(fd, select.POLLIN)
        p.poll(10_000)
        posix.close(fd)
    # Reap it if it is ours (run), otherwise its parent will.
    try:
        posix.waitpid(c.pid, posix.WNOHANG)
    except ChildProcessError:
        pass


def _own_pid_namespace(config: dict) -> bool:
    """The container created its pid namespace (not joined by path, not the host's)."""
    return any(ns.get("type") == "pid" and not ns.get("path")
               for ns in (config.get("linux") or {}).get("namespaces") or ())


def destroy(c: Container, poststop: bool = True) -> None:
    """Remove everything of the container. poststop=False for a create that never completed:
    its hooks never ran as for a created container, so neither does poststop."""
    if c.state.get("rootfs") and "mount" not in c.namespace_types():
        # Without a mount namespace of its own its mounts were made in ours (imported only
        # then: the test costs nothing, the module would cost every delete).
        from ocirt.rootfs import hostns
        for dest in hostns.unmount(c.state["rootfs"], c.config):
            logger.warning(f"failed to unmount {dest} in the rootfs of container {c.id}")
    cg = c.cgroup()
    if cg is not None:
        # destroy() kills what is left in the cgroup and waits out exiting tasks itself.
        try:
            cg.destroy()
        except (OSError, CgroupError) as e:
            logger.warning(f"failed to remove cgroup: {e}")
    testpoint.reached("delete:cgroup")
    c.store.remove(c.id)
    poststop_hooks = (c.config.get("hooks") or {}).get("poststop") if poststop else None
    if poststop_hooks:
        from ocirt import hooks
        hooks.run("poststop", poststop_hooks, c.hook_state(machine.STOPPED), warn_only=True)
