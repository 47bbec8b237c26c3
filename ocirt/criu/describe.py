"""The container described to criu as runc describes it (libcontainer's Checkpoint/Restore):

* its root, and every mount that comes from outside the container as an external mount:
  bind mounts (the destination, with symlinks resolved inside the rootfs, is the key; on
  restore the key maps to the bind's source), the /dev/null binds over masked files, device
  nodes, and the binds of the container's own cgroup directories ocirt makes for a `cgroup`
  mount without a cgroup namespace;
* namespaces given by path: network and pid ones as external namespaces (criu expects them to
  exist on restore and gets them as inherited fds), the others joined on restore;
* the cgroups: criu freezes through the container's freezer, restores into the cgroups the
  criu process was put in (runc's criuApplyCgroups), in the --manage-cgroups-mode asked for;
* the init's stdio: which of fds 0-2 were pipes (descriptors.json in the images, runc's file),
  so a restore hands the caller's own stdio pipes to the restored process;
* a criu configuration file from the `org.criu.config` annotation (empty: none), else
  /etc/criu/ocirt.conf when it exists (criu ignores a missing one).
"""

from __future__ import annotations

import json
import os

from ocirt.criu.options import CriuOptions
from ocirt.errors import OcirtError

DESCRIPTORS = "descriptors.json"
CONFIG_ANNOTATION = "org.criu.config"
DEFAULT_CONFIG = "/etc/criu/ocirt.conf"
_NS_NAMES = {"mount": "mnt", "network": "net", "uts": "uts", "ipc": "ipc", "user": "user",
             "pid": "pid", "cgroup": "cgroup", "time": "time"}
_EXTERNAL_NS = ("network", "pid")


def _common(rpc, o: CriuOptions, images_fd: int, work_fd: int, log_file: str, config: dict):
    opts = rpc.criu_opts(
        images_dir_fd=images_fd, log_level=4, log_file=log_file, manage_cgroups=True,
        notify_scripts=True, shell_job=o.shell_job, tcp_established=o.tcp_established,
        ext_unix_sk=o.ext_unix_sk, file_locks=o.file_locks, empty_ns=o.empty_ns,
        orphan_pts_master=True, auto_dedup=o.auto_dedup, lazy_pages=o.lazy_pages)
    if work_fd >= 0:
        opts.work_dir_fd = work_fd
    annotations = config.get("annotations") or {}
    if CONFIG_ANNOTATION in annotations:
        if annotations[CONFIG_ANNOTATION]:
            opts.config_file = annotations[CONFIG_ANNOTATION]
    else:
        opts.config_file = DEFAULT_CONFIG
    if o.cgroup_mode:
        opts.manage_cgroups_mode = rpc.criu_cg_mode.Value(o.cgroup_mode)
    return opts


def _namespaces_with_path(config: dict) -> list[tuple[str, str]]:
    return [(ns.get("type"), ns["path"])
            for ns in (config.get("linux") or {}).get("namespaces") or () if ns.get("path")]


def _ns_key(kind: str) -> str:
    """runc's key for an external namespace: extRootNetNS, extRootPidNS."""
    return "extRoot" + _NS_NAMES[kind].title() + "NS"


# --- checkpoint -------------------------------------------------------------------------

def dump_request(rpc, o: CriuOptions, *, config: dict, rootfs: str, pid: int,
                 images_fd: int, work_fd: int, freezer: str | None):
    opts = _common(rpc, o, images_fd, work_fd, "dump.log", config)
    opts.root = rootfs
    opts.pid = pid
    opts.leave_running = o.leave_running
    for kind, path in _namespaces_with_path(config):
        if kind in _EXTERNAL_NS:
            opts.external.append(f"{_NS_NAMES[kind]}[{os.stat(path).st_ino}]:{_ns_key(kind)}")
    if freezer:
        opts.freeze_cgroup = freezer
    if o.page_server is not None:
        opts.ps.address, opts.ps.port = o.page_server
    if o.parent_path:
        opts.parent_img = o.parent_path
        opts.track_mem = True
    if o.lazy_pages and o.status_fd >= 0:
        _check_status_fd(o.status_fd)
    # The request holds a copy of opts: what follows goes into that copy.
    req = rpc.criu_req(type=rpc.PRE_DUMP if o.pre_dump else rpc.DUMP, opts=opts)
    opts = req.opts
    if not o.pre_dump:
        for dest in _bind_destinations(config, rootfs) + _cgroup_bind_keys(config, rootfs):
            _ext_mount(opts, dest, dest)
        for path in _masked_files(config, pid):
            _ext_mount(opts, path, "/dev/null")
        for path in _device_paths(config):
            _ext_mount(opts, path, path)
    return req


