"""exec: run a new process inside a running (or created) container.

The process joins every namespace of the container's init and its cgroup, and gets the same
process security treatment as the init (capabilities, no_new_privs, seccomp, rlimits, user).
"""

from __future__ import annotations

import os

from ocirt import testpoint
from ocirt.errors import ContainerNotRunning, ExecFailed, OcirtError, StateError
from ocirt.init import namespaces as nsmod
from ocirt.init import setns
from ocirt.lifecycle.container import Container
from ocirt.linux import signals
from ocirt.linux import syscalls as sc
from ocirt.spawn import preserve
from ocirt.spawn.sync import Sync, SyncError
from ocirt.state import machine
from ocirt.state.store import Store


class ExecOptions:
    def __init__(self, process: dict, detach: bool = False, pid_file: str = "",
                 console_socket: str = "", preserve_fds: int = 0,
                 cgroup: list[str] | None = None,
                 ignore_paused: bool = False, pidfd_socket: str = "") -> None:
        self.process = process
        self.detach = detach
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.preserve_fds = preserve_fds
        self.cgroup = cgroup or []       # --cgroup arguments: sub-cgroups to run in
        self.ignore_paused = ignore_paused
        self.pidfd_socket = pidfd_socket


def execute(store: Store, cid: str, opts: ExecOptions) -> int:
    c = Container.load(store, cid)
    status = c.status()
    if status == machine.STOPPED:
        raise StateError("cannot exec in a stopped container")
    if status == machine.PAUSED and not opts.ignore_paused:
        raise StateError("cannot exec in a paused container (use --ignore-paused to override)")
    process = opts.process
    preserve.check(opts.preserve_fds)
    from ocirt.process import security
    prep = security.prepare(process, c.config.get("linux") or {}, source="process",
                            seccomp_cache=store.seccomp_cache)
    from ocirt.config.semantic import process_warnings
    from ocirt.log import logger
    for w in process_warnings(process, ("process",)) + prep.warnings:
        logger.warning(w)
    del prep.warnings[:]
    cg_paths = _cgroup_paths(c, opts.cgroup)
    terminal = bool(process.get("terminal"))
    if terminal and opts.detach and not opts.console_socket:
        raise StateError("cannot allocate tty if ocirt will detach without setting console socket")
    if opts.console_socket and not terminal:
        raise StateError("cannot use console socket if ocirt will not detach or allocate tty")

    try:
        pidfd = sc.pidfd_open(c.pid)
    except OSError:
        raise ContainerNotRunning() from None
    console_sock = ours = forwarder = None
    root_fd = None
    try:
        if machine.start_time(c.pid) != c.state.get("pid_start"):
            raise ContainerNotRunning()
        if terminal:
            import socket

            # The exec'd child uses it inside the container, where nothing can be imported.
            from ocirt import console  # noqa: F401
            if opts.console_socket:
                console_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                console_sock.connect(opts.console_socket)
            else:
                ours, console_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        flags = _namespace_flags(c)
        if not flags & nsmod.FLAGS["mount"]:
            # Same mount namespace as ours (the config has none): enter the init's root.
            root_fd = os.open(f"/proc/{c.pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        launch = setns.ExecLaunch(pidfd, flags, process, prep, opts.preserve_fds,
                                  console_sock.fileno() if console_sock is not None else None,
                                  root_fd=root_fd, foreground_tty=ours is not None)
        if not opts.detach:
            # Signals sent to `exec` from now on are for the process: held until it exists.
            from ocirt.lifecycle import foreground
            forwarder = foreground.Forwarder()
        pid = _spawn(c, launch, opts, cg_paths)
    except BaseException:
        if forwarder is not None:
            forwarder.restore()
        raise
    finally:
        os.close(pidfd)
        if root_fd is not None:
            os.close(root_fd)
        if console_sock is not None:
            console_sock.close()
    from ocirt.log import logger
    logger.debug("exec: process %d started in container %s", pid, cid)
    if opts.pid_file:
        from ocirt.lifecycle.create import write_pid_file
        try:
            write_pid_file(opts.pid_file, pid)
        except OSError:
            # As runc: a process whose pid cannot be recorded is not left running.
            if forwarder is not None:
                forwarder.restore()
            _kill(pid)
            raise
    if opts.pidfd_socket:
        from ocirt.spawn import pidfd_socket
        pidfd_socket.send(opts.pidfd_socket, pid, "exec")
    if opts.detach:
        return 0
    return _wait_foreground(pid, ours, forwarder)


