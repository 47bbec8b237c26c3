"""The container's init, for `create`: every step in the order the kernel needs it.

Process tree (ARCHITECTURE.md): the runtime P forks the intermediate C1, which enters or creates
the namespaces and forks the init C2 (PID 1 of a new pid namespace). C1 exits at once; C2 is
reparented to P (a child subreaper), and after P exits to P's own subreaper (conmon, the
containerd shim) or PID 1.

Both children run code that P imported before forking: after pivot_root nothing can be imported.
Every error path ends in os._exit(), never in a return into the runtime's own cleanup code.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from ocirt import hooks, net
from ocirt.errors import OcirtError, SetupError
from ocirt.init import namespaces as nsmod
from ocirt.linux import signals
from ocirt.linux.signals import SIGKILL
from ocirt.linux import syscalls as sc
from ocirt.log import logger
from ocirt.spawn.sync import Sync


class Launch:
    """Everything the init needs, prepared by the runtime before fork."""

    def __init__(self, cid: str, bundle: str, config: dict, rootfs_plan: object,
                 security: object, fifo_fd: int, new_ns: set[str] | None = None,
                 join_fds: list[tuple[str, int]] | None = None, preserve_fds: int = 0,
                 console_fd: int | None = None, no_pivot: bool = False,
                 extra_env: list[str] | None = None, new_keyring: bool = True,
                 runtime_pid: int = 0, waiter_fd: int | None = None) -> None:
        self.cid = cid
        self.bundle = bundle
        self.config = config
        self.rootfs_plan = rootfs_plan    # ocirt.rootfs.setup.Plan
        self.security = security          # ocirt.process.security.Prepared, None without process
        self.fifo_fd = fifo_fd            # O_PATH handle on exec.fifo in the state dir
        self.new_ns = new_ns or set()
        self.join_fds = join_fds or []
        self.preserve_fds = preserve_fds
        self.console_fd = console_fd      # connected --console-socket
        self.no_pivot = no_pivot
        self.extra_env = extra_env or []
        self.new_keyring = new_keyring
        self.runtime_pid = runtime_pid    # the create: we die with it until it is complete
        self.waiter_fd = waiter_fd        # ocirt-wait's memfd (ocirt.init.waiter), or None


def _fail(sync: Sync, exc: BaseException) -> None:
    if isinstance(exc, OcirtError):
        msg = exc.message
    elif isinstance(exc, OSError):
        msg = exc.strerror or str(exc)
        if exc.filename:
            msg = f"{msg}: {exc.filename}"
    else:
        msg = f"{type(exc).__name__}: {exc}"
    try:
        sync.send("error", message=msg)
    except OSError:
        pass
    os._exit(1)


def _die_with_parent() -> None:
    """Until the create is complete, a runtime that dies (SIGKILL, a manager's timeout) takes
    its children with it: nothing may be left waiting for a create that will never finish.
    The kernel clears the setting on credential changes, so it is armed again after them."""
    sc.prctl(sc.PR_SET_PDEATHSIG, SIGKILL)


def _parent_gone(sync: Sync) -> bool:
    """Whether the runtime died before our parent-death signal was armed: its end of the
    socket is closed then (getppid cannot tell from inside a new pid namespace)."""
    try:
        return sync.peek_eof()
    except OSError:
        return True


def close_fds_except(keep: set[int]) -> None:
    """Close every fd not in `keep`: nothing of the runtime may leak into the container
    (CVE-2024-21626)."""
    start = 0
    for fd in sorted(keep):
        if fd > start:
            sc.close_range(start, fd - 1)
        start = fd + 1
    sc.close_range(start)


# --- C1: the intermediate process -------------------------------------------------------

def intermediate(launch: Launch, sync: Sync) -> None:
    try:
        _die_with_parent()
        if os.getppid() != launch.runtime_pid:
            os._exit(1)             # the runtime died before we armed it
        # Not dumpable before touching any container namespace (CVE-2016-9962): a container
        # process must not ptrace us or read our /proc entries.
        sc.prctl(sc.PR_SET_DUMPABLE, 0)
        opener = _mount_source_opener(launch)
        logger.debug("=> nsexec container setup: creating namespaces %s",
                     ",".join(sorted(launch.new_ns)))
        nsmod.join_all(launch.join_fds)
        if "user" in launch.new_ns:
            sc.unshare(sc.CLONE_NEWUSER)
            # Dumpable only while the runtime (or newuidmap) writes our maps: our /proc files
            # then belong to the caller, not the host's root (ocirt.init.idmaps). No container
            # process exists yet.
            sc.prctl(sc.PR_SET_DUMPABLE, 1)
            sync.send("userns")
            sync.expect("userns-mapped")
            sc.prctl(sc.PR_SET_DUMPABLE, 0)
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
            _die_with_parent()
        # The cgroup namespace is created by the init once the runtime has moved it into the
        # container's cgroup, so that its root is that cgroup (see _join_cgroup).
        flags = nsmod.unshare_flags(launch.new_ns, exclude=("user", "cgroup"))
        if flags:
            sc.unshare(flags)
        if opener is not None:
            opener.collect(launch.rootfs_plan.rt)
        if "time" in launch.new_ns:
            # A non-dumpable process's /proc files belong to the host's root, which a new user
            # namespace does not map: be dumpable just for this write. No container process
            # exists yet that could take advantage of it.
            sc.prctl(sc.PR_SET_DUMPABLE, 1)
            _write_time_offsets(launch.config.get("linux", {}).get("timeOffsets") or {})
            sc.prctl(sc.PR_SET_DUMPABLE, 0)
        pid = os.fork()
        if pid == 0:
            init(launch, sync)
        logger.debug("<= nsexec container setup: init process %d", pid)
        sync.send("pid", pid=pid)
    except BaseException as e:  # noqa: BLE001 - a forked child must never unwind
        _fail(sync, e)
    os._exit(0)


def _mount_source_opener(launch: Launch):
    """With a user namespace and a new mount namespace, bind sources are opened by a helper
    that stays the host's root (ocirt.rootfs.sources); started before we leave its userns."""
    userns = "user" in launch.new_ns or any(k == "user" for k, _fd in launch.join_fds)
    if not userns or "mount" not in launch.new_ns:
        return None
    from ocirt.rootfs import sources
    binds = sources.bind_sources(launch.rootfs_plan)
    if not binds:
        return None
    opener = sources.Opener(binds)
    opener.start()
    return opener


def _write_time_offsets(offsets: dict) -> None:
    lines = []
    for clock in ("monotonic", "boottime"):
        off = offsets.get(clock)
        if off:
            lines.append(f"{clock} {off.get('secs', 0)} {off.get('nanosecs', 0)}\n")
    if lines:
        fd = os.open("/proc/self/timens_offsets", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, "".join(lines).encode())
        except OSError as e:
            # ERANGE: each offset clock must stay within 0..KTIME_SEC_MAX/2 seconds from now.
            raise SetupError(f"linux.timeOffsets: {e.strerror}") from None
        finally:
            os.close(fd)


# --- C2: the init -----------------------------------------------------------------------

def init(launch: Launch, sync: Sync) -> None:
    logger.debug("init: child process in init(): setting up the container")
    try:
        _setup(launch, sync)
    except BaseException as e:  # noqa: BLE001
        _fail(sync, e)
    os._exit(1)


def _setup(launch: Launch, sync: Sync) -> None:
    from ocirt.rootfs import setup as rootfs
    config = launch.config
    process = config.get("process")
    new = launch.new_ns

    # The runtime moves us into the container's cgroup while we work: that write waits for an
    # RCU grace period (~15 ms), so it overlaps the mounts instead of delaying them. We wait
    # for it only where it matters: before the cgroup mount, the hooks, or "created".
    joined = []

    def join_cgroup() -> None:
        if not joined:
            sync.expect("cgroup")
            # The intermediate is gone now: our parent is the runtime.
            _die_with_parent()
            if _parent_gone(sync):
                os._exit(1)
            if "cgroup" in new:
                sc.unshare(sc.CLONE_NEWCGROUP)
            joined.append(True)

    launch.rootfs_plan.rt.before_cgroup = join_cgroup

    os.setsid()
    if launch.new_keyring:
        _join_session_keyring(launch.cid)
    if "network" in new:
        net.link_up("lo")
    if "uts" in new:
        if config.get("hostname"):
            sc.sethostname(config["hostname"])
        if config.get("domainname"):
            sc.setdomainname(config["domainname"])

    rootfs.prepare(launch.rootfs_plan)
    join_cgroup()
    if process:
        _make_cwd(launch)

    # prestart and createRuntime run in the runtime's namespaces, so P runs them while we wait.
    if hooks.has(config, "prestart", "createRuntime"):
        sync.send("hooks")
        sync.expect("hooks-done")
    if hooks.has(config, "createContainer"):
        # In our mount namespace, before pivot_root, from the rootfs (as runc: a hook's
        # relative paths land in the container's root, never in the host's).
        hooks.run("createContainer", config["hooks"]["createContainer"],
                  hooks.oci_state(launch.cid, "created", os.getpid(), launch.bundle,
                                  config.get("annotations")),
                  cwd=launch.rootfs_plan.rootfs)

    rootfs.apply_sysctl(launch.rootfs_plan)
    logger.debug("init: jailing into %s (%s)", launch.rootfs_plan.rootfs,
                 "no pivot" if launch.no_pivot else "pivot_root")
    rootfs.pivot(launch.rootfs_plan, launch.no_pivot)
    if process and process.get("terminal"):
        # As runc: after pivot_root (the container's devpts) and before finalize may make
        # /dev read-only, since the peer is bound onto /dev/console.
        _setup_console(launch, rootfs)
    rootfs.finalize(launch.rootfs_plan)

    if not process:
        # A container without a process can be created but never started (runtime.md).
        _announce(launch, sync, None)
        _wait_for_start(launch)
        os._exit(0)

    from ocirt.process import security
    prep = launch.security
    security.apply_early(prep)
    cwd = process["cwd"]
    entered = chdir_privileged(cwd)
    security.apply_user(prep, process.get("user") or {})
    _die_with_parent()
    enter_cwd(cwd, again=not entered)
    env = _environment(process, launch.extra_env)
    path = lookup_executable(process["args"][0], env.get("PATH"))
    security.apply_caps(prep)
    # Before seccomp, whose profile need not allow rt_sigaction, and before the hooks.
    signals.reset_for_exec()
    _end_on_termination_signals()
    listener = None
    if prep.seccomp is not None and prep.seccomp.notify:
        # The agent's socket is on the host: the filter is loaded now, while we can still hand
        # its listener fd to the runtime (runc does the same).
        listener = security.apply_seccomp(prep)

    _announce(launch, sync, prep, listener)
    loaded = listener is not None
    if launch.waiter_fd is not None:
        # Returns only if the kernel would not run ocirt-wait: then we wait ourselves.
        loaded = _hand_over_the_wait(launch, prep, path, process["args"], env)
    _wait_for_start(launch)

    if not loaded:
        # startContainer hooks run under the container's filter, as in runc.
        security.apply_seccomp(prep)
    if hooks.has(config, "startContainer"):
        try:
            hooks.run("startContainer", config["hooks"]["startContainer"],
                      hooks.oci_state(launch.cid, "created", os.getpid(), launch.bundle,
                                      config.get("annotations")))
        except OcirtError as e:
            _release_answer(b"E" + e.message.encode())
            os._exit(1)
    _release_answer(b"0")
    logger.debug("init: about to exec %s", path)
    try:
        os.execve(path, process["args"], env)
    except OSError as e:
        sys.stderr.write(f"exec {process['args'][0]!r}: {e.strerror}\n")
        os._exit(255)


def _hand_over_the_wait(launch: Launch, prep: object, path: str, args: list[str],
                        env: dict[str, str]) -> bool:
    """Exec ocirt-wait (ocirt.init.waiter), which waits for `start` in a few pages and then
    execs the container's process. Returns only if that exec failed, with whether the seccomp
    filter is loaded by then."""
    from ocirt.init import waiter
    from ocirt.process import security
    # The last line we can log: ocirt-wait has no log.
    logger.debug("init: about to exec %s once started, waiting in ocirt-wait", path)
    if waiter.loads_filter_first(prep):
        return waiter.hand_over(launch.waiter_fd, launch.fifo_fd, None, path, args, env,
                                load_filter=lambda: security.apply_seccomp(prep))
    waiter.hand_over(launch.waiter_fd, launch.fifo_fd, prep.seccomp, path, args, env)
    return False


def _end_on_termination_signals() -> None:
    """Until the exec, SIGHUP, SIGINT, SIGQUIT and SIGTERM end us, as they end runc's (Go) init:
    `kill` of a created container stops it. As PID 1 of a pid namespace we would not even
    receive them at the default disposition. execve resets these handlers."""
    for sig in (signals.SIGHUP, signals.SIGINT, signals.SIGQUIT, signals.SIGTERM):
        signals.install(sig, _exit_on_signal)


def _exit_on_signal(signum: int, _frame: object) -> None:
    os._exit(128 + signum)


_fifo_write_fd: int | None = None


def _announce(launch: Launch, sync: Sync, prep: object, listener: int | None = None) -> None:
    """Report "created" and wait for the runtime's "go"."""
    keep = {0, 1, 2, launch.fifo_fd, sync.fileno()}
    if launch.waiter_fd is not None:
        keep.add(launch.waiter_fd)
    keep.update(range(3, 3 + launch.preserve_fds))
    keep.update(logger.child_fds())
    if listener is not None:
        keep.add(listener)
    close_fds_except(keep)
    for fd in range(3, 3 + launch.preserve_fds):
        os.set_inheritable(fd, True)
    warnings = list(getattr(prep, "warnings", None) or [])
    logger.debug("init: closing the pipe to signal completion")
    sync.send("created", fds=[listener] if listener is not None else [], warnings=warnings)
    if listener is not None:
        os.close(listener)
    # The runtime saves the state and says "go": from then on the container outlives it (and
    # waits for `start` however long that takes); EOF instead means it died before.
    sync.expect("go")
    sc.prctl(sc.PR_SET_PDEATHSIG, 0)
    sync.close()


def _wait_for_start(launch: Launch) -> None:
    """Block until `start` opens the exec FIFO."""
    global _fifo_write_fd
    # The O_PATH handle was opened on the host before pivot_root; reopening it through
    # /proc/self/fd gives a real FIFO end without any path into the host filesystem.
    fd = os.open(f"/proc/self/fd/{launch.fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    os.close(launch.fifo_fd)
    _fifo_write_fd = fd


def _release_answer(answer: bytes) -> None:
    global _fifo_write_fd
    if _fifo_write_fd is not None:
        try:
            os.write(_fifo_write_fd, answer)
        except OSError:
            pass
        os.close(_fifo_write_fd)
        _fifo_write_fd = None


def _join_session_keyring(cid: str) -> None:
    """Our own session keyring, so the container does not share the caller's (runc does the
    same, unless --no-new-keyring). Kernels without keyrings just skip it."""
    try:
        serial = sc.join_session_keyring(f"_ses.{cid}")
        # Let the container's user search it and anyone view it, as runc sets it up.
        sc.set_keyring_perm(serial, sc.keyring_perm(serial) | 0x080101)
    except OSError as e:
        if e.errno != errno.ENOSYS:
            raise SetupError(f"unable to join session keyring: {e.strerror}") from None


def _make_cwd(launch: Launch) -> None:
    from ocirt.linux import pathrs
    cwd = launch.config["process"].get("cwd") or "/"
    root_fd = os.open(launch.rootfs_plan.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.close(pathrs.mkdir_all_in_root(root_fd, cwd, 0o755))
    finally:
        os.close(root_fd)


def chdir_privileged(cwd: str) -> bool:
    """Enter process.cwd while we still have the runtime's privileges, as runc does: a 0700
    cwd owned by root works for any user. False when that was refused: the process's own user
    may still enter it (a volume owned by that user), so enter_cwd tries again after the user
    switch."""
    try:
        os.chdir(cwd)
    except PermissionError:
        return False
    except OSError as e:
        raise _cwd_error(cwd, e) from None
    return True


def enter_cwd(cwd: str, again: bool) -> None:
    if again:
        try:
            os.chdir(cwd)
        except OSError as e:
            raise _cwd_error(cwd, e) from None
    # A cwd reached through a leaked fd or a magic link is outside our root: getcwd fails or
    # is not absolute then (CVE-2024-21626).
    try:
        real = os.getcwd()
    except OSError:
        real = ""
    if not real.startswith("/"):
        raise SetupError("current working directory is outside of container mount namespace "
                         "root -- possible container breakout detected")


def _cwd_error(cwd: str, e: OSError) -> SetupError:
    return SetupError(f'chdir to cwd ("{cwd}") set in config.json failed: '
                      f"{(e.strerror or str(e)).lower()}")


def _environment(process: dict, extra: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in list(process.get("env") or []) + extra:
        k, sep, v = item.partition("=")
        if sep:
            env[k] = v
    if "HOME" not in env:
        env["HOME"] = _home_of(os.getuid())
    return env


def _home_of(uid: int) -> str:
    try:
        with open("/etc/passwd", "rb") as f:
            for line in f:
                parts = line.decode(errors="replace").rstrip("\n").split(":")
                if len(parts) >= 6 and parts[2] == str(uid):
                    return parts[5] or "/"
    except OSError:
        pass
    return "/"


def lookup_executable(name: str, path_env: str | None) -> str:
    """execvp's search, done by hand: os.execvpe would import a module after pivot_root."""
    if "/" in name:
        try:
            st = os.stat(name)
        except OSError as e:
            raise SetupError(f'exec: "{name}": stat {name}: {e.strerror.lower()}') from None
        if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
            raise SetupError(f'exec: "{name}": permission denied')
        return name
    for d in (path_env or "").split(":"):
        cand = os.path.join(d or ".", name)
        try:
            st = os.stat(cand)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return cand
    raise SetupError(f'exec: "{name}": executable file not found in $PATH')


def _setup_console(launch: Launch, rootfs) -> None:
    """The pty of the container's devpts (rootfs.console verifies it and binds its peer onto
    /dev/console): the master goes to the console socket, the peer becomes our stdio."""
    if launch.console_fd is None:
        raise SetupError("cannot allocate tty if ocirt will detach without setting console socket")
    from ocirt import console  # imported by create before the fork (see create.preload)
    fd, launch.console_fd = launch.console_fd, None
    master, peer, name = rootfs.console(launch.rootfs_plan,
                                        launch.config["process"].get("consoleSize"))
    try:
        console.send_master(fd, master, name)
    finally:
        os.close(master)
    console.become_tty(peer)
