"""The rootfs steps the init runs, in order: plan (parent) -> prepare -> apply_sysctl -> pivot
-> finalize [-> console]. See ARCHITECTURE.md; each step lives in its own module.

Everything the steps use is imported here, at import time: after pivot_root the host's module
files are out of reach (FACTS.md).
"""

from __future__ import annotations

import os

from ocirt.errors import SetupError
from ocirt.linux import pathrs, procfs
from ocirt.linux import syscalls as sc
from ocirt.rootfs import attach, devices, masked, mounts, pivot as _pivot
from ocirt.rootfs import plan as _plan
from ocirt.rootfs import propagation, sysctl
from ocirt.rootfs.plan import Plan

__all__ = ["Plan", "plan", "prepare", "apply_sysctl", "pivot", "finalize", "console"]


def plan(config: dict, rootfs: str, bundle: str) -> Plan:
    """Validate and pre-parse everything rootfs-related; raises ConfigError. No side effects.

    Runs before the fork, so it also imports what console() will need after pivot_root, when
    the config asks for a terminal (termios is not worth loading for every container)."""
    if (config.get("process") or {}).get("terminal"):
        from ocirt.rootfs import console as _console  # noqa: F401
    return _plan.build(config, rootfs, bundle)


def prepare(plan: Plan) -> None:
    """In the new mount namespace, before pivot: isolate from the host, bind the rootfs, do
    the config mounts in order, create /dev.

    A config without a mount namespace shares the runtime's (runtime-spec: an unlisted type
    is inherited), as with runc and crun: its mounts land in that namespace under the rootfs,
    the host's propagation is left alone, and ocirt.rootfs.hostns takes them down again."""
    shared = plan.shares_runtime_mntns
    if not shared and plan.host_mntns and _plan._mntns() == plan.host_mntns:
        raise SetupError("rootfs setup must run in a new mount namespace, not the runtime's")
    try:
        procfs.root_fd()  # taken before any container mount exists
        if shared:
            plan.rt.root_fd = os.open(plan.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        else:
            propagation.isolate_host(plan)
            plan.rt.root_fd = propagation.bind_root(plan)
    except OSError as e:
        raise SetupError(f"preparing rootfs {plan.rootfs}: {e.strerror or e}") from None
    mounts.mount_all(plan)
    if plan.setup_dev:
        devices.create_all(plan)


def apply_sysctl(plan: Plan) -> None:
    """Any time after the namespaces exist; writes go through the private procfs."""
    sysctl.apply(plan.sysctl)


def pivot(plan: Plan, no_pivot: bool = False) -> None:
    try:
        if plan.shares_runtime_mntns:
            # pivot_root or a move would change the root of the runtime's whole namespace.
            _pivot.chroot(plan.rt.root_fd)
        elif no_pivot:
            _pivot.move_root(plan.rt.root_fd, plan.rootfs)
        else:
            _pivot.pivot_root(plan.rt.root_fd)
    except OSError as e:
        raise SetupError(f"jailing process inside rootfs: {e.strerror or e}") from None
    finally:
        if plan.rt.root_fd >= 0:
            os.close(plan.rt.root_fd)
            plan.rt.root_fd = -1


def finalize(plan: Plan) -> None:
    """After pivot: stdio off the host's /dev/null, readonlyPaths, maskedPaths, a read-only
    /dev or /, final propagation.
    Closes the private procfs: nothing of it may reach the container process."""
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if plan.setup_dev:
            devices.reopen_dev_null(root)
        masked.make_readonly(root, plan.readonly_paths)
        masked.mask(root, plan.masked)
        try:
            if plan.rt.dev_ro:
                dev = pathrs.open_in_root(root, "/dev", os.O_PATH | os.O_DIRECTORY)
                try:
                    attach.set_attrs(dev, sc.MOUNT_ATTR_RDONLY, 0)
                finally:
                    os.close(dev)
            if plan.readonly:
                if plan.shares_runtime_mntns:     # refused by config validation already
                    raise SetupError("root.readonly needs a mount namespace")
                attach.set_attrs(root, sc.MOUNT_ATTR_RDONLY, 0)
            if not plan.shares_runtime_mntns:
                propagation.apply_final(plan, root)
        except OSError as e:
            raise SetupError(f"finalizing rootfs: {e.strerror or e}") from None
    finally:
        os.close(root)
        procfs.close()


def console(plan: Plan, console_size: dict | None = None) -> tuple[int, int, str]:
    """After pivot, for process.terminal: (pty master, peer, its /dev/pts name); the peer is
    also bind-mounted onto /dev/console."""
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        from ocirt.rootfs import console as _console  # imported by plan()
        master, peer, name = _console.open_pty(root, console_size)
        try:
            _console.bind_console(root, peer)
        except BaseException:
            os.close(master)
            os.close(peer)
            raise
        return master, peer, name
    except OSError as e:
        raise SetupError(f"setting up the console: {e.strerror or e}") from None
    finally:
        os.close(root)
