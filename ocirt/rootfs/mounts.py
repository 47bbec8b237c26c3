"""config.json `mounts`, applied in order inside the root."""

from __future__ import annotations

import errno
import os
import stat

from ocirt.errors import SecurityError, SetupError
from ocirt.linux import pathrs
from ocirt.linux import syscalls as sc
from ocirt.log import logger
from ocirt.rootfs import attach, cgroupfs, copyup, mountpoint
from ocirt.rootfs.plan import Mount, Plan, proc_rule


def mount_all(plan: Plan) -> None:
    for m in plan.mounts:
        logger.debug("init: %s: mounting %s on %s (%s)", m.where, m.source or m.fstype,
                     m.destination, m.fstype or "bind")
        if m.kind == "cgroup":
            if plan.rt.before_cgroup is not None:
                plan.rt.before_cgroup()
            cgroupfs.mount(plan, m)
        elif plan.rt.dev_ro and m.destination == "/dev" and m.kind == "fresh":
            # Device nodes still have to be created in it: finalize() makes it read-only.
            mount_one(plan, m.with_opts(m.opts.without(sc.MS_RDONLY)))
        else:
            mount_one(plan, m)


def _error(m: Mount, e: OSError) -> SetupError:
    src = m.source or m.fstype
    return SetupError(f"{m.where}: mounting {src!r} to rootfs at {m.destination!r} "
                      f"({m.fstype or 'bind'}): {e.strerror or e}")


def mount_one(plan: Plan, m: Mount) -> None:
    root_fd = plan.rt.root_fd
    src_fd = -1
    target = -1
    mnt = -1
    try:
        try:
            if m.kind == "bind" and m.source:
                # The source is the config author's host path, resolved on the host on
                # purpose; we hold it by fd from here on (opened by the host's root already
                # when we are in a user namespace).
                opened = plan.rt.source_fds.pop(m.index, None)
                if opened is None:
                    src_fd = os.open(m.source, os.O_PATH | os.O_CLOEXEC)
                elif opened < 0:
                    if m.index in plan.rt.source_errors:
                        raise SetupError(plan.rt.source_errors[m.index])
                    raise OSError(-opened, os.strerror(-opened))
                else:
                    src_fd = opened
                want_dir = stat.S_ISDIR(os.fstat(src_fd).st_mode)
            else:
                want_dir = True
            existed = True
            if m.destination in ("/proc", "/sys") or m.fstype in ("proc", "sysfs"):
                target, existed = mountpoint.ordinary_directory(root_fd, m.destination,
                                                                m.fstype or "bind")
            elif want_dir:
                target, existed = mountpoint.directory(root_fd, m.destination)
            else:
                target = mountpoint.file(root_fd, m.destination)
            inner = pathrs.check_in_root(target, plan.rootfs)
            _check_proc(inner, m, src_fd)

            if m.kind == "bind" and m.index in plan.rt.source_mounted:
                # The helper made the idmapped mount already (ocirt.rootfs.idmapped).
                mnt, src_fd = src_fd, -1
            elif m.kind == "bind" and m.opts.idmap:
                from ocirt.rootfs import idmapped
                mnt = idmapped.make(src_fd, m, plan.userns)
            elif m.kind == "bind":
                mnt = attach.bind_clone(src_fd, m.opts, m.opts.recursive, plan.userns)
            else:
                try:
                    mnt = attach.new_fs(m.fstype, m.source, m.opts)
                except OSError as e:
                    if e.errno == errno.EPERM and m.fstype == "sysfs" and plan.userns:
                        # A user namespace that does not own the network namespace cannot
                        # mount sysfs: bind the host's, as runc does.
                        mnt = _host_sysfs(plan, m)
                    elif e.errno != errno.ENOSYS:
                        raise
                    else:
                        attach.legacy_mount(m.fstype, m.source, m.opts, target)
                        return
                if m.fstype == "tmpfs":
                    _tmpfs_content(mnt, target, m, existed)
            attach.set_attrs(mnt, m.opts.rec_set, m.opts.rec_clr, recursive=True)
            attach.attach(mnt, target)
            attach.set_propagation(mnt, m.opts.propagation)
        except OSError as e:
            raise _error(m, e) from None
        except SecurityError as e:
            raise SecurityError(f"{m.where}: {e.message}") from None
    finally:
        for fd in (src_fd, target, mnt):
            if fd >= 0:
                os.close(fd)


def _host_sysfs(plan: Plan, m: Mount) -> int:
    src = os.open("/sys", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return attach.bind_clone(src, m.opts, True, plan.userns)
    finally:
        os.close(src)


def _check_proc(inner: str, m: Mount, src_fd: int) -> None:
    """The configured path passed plan(); this checks where it really went (a symlink such as
    /foo -> /proc/self is resolved by now)."""
    err = proc_rule(inner, m)
    if err:
        raise SecurityError(err)
    if inner == "/proc" and m.kind == "bind":
        if sc.fstatfs_type(src_fd) != sc.PROC_SUPER_MAGIC:
            raise SecurityError(f'"/proc" cannot be mounted because its source '
                                f"{m.source!r} is not of type proc")


def _tmpfs_content(mnt: int, target: int, m: Mount, existed: bool) -> None:
    """tmpcopyup, and runc's habit of giving a tmpfs the mode of the directory it covers
    (unless the options chose a mode)."""
    if not existed:
        return
    chmod = not any(p.startswith("mode=") for p in m.opts.data)
    if not (chmod or m.opts.tmpcopyup):
        return
    src = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=target)
    dst = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=mnt)
    try:
        if chmod:
            os.fchmod(dst, stat.S_IMODE(os.fstat(src).st_mode))
        if m.opts.tmpcopyup:
            copyup.copy_tree(src, dst)
    finally:
        os.close(src)
        os.close(dst)