def _namespace_flags(c: Container) -> int:
    """Every namespace the container has that differs from ours (created or joined by path)."""
    flags = 0
    for kind, name in nsmod.PROC_NAME.items():
        try:
            theirs = os.stat(f"/proc/{c.pid}/ns/{name}")
            mine = os.stat(f"/proc/self/ns/{name}")
        except OSError:
            continue
        if (theirs.st_dev, theirs.st_ino) != (mine.st_dev, mine.st_ino):
            flags |= nsmod.FLAGS[kind]
    return flags


def _cgroup_paths(c: Container, args: list[str]) -> dict[str, str] | None:
    """The cgroups the process joins: the container's, or the sub-cgroups --cgroup names
    (checked to stay inside the container's cgroups before anything starts)."""
    if not args:
        return None
    cg = c.cgroup()
    if cg is None:
        raise StateError("--cgroup: the container runs without cgroups")
    from ocirt.cgroups import paths
    return paths.sub_paths(cg.paths, paths.parse_sub_cgroups(args))


def _spawn(c: Container, launch: setns.ExecLaunch, opts: ExecOptions,
           cg_paths: dict[str, str] | None) -> int:
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    parent, child = Sync.pair()
    pid1 = os.fork()
    if pid1 == 0:
        parent.close()
        setns.intermediate(launch, child)
        os._exit(1)
    child.close()
    testpoint.reached("exec:forked")
    pid = 0
    try:
        _initial_affinity(pid1, launch.security)
        cg = c.cgroup()
        if cg is not None:
            # Without --cgroup the init's cgroup is the fallback (runc's, for cgroup v2).
            cg.add(pid1, cg_paths, init_pid=0 if cg_paths else c.pid)
        testpoint.reached("exec:joined")     # in the cgroup, not yet told to go on
        _affinity_after_cgroup_move(pid1, launch.security, cg, cg_paths)
        parent.send("cgroup")
        msg, _ = parent.expect("pid")
        pid = msg["pid"]
        os.waitpid(pid1, 0)
        # Close-on-exec: EOF means the exec happened; a message means it failed.
        while True:
            try:
                msg, fds = parent.recv()
            except SyncError:
                return pid
            if msg.get("type") != "listener":
                break
            _send_listener(c, pid, fds)
        raise ExecFailed(f"exec failed: unable to start container process: "
                         f"{msg.get('message', 'unknown error')}")
    except SyncError as e:
        _kill(pid1, pid)
        raise ExecFailed(f"exec failed: {e}") from None
    except OcirtError:
        _kill(pid1, pid)
        raise
    finally:
        parent.close()


def _initial_affinity(pid: int, prep) -> None:
    """execCPUAffinity.initial: the process that enters the container runs on these CPUs
    until it moves into the container's cgroup (which may reset them to the cgroup's)."""
    if prep.cpus_initial is not None:
        from ocirt.config.semantic import format_id_list
        from ocirt.log import logger
        from ocirt.process import affinity
        affinity.apply(pid, prep.cpus_initial, "initial")
        logger.debug("exec: initial CPU affinity of %d: %s", pid,
                     format_id_list(os.sched_getaffinity(pid)))


def _affinity_after_cgroup_move(pid: int, prep, cg, cg_paths: dict[str, str] | None) -> None:
    """Without execCPUAffinity.final, the process leaves `initial` behind: it gets its
    cgroup's CPUs (runc does the same; the kernel may keep a narrower affinity at the move)."""
    if prep.cpus_initial is None or prep.cpus_final is not None:
        return
    from ocirt.process import affinity
    cpuset = (cg_paths or {}).get("cpuset") if cg is not None else None
    route = cg.route("cpuset") if cg is not None else None
    version, d = (1, cpuset) if cpuset else (route or (1, None))
    affinity.apply(pid, affinity.cgroup_cpus(d, version), "initial")


def _send_listener(c: Container, pid: int, fds: list[int]) -> None:
    """The exec'd process's seccomp notify fd, to the agent at listenerPath."""
    from ocirt.process import security
    seccomp = (c.config.get("linux") or {}).get("seccomp") or {}
    try:
        if fds and seccomp.get("listenerPath"):
            security.send_listener(seccomp["listenerPath"], seccomp.get("listenerMetadata", ""),
                                   fds[0], c.hook_state(machine.RUNNING) | {"pid": pid})
    finally:
        for fd in fds:
            os.close(fd)


def _kill(*pids: int) -> None:
    for p in pids:
        if p:
            try:
                os.kill(p, signals.SIGKILL)
                os.waitpid(p, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def _wait_foreground(pid: int, ours, forwarder) -> int:
    from ocirt.lifecycle import foreground
    master = None
    if ours is not None:
        from ocirt import console
        master = console.recv_master(ours)
        ours.close()
    return foreground.wait(pid, master, forwarder)
