"""Device nodes and the /dev symlinks, created inside the root.

Nodes are made with mknodat on a parent fd resolved in the root, never following the last
component: an image that ships `dev/null -> /proc/sys/kernel/core_pattern` (or a regular file
there) is refused instead of being reused, because later steps (maskedPaths) trust /dev/null
(CVE-2025-31133, crun CVE-2026-47766). Where mknod is not permitted (user namespaces) the host
node is bind-mounted onto an empty file, from an fd.
"""

from __future__ import annotations

import errno
import os
import stat

from ocirt.errors import SecurityError, SetupError
from ocirt.linux import pathrs, procfs
from ocirt.linux import syscalls as sc
from ocirt.rootfs import attach
from ocirt.rootfs.plan import Device, Plan

_KIND = {"c": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
          ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"))


def _matches(st: os.stat_result, d: Device) -> bool:
    if stat.S_IFMT(st.st_mode) != _KIND[d.kind]:
        return False
    return d.kind == "p" or (os.major(st.st_rdev), os.minor(st.st_rdev)) == (d.major, d.minor)


def _describe(st: os.stat_result) -> str:
    m = st.st_mode
    if stat.S_ISLNK(m):
        return "a symlink"
    if stat.S_ISCHR(m) or stat.S_ISBLK(m):
        kind = "char" if stat.S_ISCHR(m) else "block"
        return f"{kind} device {os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    return "a directory" if stat.S_ISDIR(m) else "a regular file" if stat.S_ISREG(m) else \
        "a special file"


def create_all(plan: Plan) -> None:
    old = os.umask(0)  # fileMode is exact, as in runc
    try:
        for d in plan.devices:
            try:
                create(plan, d)
            except OSError as e:
                raise SetupError(f"creating device {d.path}: {e.strerror or e}") from None
    finally:
        os.umask(old)
    setup_ptmx(plan)
    setup_links(plan)


def create(plan: Plan, d: Device) -> None:
    parent, name = pathrs.open_parent_in_root(plan.rt.root_fd, d.path)
    try:
        pathrs.check_in_root(parent, plan.rootfs)
        if not plan.userns:
            try:
                os.mknod(name, d.mode | _KIND[d.kind], os.makedev(d.major, d.minor),
                         dir_fd=parent)
            except FileExistsError:
                _check_existing(parent, name, d)
                return
            except PermissionError:
                _bind(parent, name, d)
                return
            _own(parent, name, d)
        else:
            _bind(parent, name, d)
    finally:
        os.close(parent)


def _check_existing(parent: int, name: str, d: Device) -> None:
    """Spec: an existing file at a device path that is not that device is an error."""
    st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    if not _matches(st, d):
        raise SecurityError(f"{d.path} is invalid: it exists as {_describe(st)}, "
                            f"not the requested device")


def _own(parent: int, name: str, d: Device) -> None:
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        st = os.fstat(fd)
        # The name could have been swapped since mknod; chown only what we made.
        if not _matches(st, d):
            raise SecurityError(f"{d.path} changed while it was being created")
        if (st.st_uid, st.st_gid) != (d.uid, d.gid):
            sc.fchown_fd(fd, d.uid, d.gid)
    finally:
        os.close(fd)


def _bind(parent: int, name: str, d: Device) -> None:
    try:
        target = os.open(name, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o644, dir_fd=parent)
    except FileExistsError:
        target = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        st = os.fstat(target)
        if not (stat.S_ISREG(st.st_mode) or _matches(st, d)):
            os.close(target)
            raise SecurityError(f"{d.path} is invalid: it exists as {_describe(st)}")
    try:
        src = os.open(d.path, os.O_PATH | os.O_CLOEXEC)  # the host's node
        try:
            if not _matches(os.fstat(src), d):
                raise SetupError(f"host {d.path} is not the requested device")
            mnt = attach.clone(src, recursive=False)
        finally:
            os.close(src)
        try:
            attach.attach(mnt, target)
        finally:
            os.close(mnt)
    finally:
        os.close(target)


def setup_ptmx(plan: Plan) -> None:
    """/dev/ptmx -> pts/ptmx, so the devpts instance of the container is the one used."""
    parent, name = pathrs.open_parent_in_root(plan.rt.root_fd, "/dev/ptmx")
    try:
        try:
            os.unlink(name, dir_fd=parent)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise SetupError(f"removing existing /dev/ptmx: {e.strerror}") from None
        os.symlink("pts/ptmx", name, dir_fd=parent)
    finally:
        os.close(parent)


def setup_links(plan: Plan) -> None:
    links = list(_LINKS)
    try:
        os.close(procfs.open_proc_file("kcore", os.O_PATH))
        links.append(("core", "/proc/kcore"))
    except OSError:
        pass
    dev = pathrs.mkdir_all_in_root(plan.rt.root_fd, "/dev")
    try:
        for name, target in links:
            try:
                os.symlink(target, name, dir_fd=dev)
            except FileExistsError:
                pass
            except OSError as e:
                if e.errno != errno.EEXIST:
                    raise SetupError(f"symlink /dev/{name}: {e.strerror}") from None
    finally:
        os.close(dev)


def reopen_dev_null(root_fd: int) -> None:
    """stdio that is the host's /dev/null becomes the container's own /dev/null (runc's
    reOpenDevNull): a checkpoint cannot dump an fd on a mount the container does not have."""
    on_null = []
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3):
            on_null.append((fd, st))
    if not on_null:
        return
    try:
        null = pathrs.open_in_root(root_fd, "/dev/null", os.O_RDWR | os.O_NOFOLLOW)
    except OSError as e:
        raise SecurityError(f"/dev/null is invalid: {e.strerror}") from None
    try:
        own = os.fstat(null)
        if not stat.S_ISCHR(own.st_mode) or own.st_rdev != os.makedev(1, 3):
            raise SecurityError("/dev/null is invalid: it is not the char device 1:3")
        for fd, st in on_null:
            if (st.st_dev, st.st_ino) != (own.st_dev, own.st_ino):
                os.dup2(null, fd)
    finally:
        os.close(null)