def _device_paths(config: dict) -> list[str]:
    """Every device node of the container, the default ones first (runc's config.Devices):
    criu resolves the fds a container holds on the host's nodes (stdio on /dev/null)
    through these."""
    from ocirt.rootfs.plan import DEFAULT_DEVICES
    paths = [path for path, _major, _minor in DEFAULT_DEVICES]
    for dev in (config.get("linux") or {}).get("devices") or ():
        if dev["path"] not in paths:
            paths.append(dev["path"])
    return paths


def _check_status_fd(fd: int) -> None:
    import fcntl
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    except OSError as e:
        raise OcirtError(f"invalid --status-fd argument {fd}: {e.strerror.lower()}") from None
    if not flags & (os.O_WRONLY | os.O_RDWR):
        raise OcirtError(f"invalid --status-fd argument {fd}: not writable")


def _masked_files(config: dict, pid: int) -> list[str]:
    """Masked paths that are files in the running container: /dev/null is bound over them."""
    import stat
    out = []
    for path in (config.get("linux") or {}).get("maskedPaths") or ():
        try:
            st = os.stat(f"/proc/{pid}/root/{path.lstrip('/')}")
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            out.append(path)
    return out


def save_descriptors(image_path: str, pid: int) -> None:
    """What the init's fds 0-2 are (runc's descriptors.json): pipes among them are handed to
    the restored process from restore's own stdio."""
    fds = []
    for n in range(3):
        try:
            fds.append(os.readlink(f"/proc/{pid}/fd/{n}"))
        except OSError:
            fds.append("")
    path = os.path.join(image_path, DESCRIPTORS)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, json.dumps(fds).encode())
    finally:
        os.close(fd)


# --- restore ----------------------------------------------------------------------------

def load_descriptors(image_path: str) -> list[str]:
    path = os.path.join(image_path, DESCRIPTORS)
    try:
        with open(path, "rb") as f:
            fds = json.loads(f.read())
    except OSError as e:
        raise OcirtError(f"open {path}: {(e.strerror or str(e)).lower()}") from None
    except ValueError as e:
        raise OcirtError(f"{path}: {e}") from None
    if not isinstance(fds, list) or not all(isinstance(s, str) for s in fds):
        raise OcirtError(f"{path}: not a list of strings")
    return fds


def restore_request(rpc, o: CriuOptions, *, config: dict, bundle: str, rootfs: str,
                    criu_root: str, images_fd: int, work_fd: int, descriptors: list[str]
                    ) -> tuple[object, list[str]]:
    """(the RESTORE request, paths of the namespaces to pass as inherited fds, in order)."""
    opts = _common(rpc, o, images_fd, work_fd, "restore.log", config)
    opts.root = criu_root
    opts.evasive_devices = True
    opts.rst_sibling = True
    if o.lsm_profile:
        opts.lsm_profile = o.lsm_profile
    if o.lsm_mount_context:
        opts.lsm_mount_context = o.lsm_mount_context
    inherit: list[str] = []
    for kind, path in _namespaces_with_path(config):
        if kind in _EXTERNAL_NS:
            from ocirt.criu.rpc import inherited_fd
            opts.inherit_fd.add(key=_ns_key(kind), fd=inherited_fd(len(inherit)))
            inherit.append(path)
        elif kind == "cgroup":
            raise OcirtError("Do not know how to handle namespace cgroup")
        else:
            opts.join_ns.add(ns=_NS_NAMES[kind], ns_file=path)
    for m in _config_mounts(config):
        if _is_bind(m):
            src = m.get("source", "")
            if not os.path.isabs(src):
                src = os.path.join(bundle, src)
            _ext_mount(opts, _in_root(rootfs, m["destination"]), src)
    if (config.get("linux") or {}).get("maskedPaths"):
        _ext_mount(opts, "/dev/null", "/dev/null")
    for path in _device_paths(config):
        _ext_mount(opts, path, path)
    for i, what in enumerate(descriptors):
        if "pipe:" in what:
            opts.inherit_fd.add(key=what, fd=i)
    return rpc.criu_req(type=rpc.RESTORE, opts=opts), inherit     # (a copy of opts)


