"""restore: a new container (the id from the command line, the bundle's config) whose processes
criu brings back from a checkpoint instead of starting them.

In order, as create: everything is checked first (config, id, images, descriptors); the
container is recorded as being made, its cgroups are created with the config's resources; in a
private mount namespace of this process the mount points are made and the rootfs is bound at
<state dir>/criu-root (criu wants its root to be a mount point with a parent that is not
overmounted); criu runs, is moved into the cgroups before it restores anything, announces the
namespaces (prestart and createRuntime hooks run then, as in runc) and the restored init, whose
pid is saved as the container's. Any failure undoes it all. `state` then shows the container
running with the restored pid; kill, exec, pause and delete treat it as any other.

Without --detach, restore stays as `run` does: it forwards signals, proxies a terminal when
the process has one and no --console-socket was given, exits with the process's status and
deletes the container after it.
"""

from __future__ import annotations

import os

from ocirt import hooks
from ocirt.criu import describe, rpc
from ocirt.criu.options import CriuOptions
from ocirt.errors import SetupError
from ocirt.lifecycle import create as create_mod
from ocirt.linux import syscalls as sc
from ocirt.log import logger
from ocirt.state import machine
from ocirt.state.store import Store

CRIU_ROOT = "criu-root"


def restore(store: Store, cid: str, opts: create_mod.Options, o: CriuOptions, criu: str,
            detach: bool) -> int:
    messages = rpc.messages()
    opts.foreground_tty = not detach
    ck = create_mod.check(store, cid, opts)
    descriptors = describe.load_descriptors(o.image_path)
    forwarder = None
    if not detach:
        from ocirt.lifecycle import foreground
        forwarder = foreground.Forwarder()
    try:
        lock = create_mod.new_locked_dir(store, cid, "restored")
        try:
            pid, master = _restore_locked(store, cid, opts, o, criu, ck, messages, descriptors)
        finally:
            lock.__exit__()
    except BaseException:
        if forwarder is not None:
            forwarder.restore()
        raise
    if detach:
        return 0
    from ocirt.lifecycle.run import wait_and_delete
    return wait_and_delete(store, cid, pid, master, forwarder)


