"""create, in the runtime's own namespaces: validate everything, then build the container so that
any failure leaves nothing behind (no state dir, cgroup, mount or process)."""

from __future__ import annotations

import os
import time

from ocirt import OCI_VERSION, hooks, testpoint
from ocirt.errors import CgroupError, ContainerNotFound, OcirtError, SetupError, StateError
from ocirt.init import namespaces as nsmod
from ocirt.init import standard, waiter
from ocirt.linux import signals
from ocirt.linux import syscalls as sc
from ocirt.log import logger
from ocirt.spawn.sync import Sync, SyncError
from ocirt.state import machine
from ocirt.state.store import FIFO_NAME, Store, validate_id

# runc's default device rules (specconv.AllowedDevices): every container may mknod, and use the
# standard character devices, ptys and tun/tap (/dev/net/tun), whatever its config says. Not
# /dev/console (5:1), a host device: a container's console is a pty (136:*).
DEFAULT_DEVICE_RULES = [
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
]


class Options:
    def __init__(self, bundle: str = ".", pid_file: str = "", console_socket: str = "",
                 no_pivot: bool = False, no_new_keyring: bool = False, preserve_fds: int = 0,
                 systemd_cgroup: bool = False, rootless: bool = False,
                 cgroups_disabled: bool = False, foreground_tty: bool = False,
                 pidfd_socket: str = "") -> None:
        self.bundle = bundle
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds
        self.systemd_cgroup = systemd_cgroup
        self.rootless = rootless
        self.cgroups_disabled = cgroups_disabled
        # `run` in the foreground: with process.terminal and no --console-socket, the pty
        # master comes back to the caller (Created.console) instead of going to a manager.
        self.foreground_tty = foreground_tty
        self.pidfd_socket = pidfd_socket


class Created:
    """What `run` needs after create: the init's pid and the parts to undo on failure."""

    def __init__(self, cid: str, pid: int, state: dict, undo: "Undo",
                 console: object = None) -> None:
        self.cid = cid
        self.pid = pid
        self.state = state
        self.undo = undo
        self.console = console  # our end of the pty hand-off, with Options.foreground_tty


