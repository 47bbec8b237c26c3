"""AppArmor / SELinux: detection and exec-label application through verified procfs handles.

The label is written to the *exec* attribute of the init thread, so it takes effect at the
container process's execve (runc: apparmor.ApplyProfile -> "exec <profile>" into
attr/apparmor/exec, falling back to attr/exec on old kernels; SELinux: attr/exec). All writes
go through ocirt.security._procfs.ProcRoot (private procfs instance, O_NOFOLLOW, fstatfs check),
never through a path string in the container's /proc (CVE-2019-16884, CVE-2025-52881).
A label asked for on a host without that LSM is an error, never silently ignored.
"""

from __future__ import annotations

import os

from ocirt.errors import ConfigError, SetupError

SELINUX_MAGIC = 0xF97CFF8C


def apparmor_enabled() -> bool:
    # runc: /sys/kernel/security/apparmor exists and the module parameter says Y.
    if not os.path.isdir("/sys/kernel/security/apparmor"):
        return False
    try:
        with open("/sys/module/apparmor/parameters/enabled", "rb") as f:
            return f.read(1) == b"Y"
    except OSError:
        return False


def selinux_enabled() -> bool:
    # go-selinux: a mounted selinuxfs (normally /sys/fs/selinux) and a non-"kernel" context.
    for mnt in ("/sys/fs/selinux", "/selinux"):
        try:
            fd = os.open(mnt, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            from ocirt.security._procfs import fs_magic
            if fs_magic(fd) == SELINUX_MAGIC:
                break
        finally:
            os.close(fd)
    else:
        return False
    try:
        with open("/proc/thread-self/attr/current", "rb") as f:
            return f.read().rstrip(b"\0\n") != b"kernel"
    except OSError:
        return False


def parse(apparmor: object, selinux: object, *, source: str = "config.json"):
    """-> (apparmor_profile or "", selinux_label or ""). Host support is checked here too, so an
    impossible request fails at create before any side effect."""
    if apparmor is not None and not isinstance(apparmor, str):
        raise ConfigError("process.apparmorProfile", "must be a string", source)
    if selinux is not None and not isinstance(selinux, str):
        raise ConfigError("process.selinuxLabel", "must be a string", source)
    apparmor = apparmor or ""
    selinux = selinux or ""
    if apparmor and not apparmor_enabled():
        raise SetupError(f"apparmor profile {apparmor!r} requested but AppArmor is not enabled "
                         "on this host")
    if selinux and not selinux_enabled():
        raise SetupError(f"selinux label {selinux!r} requested but SELinux is not enabled "
                         "on this host")
    return apparmor, selinux


def apply_exec_labels(apparmor: str, selinux: str, proc) -> None:
    """Set the labels the next execve will switch to. `proc` is an open ProcRoot."""
    if apparmor:
        data = b"exec " + apparmor.encode()
        try:
            try:
                proc.write("thread-self/attr/apparmor/exec", data)
            except FileNotFoundError:
                proc.write("thread-self/attr/exec", data)   # kernels before 5.8
        except OSError as e:
            raise SetupError(f"apparmor failed to apply profile {apparmor!r}: {e.strerror}") from None
    if selinux:
        try:
            proc.write("thread-self/attr/exec", selinux.encode())
        except OSError as e:
            raise SetupError(f"setting selinux exec label {selinux!r}: {e.strerror}") from None