def _restore_locked(store: Store, cid: str, opts: create_mod.Options, o: CriuOptions,
                    criu: str, ck, messages, descriptors: list[str]) -> tuple[int, int | None]:
    undo = create_mod.Undo(store, cid)
    undo.state_dir = store.dir(cid)
    state = create_mod.initial_state(cid, ck, opts)
    store.record(cid, state)
    images = work = -1
    console_sock = ours = None
    criu_root = os.path.join(undo.state_dir, CRIU_ROOT)
    try:
        if ck.cgroup is not None:
            ck.cgroup.create(ck.resources, validated=True)
            undo.cgroup = ck.cgroup
        # First: criu works in the directories of these fds, and mounts there (its cgroup
        # yard), which the kernel allows only on mounts of its own namespace.
        _private_mount_namespace()
        images = os.open(o.image_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        if o.work_path:
            os.makedirs(o.work_path, 0o700, exist_ok=True)
            work = os.open(o.work_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        describe.restore_mountpoints(ck.config, ck.bundle, ck.rootfs)
        os.mkdir(criu_root, 0o755)
        sc.mount(ck.rootfs, criu_root, None, sc.MS_BIND | sc.MS_REC)
        req, ns_paths = describe.restore_request(
            messages, o, config=ck.config, bundle=ck.bundle, rootfs=ck.rootfs,
            criu_root=criu_root, images_fd=images, work_fd=work, descriptors=descriptors)
        console_sock, ours = _console(ck.config, opts)
        ns_fds = tuple(_open_ns(p) for p in ns_paths)
        notify = _Notifications(store, cid, state, ck, undo, console_sock)
        log = os.path.join(os.path.abspath(o.log_dir), "restore.log")
        logger.debug("criu restore of container %s, log %s", cid, log)
        try:
            swrk = rpc.Swrk(criu, log, stdio=True, inherit=ns_fds,
                            before_request=lambda pid: _place(req, ck, pid))
            resp = swrk.call(req, notify)
        finally:
            for fd in ns_fds:
                os.close(fd)
        pid = notify.pid or resp.restore.pid
        if not notify.pid:
            raise SetupError("criu restored no process")
        if opts.pid_file:
            create_mod.write_pid_file(opts.pid_file, pid)
        master = None
        if ours is not None:
            from ocirt import console
            master = console.recv_master(ours)
        return pid, master
    except BaseException:
        _unbind(criu_root)      # before the state dir that holds it goes
        undo.run()
        raise
    finally:
        for fd in (images, work):
            if fd >= 0:
                os.close(fd)
        for s in (console_sock, ours):
            if s is not None:
                s.close()
        _unbind(criu_root)


def _private_mount_namespace() -> None:
    """The mounts restore makes (criu's root, the mount points' temporary binds) stay in a
    mount namespace of this process, which ends with it: nothing can be left on the host."""
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_SLAVE)


def _unbind(criu_root: str) -> None:
    try:
        sc.umount2(criu_root, sc.MNT_DETACH)
    except OSError:
        pass
    try:
        os.rmdir(criu_root)
    except OSError:
        pass


def _place(req, ck, pid: int) -> None:
    """criu joins the container's cgroups before it restores anything: the restored tree is
    put in criu's own cgroups (runc's criuApplyCgroups)."""
    if ck.cgroup is None:
        return
    ck.cgroup.add(pid)
    from ocirt.cgroups import detect
    describe.place_restorer(req, ck.config, ck.rootfs, pid,
                            v1_roots=detect.mode() != detect.V2)


def _console(config: dict, opts: create_mod.Options):
    """(socket the pty master goes to, our end of it when we proxy it ourselves)."""
    if not create_mod.process_terminal(config):
        return None, None
    import socket
    if opts.console_socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(opts.console_socket)
        except OSError as e:
            sock.close()
            raise SetupError(f"failed to connect to console socket {opts.console_socket}: "
                             f"{e.strerror}") from None
        return sock, None
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return theirs, ours


def _open_ns(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise SetupError(f"Requested network namespace {path} does not exist: "
                         f"{e.strerror}") from None


class _Notifications:
    """criu's notify scripts during a restore."""

    def __init__(self, store: Store, cid: str, state: dict, ck, undo, console_sock) -> None:
        self.store = store
        self.cid = cid
        self.state = state
        self.ck = ck
        self.undo = undo
        self.console_sock = console_sock
        self.pid = 0

    def __call__(self, script: str, pid: int, fds: list) -> None:
        logger.debug("criu notify: %s (pid %d)", script, pid)
        if script == "setup-namespaces":
            hk = self.ck.config.get("hooks") or {}
            if hk.get("prestart") or hk.get("createRuntime"):
                st = hooks.oci_state(self.cid, "created", pid, self.ck.bundle,
                                     self.ck.config.get("annotations"))
                hooks.run("prestart", hk.get("prestart"), st)
                hooks.run("createRuntime", hk.get("createRuntime"), st)
        elif script == "post-restore":
            self._restored(pid)
        elif script == "orphan-pts-master":
            if self.console_sock is None or not fds:
                raise SetupError("criu sent a terminal, but the container has none")
            from ocirt import console
            console.send_master(os.dup(self.console_sock.fileno()), fds[0], "orphan-pts-master")

    def _restored(self, pid: int) -> None:
        """The restored init is the container's from now on."""
        self.pid = pid
        self.undo.pids.append(pid)
        start = machine.start_time(pid)
        if start is None:
            raise SetupError("the restored process exited at once")
        del self.state["creating"]
        self.state["pid"] = pid
        self.state["pid_start"] = start
        self.state["cgroup"] = self.ck.cgroup.to_state() if self.ck.cgroup is not None else None
        self.store.save(self.cid, self.state)
