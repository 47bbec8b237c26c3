"""run = create + start, then wait for the init and exit with its status (128+N when killed by
signal N), forwarding the signals we receive to it; the container is deleted afterwards unless
--keep or --detach."""

from __future__ import annotations

from ocirt.lifecycle import create as create_mod
from ocirt.lifecycle import foreground
from ocirt.lifecycle.container import Container
from ocirt.lifecycle.start import start
from ocirt.state.store import Store


def run(store: Store, cid: str, opts: create_mod.Options, detach: bool = False,
        keep: bool = False) -> int:
    opts.foreground_tty = not detach
    # Signals sent to `run` from now on are for the container: held until it runs.
    forwarder = None if detach else foreground.Forwarder()
    try:
        created = create_mod.create(store, cid, opts)
        pid = created.pid
        master = None
        if created.console is not None:
            from ocirt import console
            master = console.recv_master(created.console)
            created.console.close()
            console.clear_onlcr(master)     # before start: nothing is written yet
        try:
            start(store, cid, notify_in_background=not detach)
        except BaseException:
            if not detach:
                cleanup(store, cid)
            raise
    except BaseException:
        if forwarder is not None:
            forwarder.restore()
        raise
    if detach:
        return 0
    return wait_and_delete(store, cid, pid, master, forwarder, keep=keep)


def wait_and_delete(store: Store, cid: str, pid: int, master: int | None,
                    forwarder: foreground.Forwarder | None, keep: bool = False) -> int:
    """The foreground half of run and restore: wait for the container's process (signals
    forwarded, a terminal proxied), then delete the container unless --keep; its status."""
    status = foreground.wait(pid, master, forwarder)
    from ocirt.log import logger
    logger.debug("process %d exited: status %d", pid, status)
    if not keep:
        cleanup(store, cid)
    return status


def cleanup(store: Store, cid: str) -> None:
    """Delete the container after its process ended in the foreground (run, restore)."""
    from ocirt.lifecycle.delete import delete
    try:
        delete(store, cid, force=True)
    except Exception as e:  # noqa: BLE001 - the exit status matters more than cleanup noise
        from ocirt.log import logger
        logger.warning(f"failed to delete container {cid}: {e}")


__all__ = ["run", "Container"]
