"""The exec path: a new process joins a running container and execs there.

The runtime forks C1, which joins every namespace of the container's init at once through a
pidfd (setns(2) with several CLONE_NEW* flags, Linux 5.8+: the kernel orders the user namespace
first and joins them atomically). A pid namespace only applies to children, so C1 forks C2,
which lands in the container's pid namespace, applies the process's security settings and
execs. The sync socket is close-on-exec: EOF without an error message means the exec succeeded.
"""

from __future__ import annotations

import os

from ocirt.errors import SetupError
from ocirt.init import standard
from ocirt.linux import signals
from ocirt.linux import syscalls as sc
from ocirt.log import logger
from ocirt.spawn.sync import Sync


class ExecLaunch:
    def __init__(self, init_pidfd: int, ns_flags: int, process: dict, security: object,
                 preserve_fds: int = 0, console_fd: int | None = None,
                 extra_env: list[str] | None = None, root_fd: int | None = None,
                 foreground_tty: bool = False) -> None:
        self.init_pidfd = init_pidfd
        self.root_fd = root_fd      # the init's root, when its mount namespace is ours
        self.ns_flags = ns_flags
        self.process = process
        self.security = security
        self.preserve_fds = preserve_fds
        self.console_fd = console_fd
        self.foreground_tty = foreground_tty    # console_fd leads to our own proxy
        self.extra_env = extra_env or []


def intermediate(launch: ExecLaunch, sync: Sync) -> None:
    try:
        sc.prctl(sc.PR_SET_DUMPABLE, 0)
        sync.expect("cgroup")
        logger.debug("=> nsexec container setup: joining the namespaces of the init (%#x)",
                     launch.ns_flags)
        sc.setns(launch.init_pidfd, launch.ns_flags)
        os.close(launch.init_pidfd)
        if launch.root_fd is not None:
            os.fchdir(launch.root_fd)
            os.chroot(".")
            os.close(launch.root_fd)
        pid = os.fork()
        if pid == 0:
            _child(launch, sync)
        sync.send("pid", pid=pid)
    except BaseException as e:  # noqa: BLE001 - a forked child must never unwind
        standard._fail(sync, e)
    os._exit(0)


def _child(launch: ExecLaunch, sync: Sync) -> None:
    try:
        _exec(launch, sync)
    except BaseException as e:  # noqa: BLE001
        standard._fail(sync, e)
    os._exit(255)


def _exec(launch: ExecLaunch, sync: Sync) -> None:
    from ocirt.process import security
    logger.debug("setns_init: child process in init(): in the container")
    process = launch.process
    os.setsid()
    if process.get("terminal"):
        _console(launch)
    prep = launch.security
    security.apply_early(prep)
    cwd = process.get("cwd") or "/"
    entered = standard.chdir_privileged(cwd)
    security.apply_user(prep, process.get("user") or {})
    standard.enter_cwd(cwd, again=not entered)
    env = standard._environment(process, launch.extra_env)
    path = standard.lookup_executable(process["args"][0], env.get("PATH"))
    security.apply_caps(prep)
    security.apply_final_affinity(prep)     # the caller's own: needs no capability
    keep = {0, 1, 2, sync.fileno()}
    keep.update(range(3, 3 + launch.preserve_fds))
    keep.update(logger.child_fds())
    standard.close_fds_except(keep)
    for fd in range(3, 3 + launch.preserve_fds):
        os.set_inheritable(fd, True)
    signals.reset_for_exec()        # before seccomp, as in the init
    listener = security.apply_seccomp(prep)
    if listener is not None:
        # The agent's socket is on the host: the runtime hands the listener over (the profile
        # must allow sendmsg, as with runc).
        sync.send("listener", fds=[listener])
        os.close(listener)
    logger.debug("setns_init: about to exec %s", path)
    os.execve(path, process["args"], env)


def _console(launch: ExecLaunch) -> None:
    if launch.console_fd is None:
        raise SetupError("cannot allocate tty if ocirt will detach without setting console socket")
    from ocirt import console       # imported by the runtime before the fork (exec.py)
    fd, launch.console_fd = launch.console_fd, None
    console.attach(fd, launch.process.get("consoleSize"), launch.foreground_tty)
