"""run = create + start, then wait for the init and exit with its status (128+N when killed by
signal N), forwarding the signals we receive to it; the container is deleted afterwards unless
--keep or --detach."""

from __future__ import annotations

import os

from ocirt import jsonio
from ocirt.lifecycle import create as create_mod
from ocirt.lifecycle import foreground
from ocirt.lifecycle.container import Container
from ocirt.lifecycle.start import start
from ocirt.state.store import Store


def run(store: Store, cid: str, opts: create_mod.Options, detach: bool = False,
        keep: bool = False) -> int:
    ours = None
    if not detach and not opts.console_socket and _wants_terminal(opts.bundle):
        import socket
        ours, opts.console_conn = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    created = create_mod.create(store, cid, opts)
    pid = created.pid
    master = None
    if ours is not None:
        from ocirt import console
        master = console.recv_master(ours)
        ours.close()
    try:
        start(store, cid, notify_in_background=not detach)
    except BaseException:
        if not detach:
            _cleanup(store, cid)
        raise
    if detach:
        return 0

    status = foreground.wait(pid, master)
    if not keep:
        _cleanup(store, cid)
    return status


def _wants_terminal(bundle: str) -> bool:
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            return bool((jsonio.loads(f.read()).get("process") or {}).get("terminal"))
    except (OSError, ValueError, AttributeError):
        return False  # create reports the problem properly


def _cleanup(store: Store, cid: str) -> None:
    from ocirt.lifecycle.delete import delete
    try:
        delete(store, cid, force=True)
    except Exception as e:  # noqa: BLE001 - the exit status matters more than cleanup noise
        from ocirt.log import logger
        logger.warning(f"failed to delete container {cid}: {e}")


__all__ = ["run", "Container"]