def place_restorer(req, config: dict, rootfs: str, pid: int, v1_roots: bool) -> None:
    """Once criu runs in the container's cgroups: the cgroup binds map to its cgroup
    directories, and on cgroup v1 each hierarchy's root for the restored tree is criu's own
    cgroup there (runc's cg_root)."""
    from ocirt.rootfs import cgroupfs
    own = cgroupfs.own_cgroups(str(pid))
    for key, h in _cgroup_binds(config, rootfs):
        path = cgroupfs.own_path(h, own)
        if path is not None:
            _ext_mount(req.opts, key, path)
    if v1_roots:
        for ctrls, path in own.items():
            if ctrls:
                req.opts.cg_root.add(ctrl=",".join(sorted(ctrls)), path=path)


# --- mounts -----------------------------------------------------------------------------

def _config_mounts(config: dict) -> list[dict]:
    return [m for m in config.get("mounts") or () if m.get("destination")]


def _is_bind(m: dict) -> bool:
    opts = m.get("options") or ()
    return m.get("type") == "bind" or "bind" in opts or "rbind" in opts


def _in_root(rootfs: str, dest: str) -> str:
    """The destination as mounted: symlinks on its way resolved inside the rootfs (runc's
    SecureJoin); unchanged where it does not resolve."""
    from ocirt.linux import pathrs
    root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = pathrs.open_in_root(root, dest, os.O_PATH)
    except OSError:
        return dest
    finally:
        os.close(root)
    try:
        return pathrs.check_in_root(fd, rootfs)
    except OcirtError:
        return dest
    finally:
        os.close(fd)


def _bind_destinations(config: dict, rootfs: str) -> list[str]:
    return [_in_root(rootfs, m["destination"]) for m in _config_mounts(config) if _is_bind(m)]


def _cgroup_binds(config: dict, rootfs: str) -> list[tuple[str, object]]:
    """(mount point in the container, host hierarchy) of the binds ocirt makes for `cgroup`
    mounts without a cgroup namespace (ocirt.rootfs.cgroupfs); with one, they are real
    cgroup mounts that criu handles itself."""
    linux = config.get("linux") or {}
    if any(ns.get("type") == "cgroup" for ns in linux.get("namespaces") or ()):
        return []
    mounts = [m for m in _config_mounts(config) if m.get("type") == "cgroup"]
    if not mounts:
        return []
    from ocirt.rootfs import cgroupfs
    hs = cgroupfs.hierarchies(rootfs)
    unified = [h for h in hs if h.fstype == "cgroup2" and h.mountpoint == "/sys/fs/cgroup"]
    out = []
    for m in mounts:
        dest = _in_root(rootfs, m["destination"])
        if unified:
            out.append((dest, unified[0]))
        else:
            out += [(f"{dest.rstrip('/')}/{os.path.basename(h.mountpoint)}", h) for h in hs]
    return out


def _cgroup_bind_keys(config: dict, rootfs: str) -> list[str]:
    return [key for key, _h in _cgroup_binds(config, rootfs)]


def _ext_mount(opts, key: str, val: str) -> None:
    opts.ext_mnt.add(key=key, val=val)


def restore_mountpoints(config: dict, bundle: str, rootfs: str) -> None:
    """Make the mount points the restored mounts need, as create would (runc's
    prepareCriuRestoreMounts): bind sources are bound there for the time it takes, so the
    mount points of mounts nested in them exist too; nothing under a tmpfs (criu restores
    its contents). Runs in restore's private mount namespace."""
    from ocirt.linux import syscalls as sc
    from ocirt.rootfs import mountpoint
    mounts = _config_mounts(config)
    tmpfs = [m["destination"].rstrip("/") + "/" for m in mounts if m.get("type") == "tmpfs"]
    root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    bound: list[str] = []
    try:
        for m in mounts:
            dest = m["destination"]
            if any(dest.startswith(t) for t in tmpfs) or m.get("type") == "cgroup":
                continue
            if _is_bind(m):
                src = m.get("source", "")
                if not os.path.isabs(src):
                    src = os.path.join(bundle, src)
                fd = (mountpoint.directory(root, dest)[0] if os.path.isdir(src)
                      else mountpoint.file(root, dest))
                try:
                    target = f"/proc/self/fd/{fd}"
                    sc.mount(src, target, None, sc.MS_BIND | sc.MS_REC)
                    bound.append(os.readlink(target))
                finally:
                    os.close(fd)
            else:
                os.close(mountpoint.directory(root, dest)[0])
    finally:
        os.close(root)
        for path in reversed(bound):
            try:
                sc.umount2(path, sc.MNT_DETACH)
            except OSError:
                pass