class Undo:
    """Resources a create made, released in reverse on failure."""

    def __init__(self, store: Store, cid: str) -> None:
        self.store = store
        self.cid = cid
        self.state_dir: str | None = None
        self.cgroup: object = None
        self.pids: list[int] = []
        # (rootfs, config) of a container sharing the runtime's mount namespace, whose
        # mounts are in that namespace
        self.host_mounts: tuple[str, dict] | None = None
        # (config, fd of the init's network namespace) once linux.netDevices are there
        self.net_devices: tuple[dict, int] | None = None

    def run(self) -> None:
        if self.net_devices is not None:
            from ocirt import netdevices
            netdevices.detach(*self.net_devices)
            os.close(self.net_devices[1])
        for pid in self.pids:
            try:
                os.kill(pid, signals.SIGKILL)
            except ProcessLookupError:
                continue
        for pid in self.pids:
            _reap(pid)
        if self.host_mounts is not None:
            from ocirt.rootfs import hostns
            for dest in hostns.unmount(*self.host_mounts):
                logger.warning(f"failed to unmount {dest} in the rootfs")
        if self.cgroup is not None:
            try:
                self.cgroup.destroy()  # kills anything left in it first
            except (OSError, CgroupError) as e:
                logger.warning(f"failed to remove cgroup: {e}")
        if self.state_dir is not None:
            self.store.remove(self.cid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        # Not our child (no subreaper): wait for it to vanish.
        for _ in range(500):
            if machine.proc_stat(pid) is None:
                return
            time.sleep(0.002)


def device_rules(config: dict) -> list[dict]:
    """The config's device cgroup rules, then runc's defaults. Devices listed in linux.devices
    get no rule of their own: only resources.devices grants access, as in runc."""
    linux = config.get("linux") or {}
    rules = list(((linux.get("resources") or {}).get("devices")) or [])
    rules += DEFAULT_DEVICE_RULES
    return rules


class _Checked:
    """Everything create decided before touching the system."""

    def __init__(self, bundle: str, config: dict, rootfs: str, plan: object, prep: object,
                 new_ns: set[str], join: dict[str, str], cgroup: object, resources: dict,
                 notify: bool) -> None:
        self.bundle = bundle
        self.config = config
        self.rootfs = rootfs
        self.plan = plan
        self.prep = prep
        self.new_ns = new_ns
        self.join = join
        self.cgroup = cgroup
        self.resources = resources
        self.notify = notify


def check(store: Store, cid: str, opts: Options) -> _Checked:
    """Load, validate and compile everything, with no side effect on the system: a bad config
    fails here, before anything exists that would need undoing."""
    validate_id(cid)
    listen = os.environ.get("LISTEN_FDS")
    if opts.preserve_fds or listen:
        from ocirt.spawn import preserve
        preserve.check(opts.preserve_fds)
        if listen and listen.isdigit():
            preserve.check(int(listen), "LISTEN_FDS")
    from ocirt.config.load import load_bundle
    bundle, config = load_bundle(opts.bundle)
    logger.debug("config loaded: %s/config.json", bundle)
    from ocirt.config import support
    support.check(config)
    if (config.get("linux") or {}).get("netDevices"):
        from ocirt import netdevices
        netdevices.check(config)
    notify = False
    if os.environ.get("NOTIFY_SOCKET"):
        from ocirt import notify_socket
        notify_socket.setup_spec(config, store.dir(cid))
        notify = True
    from ocirt.rootfs import setup as rootfs_setup
    linux = config.get("linux") or {}
    rootfs_path = config["root"]["path"]
    if not os.path.isabs(rootfs_path):
        rootfs_path = os.path.join(bundle, rootfs_path)
    plan = rootfs_setup.plan(config, rootfs_path, bundle)
    process = config.get("process")
    from ocirt.config.semantic import config_warnings
    for w in config_warnings(config):
        logger.warning(w)
    prep = None
    if process:
        from ocirt.process import security
        store.ensure_root()
        prep = security.prepare(process, linux, seccomp_cache=store.seccomp_cache)
        for w in prep.warnings:
            logger.warning(w)
        del prep.warnings[:]
        if process.get("terminal") and not (opts.console_socket or opts.foreground_tty):
            raise SetupError("cannot allocate tty if ocirt will detach without setting console socket")
    if opts.console_socket and not (process and process.get("terminal")):
        raise SetupError("cannot use console socket if ocirt will not detach or allocate tty")
    _preload(config)
    new_ns, join = nsmod.split(linux.get("namespaces") or [])
    cgroup = None
    resources = dict(linux.get("resources") or {})
    if opts.rootless:
        # The kernel refuses device cgroup rules inside a user namespace and to an unprivileged
        # writer: runc does not write them for rootless containers either.
        resources.pop("devices", None)
    else:
        resources["devices"] = device_rules(config)
    if not opts.cgroups_disabled:
        from ocirt.cgroups import manager
        cgroup = manager.for_container(cid, linux.get("cgroupsPath"),
                                       systemd=opts.systemd_cgroup, rootless=opts.rootless,
                                       annotations=config.get("annotations"))
        cgroup.validate(resources)
    return _Checked(bundle, config, rootfs_path, plan, prep, new_ns, join, cgroup, resources,
                    notify)


def create(store: Store, cid: str, opts: Options) -> Created:
    ck = check(store, cid, opts)
    interrupts = _Interrupts()
    try:
        lock = new_locked_dir(store, cid, "created")
        try:
            return _create_locked(store, cid, opts, ck, lock.fd)
        finally:
            lock.__exit__()
    finally:
        interrupts.restore()


def new_locked_dir(store: Store, cid: str, verb: str):
    """The new container's state dir (which makes the id unique), locked: the lock, entered."""
    store.create_dir(cid)
    try:
        lock = store.lock(cid)
        lock.__enter__()
    except ContainerNotFound:
        raise StateError(f"container {cid} was deleted while it was being {verb}") from None
    except BaseException:
        store.remove(cid)
        raise
    return lock


def _create_locked(store: Store, cid: str, opts: Options, ck: "_Checked",
                   lock_fd: int) -> Created:
    bundle, config, cgroup = ck.bundle, ck.config, ck.cgroup
    undo = Undo(store, cid)
    undo.state_dir = store.dir(cid)
    if ck.plan.shares_runtime_mntns:
        undo.host_mounts = (ck.plan.rootfs, config)
    console_sock = ours = sync = None
    try:
        # What is about to exist, recorded before it does: a create killed from here on
        # leaves a record that `state` reports and `delete` removes completely.
        state = initial_state(cid, ck, opts)
        store.record(cid, state)
        testpoint.reached("create:dir")
        if ck.notify:
            from ocirt import notify_socket
            notify_socket.make_dir(undo.state_dir)
        fifo = os.path.join(undo.state_dir, FIFO_NAME)
        os.mkfifo(fifo, 0o622)
        os.chmod(fifo, 0o622)
        if process_terminal(config) and opts.foreground_tty and not opts.console_socket:
            import socket
            ours, console_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        elif opts.console_socket:
            import socket
            console_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                console_sock.connect(opts.console_socket)
            except OSError as e:
                raise SetupError(f"failed to connect to console socket {opts.console_socket}: "
                                 f"{e.strerror}") from None
        pid, pid_start, sync = _spawn(cid, bundle, config, ck.plan, ck.prep, ck.new_ns, ck.join,
                                      fifo, opts, cgroup, ck.resources, console_sock, undo,
                                      lock_fd)
        testpoint.reached("create:created")
        del state["creating"]
        state["pid"] = pid
        state["pid_start"] = pid_start
        state["cgroup"] = cgroup.to_state() if cgroup is not None else None
        store.save(cid, state)
        testpoint.reached("create:saved")
        if opts.pid_file:
            write_pid_file(opts.pid_file, pid)
        if opts.pidfd_socket:
            from ocirt.spawn import pidfd_socket
            pidfd_socket.send(opts.pidfd_socket, pid, "init")
        _complete(sync)
        return Created(cid, pid, state, undo, ours)
    except BaseException:
        undo.run()
        if ours is not None:
            ours.close()
        raise
    finally:
        if sync is not None:
            sync.close()
        if console_sock is not None:
            console_sock.close()


def initial_state(cid: str, ck: _Checked, opts: Options) -> dict:
    """The record of a container being made (create, restore), before anything of it exists."""
    config = ck.config
    return {
        "ociVersion": config.get("ociVersion", OCI_VERSION),
        "id": cid,
        "pid": 0,
        "creating": True,
        "bundle": ck.bundle,
        "rootfs": ck.rootfs,
        "created": _now_rfc3339(),
        "owner": _owner(),
        "annotations": config.get("annotations") or {},
        "config": config,
        "cgroup": _planned_cgroup(ck.cgroup),
        "systemd_cgroup": opts.systemd_cgroup,
    }


def _complete(sync: Sync) -> None:
    """Tell the init the create is complete: it stops dying with us (its parent-death signal)
    and goes on to wait for `start`. Its EOF says it did; we must not exit before, or that
    signal would still kill it."""
    try:
        sync.send("go")
        sync.recv()
    except (OSError, SyncError):
        pass  # it died: `state` says "stopped" from now on
    else:
        raise SetupError("unexpected message from the container init")


def _planned_cgroup(cgroup: object) -> dict | None:
    """The cgroup record of a create in progress: the container's own directories count as
    made by it (the exact list is saved once they exist), so `delete` of a create that died
    removes them."""
    if cgroup is None:
        return None
    planned = cgroup.to_state()
    planned["created"] = sorted(set(planned["paths"].values()))
    return planned


class Interrupted(OcirtError):
    pass


class _Interrupts:
    """SIGTERM and SIGINT during create (a manager's timeout) undo it and exit non-zero,
    instead of killing the runtime half way. The previous handlers come back afterwards (for
    `run`, its forwarder's)."""

    SIGNALS = (signals.SIGTERM, signals.SIGINT)

    def __init__(self) -> None:
        import _signal
        self.previous = [_signal.signal(s, self._raise) for s in self.SIGNALS]
        self.raised = False

    def _raise(self, signum: int, _frame) -> None:
        if self.raised:
            return  # already undoing: let that finish
        self.raised = True
        name = "SIGTERM" if signum == signals.SIGTERM else "SIGINT"
        raise Interrupted(f"create interrupted by {name}; the container was removed")

    def restore(self) -> None:
        import _signal
        for s, h in zip(self.SIGNALS, self.previous):
            _signal.signal(s, h)


def process_terminal(config: dict) -> bool:
    return bool((config.get("process") or {}).get("terminal"))


def _preload(config: dict) -> None:
    """Import, before the fork, what the init will need after pivot_root, where nothing can be
    imported; kept to what this config uses, since each import costs start-up time."""
    hooks.preload(config)
    if process_terminal(config):
        from ocirt import console  # noqa: F401


def _spawn(cid: str, bundle: str, config: dict, plan: object, prep: object, new_ns: set[str],
           join: dict[str, str], fifo: str, opts: Options, cgroup: object, resources: dict,
           console_sock: object, undo: Undo, lock_fd: int) -> tuple[int, int, Sync]:
    # As a subreaper we inherit the init when the intermediate exits, so a failed create can
    # reap it, and `run` can wait for it.
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    join_fds = nsmod.open_for_join(join)
    fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
    preserve = opts.preserve_fds
    extra_env: list[str] = []
    listen = os.environ.get("LISTEN_FDS")
    if listen and listen.isdigit() and int(listen) > 0:
        preserve = max(preserve, int(listen))
        extra_env = [f"LISTEN_FDS={listen}", "LISTEN_PID=1"]
    waiter_fd = None
    if waiter.suits(config, prep):
        waiter_fd = waiter.program()
    launch = standard.Launch(
        cid=cid, bundle=bundle, config=config, rootfs_plan=plan, security=prep,
        fifo_fd=fifo_fd, new_ns=new_ns, join_fds=join_fds, preserve_fds=preserve,
        console_fd=console_sock.fileno() if console_sock is not None else None,
        no_pivot=opts.no_pivot, extra_env=extra_env, new_keyring=not opts.no_new_keyring,
        runtime_pid=os.getpid(), waiter_fd=waiter_fd)
    parent, child = Sync.pair()
    pid1 = os.fork()
    if pid1 == 0:
        parent.close()
        # The state dir's lock is the create's: held by a child that outlives a killed
        # create, it would make `state` report "creating" and `delete` wait for that child.
        os.close(lock_fd)
        standard.intermediate(launch, child)
        os._exit(1)
    undo.pids.append(pid1)
    logger.debug("intermediate process %d started", pid1)
    child.close()
    os.close(fifo_fd)
    if waiter_fd is not None:
        os.close(waiter_fd)
    testpoint.reached("create:forked")
    for _kind, fd in join_fds:
        os.close(fd)
    try:
        pid, start = _drive(cid, bundle, config, parent, pid1, new_ns, cgroup, resources, undo)
        return pid, start, parent
    except BaseException as e:
        parent.close()
        if isinstance(e, SyncError):
            raise SetupError(f"unable to start container process: {e}") from None
        raise


def _drive(cid: str, bundle: str, config: dict, sync: Sync, pid1: int, new_ns: set[str],
           cgroup: object, resources: dict, undo: Undo) -> tuple[int, int]:
    """The runtime's half of the create handshake."""
    linux = config.get("linux") or {}
    if "user" in new_ns:
        sync.expect("userns")
        from ocirt.init import idmaps
        idmaps.write(pid1, linux)
        sync.send("userns-mapped")
    if cgroup is not None:
        # The cgroups are made while the children create namespaces and the init builds its
        # rootfs (as runc, which applies cgroups to its already started init): cgroupfs
        # writes can wait on the kernel's cgroup locks, and nothing of the container runs
        # before the init has joined them.
        _create_cgroup(cgroup, resources, sync, undo)
    init_pid = 0
    while True:
        msg, fds = sync.recv()
        kind = msg["type"]
        if kind != "created":
            for fd in fds:
                os.close(fd)
        if kind == "pid":
            init_pid = msg["pid"]
            undo.pids.append(init_pid)
            # The init is already building its rootfs; this write overlaps with that.
            if cgroup is not None:
                try:
                    cgroup.add(init_pid)
                except CgroupError:
                    # An init that already failed cannot be moved: its own error, waiting
                    # in the socket, is the one to report.
                    _raise_init_error(sync, init_pid)
                    raise
            if linux.get("netDevices"):
                from ocirt import netdevices
                # moves them back itself if it fails; the fd keeps them until "created"
                undo.net_devices = (config, netdevices.attach(config, init_pid))
            testpoint.reached("create:joined")
            # The intermediate is gone before the init hears "cgroup": the init then arms its
            # parent-death signal, which must point at us, not at the intermediate.
            _reap(pid1)
            undo.pids.remove(pid1)
            try:
                sync.send("cgroup")
            except OSError:
                pass  # the init already failed: its error message is next in the socket
        elif kind == "hooks":
            # "created": these hooks run after the environment exists (lifecycle step 3 and 4,
            # after step 2, which is what "created" means in runtime.md); crun and the OCI
            # validation suite agree.
            st = hooks.oci_state(cid, "created", init_pid, bundle, config.get("annotations"))
            hk = config.get("hooks") or {}
            hooks.run("prestart", hk.get("prestart"), st)
            hooks.run("createRuntime", hk.get("createRuntime"), st)
            sync.send("hooks-done")
        elif kind == "created":
            for w in msg.get("warnings") or []:
                logger.warning(w)
            if fds:
                _send_seccomp_listener(config, fds, cid, init_pid, bundle)
            start = machine.start_time(init_pid)
            if start is None:
                raise SetupError("container init exited during setup")
            logger.debug("container %s created: init process %d", cid, init_pid)
            return init_pid, start
        elif kind == "error":
            raise SetupError(f"unable to start container process: {msg.get('message')}")


def _raise_init_error(sync: Sync, init_pid: int) -> None:
    """Raise the init's "error" message if it failed. One that is still exiting may not be a
    zombie yet, so a live init gets a moment to speak (a healthy one stays silent: it waits
    for the "cgroup" message)."""
    st = machine.proc_stat(init_pid)
    if st is not None and st[0] not in ("Z", "X"):
        import select
        p = select.poll()
        p.register(sync.fileno(), select.POLLIN)
        if not p.poll(500):
            return
    try:
        msg, fds = sync.recv()
    except (OSError, SyncError):
        return
    for fd in fds:
        os.close(fd)
    if msg.get("type") == "error":
        raise SetupError(f"unable to start container process: {msg.get('message')}")


def _create_cgroup(cgroup: object, resources: dict, sync: Sync, undo: Undo) -> None:
    try:
        cgroup.create(resources, validated=True)     # by check(), before anything existed
    except BaseException:
        # The init exists (or is about to): learn its pid so the undo kills it too.
        try:
            msg, fds = sync.recv()
            for fd in fds:
                os.close(fd)
            if msg.get("type") == "pid":
                undo.pids.append(msg["pid"])
        except (OSError, SyncError):
            pass
        raise
    undo.cgroup = cgroup
    testpoint.reached("create:cgroup")


def _send_seccomp_listener(config: dict, fds: list[int], cid: str, pid: int,
                           bundle: str) -> None:
    """Hand the seccomp notify fd to the agent at linux.seccomp.listenerPath."""
    from ocirt.process import security
    seccomp = (config.get("linux") or {}).get("seccomp") or {}
    try:
        state = hooks.oci_state(cid, "creating", pid, bundle, config.get("annotations"))
        security.send_listener(seccomp["listenerPath"], seccomp.get("listenerMetadata", ""),
                               fds[0], state)
    except OSError as e:
        raise SetupError(f"failed to send seccomp listener fd to {seccomp.get('listenerPath')}: "
                         f"{e.strerror or e}") from None
    finally:
        for fd in fds:
            os.close(fd)


def _owner() -> str:
    """runc's `owner`: the name of the user that created the container."""
    uid = os.geteuid()
    if uid == 0:
        return "root"
    try:
        with open("/etc/passwd", "rb") as f:
            for line in f:
                parts = line.decode(errors="replace").split(":")
                if len(parts) > 2 and parts[2] == str(uid):
                    return parts[0]
    except OSError:
        pass
    return str(uid)


def write_pid_file(path: str, pid: int) -> None:
    """Atomically, as runc: a temporary file renamed over the target, no newline."""
    path = os.path.abspath(path)
    d, name = os.path.split(path)
    tmp = os.path.join(d, f".{name}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)


def _now_rfc3339() -> str:
    t = time.time_ns()
    secs, ns = divmod(t, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{ns:09d}Z"


__all__ = ["create", "Options", "Created", "write_pid_file", "device_rules", "OcirtError"]
