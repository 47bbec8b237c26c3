"""Real managers around a runtime: a busybox image built here (no network), podman + conmon and
containerd + containerd-shim-runc-v2 + ctr, each in private temporary directories, and the
cleanup that leaves nothing behind (containers, shims, mounts, directories)."""

from __future__ import annotations

import ctypes
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from ocirt_testlib import host_mounts, pids_with_cmdline
from rootless_account import end_processes

REPO = Path(__file__).resolve().parent.parent.parent
IMAGE = "localhost/ocirt-busybox:test"
BUSYBOX = "/bin/busybox"
MTIME = 1_700_000_000
# podman's default RLIMIT_NOFILE (1048576) fails on these hosts in every runtime (root lacks
# CAP_SYS_RESOURCE in its bounding set); no network namespace setup on the host either.
PODMAN_RUN_ARGS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768",
                   "--network", "none"]


def runtimes() -> dict[str, str]:
    """name -> binary. podman names a runtime after the binary's basename, and passes the
    JSON log flags only to names it knows (see containers.conf below), so ocirt is used through
    a path ending in /ocirt. OCIRT_BIN (as for the other tests) names the ocirt under test."""
    ocirt = os.environ.get("OCIRT_BIN") or "/usr/local/bin/ocirt"
    if not os.path.exists(ocirt):
        ocirt = str(REPO / "hack" / "ocirt")
    found = {"ocirt": ocirt, "runc": shutil.which("runc") or "/usr/sbin/runc"}
    trace = os.environ.get("OCIRT_CLIENTS_TRACE")
    if trace:
        return {name: _tracer(trace, name, path) for name, path in found.items()}
    return found


def _tracer(trace_dir: str, name: str, binary: str) -> str:
    """Debugging aid (OCIRT_CLIENTS_TRACE=DIR): a wrapper with the runtime's basename that
    appends each command line, cwd, selected environment and exit status to DIR/NAME.log."""
    d = os.path.join(trace_dir, name)
    os.makedirs(d, exist_ok=True)
    wrapper = os.path.join(d, name)
    log = os.path.join(trace_dir, f"{name}.log")
    Path(wrapper).write_text(f"""#!/bin/bash
echo "[$$] cwd=$PWD NOTIFY_SOCKET=${{NOTIFY_SOCKET-}} LISTEN_FDS=${{LISTEN_FDS-}} $0 $*" >> {log}
{binary} "$@"
rc=$?
echo "[$$] exit $rc" >> {log}
exit $rc
""")
    os.chmod(wrapper, 0o755)
    return wrapper


# --- the image ----------------------------------------------------------------------------

def _tar_add(tf: tarfile.TarFile, name: str, kind: bytes, mode: int, data: bytes = b"",
             link: str = "") -> None:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.mtime = MTIME
    ti.linkname = link
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    tf.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def busybox_layer() -> bytes:
    """A rootfs tar: busybox-static with every applet as a symlink, passwd and group."""
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in ("bin", "etc", "proc", "sys", "dev", "root", "run", "var", "home", "home/app",
                  "usr", "usr/bin"):
            _tar_add(tf, d, tarfile.DIRTYPE, 0o755)
        _tar_add(tf, "tmp", tarfile.DIRTYPE, 0o1777)
        _tar_add(tf, "bin/busybox", tarfile.REGTYPE, 0o755, Path(BUSYBOX).read_bytes())
        for a in applets:
            if a != "busybox":
                _tar_add(tf, f"bin/{a}", tarfile.SYMTYPE, 0o777, link="busybox")
        # For tests that bind the host's /usr (its python3) into a container.
        for lib in ("lib", "lib64"):
            _tar_add(tf, lib, tarfile.SYMTYPE, 0o777, link=f"usr/{lib}")
        _tar_add(tf, "etc/passwd", tarfile.REGTYPE, 0o644,
                 b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
                 b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        _tar_add(tf, "etc/group", tarfile.REGTYPE, 0o644,
                 b"root:x:0:\ntty:x:5:\napp:x:1000:\nnogroup:x:65534:\n")
    return buf.getvalue()


def docker_archive(path: Path, ref: str = IMAGE, **fields: list[str]) -> Path:
    """A docker-archive (docker save format): `podman load` and `ctr images import` both take
    it, so both managers get the same image. fields: image config fields replacing the
    defaults (e.g. Entrypoint=[...])."""
    layer = busybox_layer()
    diff_id = hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["sh"], **fields},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "busybox-static"}],
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [ref],
                            "Layers": [f"{diff_id}/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tf:
        _tar_add(tf, f"{diff_id}/layer.tar", tarfile.REGTYPE, 0o644, layer)
        _tar_add(tf, config_name, tarfile.REGTYPE, 0o644, config)
        _tar_add(tf, "manifest.json", tarfile.REGTYPE, 0o644, manifest)
    return path


# --- cleanup helpers -----------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
MNT_DETACH = 2


def mounts_under(base: str) -> list[str]:
    """Mount points at or below base, deepest first."""
    base = os.path.realpath(base)
    found = {mp.replace("\\040", " ") for mp in host_mounts()}
    found = [mp for mp in found if mp == base or mp.startswith(base + "/")]
    return sorted(found, key=lambda p: p.count("/"), reverse=True)


def unmount_all(base: str) -> None:
    for _ in range(3):
        left = mounts_under(base)
        if not left:
            return
        for mp in left:
            _libc.umount2(mp.encode(), MNT_DETACH)


def kill_pids_mentioning(text: str) -> None:
    for pid in pids_with_cmdline(text):
        if pid > 1 and pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def remove_empty_cgroups(rel: str) -> None:
    """rmdir /sys/fs/cgroup/*/rel and its sub-cgroups, deepest first: only what is empty and
    unused goes (rmdir fails on a busy cgroup)."""
    for top in Path("/sys/fs/cgroup").iterdir():
        d = top / rel
        if not d.is_dir():
            continue
        for dirpath, _, _ in sorted(os.walk(d), key=lambda w: w[0].count("/"), reverse=True):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


def remove_tree(base: str) -> None:
    unmount_all(base)
    shutil.rmtree(base, ignore_errors=True)


def run(cmd: list[str], *, timeout: float = 60, input: bytes | None = None,
        env: dict | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    """Output through files: a detached container can hold a pipe open long after the
    command that started it returned."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.run(cmd, input=input, stdout=out, stderr=err, timeout=timeout, env=env,
                           cwd=cwd)
        out.seek(0)
        err.seek(0)
        p.stdout = out.read().decode(errors="replace")
        p.stderr = err.read().decode(errors="replace")
    return p


def check(p: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert p.returncode == 0, f"{p.args} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def in_pty(cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run cmd with a real terminal on its stdio (script(1)); returns script's result, whose
    exit status is the command's (-e)."""
    import shlex
    return run(["script", "-qec", shlex.join(cmd), "/dev/null"], timeout=timeout)


def wait_until(pred, timeout: float = 10.0, interval: float = 0.05):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(interval)


# --- podman ---------------------------------------------------------------------------------

CONTAINERS_CONF = """\
[engine]
# podman passes --log-format=json --log <file> only to the runtimes named here.
runtime_supports_json = ["crun", "runc", "kata", "ocirt"]
# Rootless podman on cgroup v1 runs containers without cgroups; podman 4.3 spells the key
# singular (its containers.conf(5) says runtime_supports_nocgroups, which it ignores).
runtime_supports_nocgroup = ["crun", "krun", "ocirt"]
lock_type = "file"
events_logger = "file"
cgroup_manager = "cgroupfs"

[engine.runtimes]
ocirt = ["{ocirt}"]
"""


class PodmanStore:
    """One private podman storage (root, runroot, tmpdir, network config) for the session."""

    def __init__(self, base: str) -> None:
        self.base = base
        for d in ("root", "runroot", "tmp", "net"):
            os.makedirs(os.path.join(base, d), exist_ok=True)
        conf = os.path.join(base, "containers.conf")
        Path(conf).write_text(CONTAINERS_CONF.format(ocirt=runtimes()["ocirt"]))
        self.env = dict(os.environ, CONTAINERS_CONF=conf)
        self.env.pop("NOTIFY_SOCKET", None)
        self.global_args = [
            "--root", os.path.join(base, "root"), "--runroot", os.path.join(base, "runroot"),
            "--tmpdir", os.path.join(base, "tmp"),
            "--network-config-dir", os.path.join(base, "net"),
            "--cgroup-manager=cgroupfs", "--events-backend=file", "--storage-driver", "overlay",
        ]

    def podman(self, runtime: str, *args: str, timeout: float = 60,
               env: dict | None = None) -> subprocess.CompletedProcess:
        return run(["podman", *self.global_args, "--runtime", runtime, *args], timeout=timeout,
                   env=dict(self.env, **(env or {})))

    def cmd(self, runtime: str, *args: str) -> list[str]:
        return ["env", f"CONTAINERS_CONF={self.env['CONTAINERS_CONF']}", "podman",
                *self.global_args, "--runtime", runtime, *args]

    def cleanup(self) -> None:
        for rt in runtimes().values():
            try:
                self.podman(rt, "rm", "--all", "--force", "--time", "0", timeout=60)
            except subprocess.TimeoutExpired:
                pass
        kill_pids_mentioning(self.base)  # conmon, should a container have outlived rm
        remove_tree(self.base)
        # The cgroupfs manager's parents (runtimes leave parents alone).
        remove_empty_cgroups("libpod_parent")


class Podman:
    """podman with one runtime."""

    def __init__(self, store: PodmanStore, runtime: str) -> None:
        self.store = store
        self.runtime = runtime

    def __call__(self, *args: str, timeout: float = 60,
                 env: dict | None = None) -> subprocess.CompletedProcess:
        return self.store.podman(self.runtime, *args, timeout=timeout, env=env)

    def ok(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return check(self(*args, timeout=timeout))

    def cmd(self, *args: str) -> list[str]:
        return self.store.cmd(self.runtime, *args)


STORAGE_CONF = """\
[storage]
# The kernel's overlayfs in the user namespace (Linux >= 5.13), not fuse-overlayfs.
driver = "overlay"
"""


class RootlessPodmanStore:
    """Rootless podman of a throw-away account (rootless_account.User) whose home is base/home:
    its containers.conf and storage.conf in ~/.config/containers, its storage in
    ~/.local/share/containers (native overlay), its run root in $XDG_RUNTIME_DIR."""

    def __init__(self, base: str, user) -> None:
        self.base = base
        self.user = user
        os.chmod(base, 0o755)       # the account must reach its home
        conf = Path(user.home, ".config", "containers")
        conf.mkdir(parents=True)
        (conf / "containers.conf").write_text(CONTAINERS_CONF.format(ocirt=runtimes()["ocirt"]))
        (conf / "storage.conf").write_text(STORAGE_CONF)
        for top, dirs, files in os.walk(user.home):
            for n in [top, *(os.path.join(top, f) for f in files)]:
                os.chown(n, user.uid, user.gid)
        os.chmod(user.home, 0o700)

    def cmd(self, runtime: str, *args: str) -> list[str]:
        return [*self.user.env(), "podman", "--runtime", runtime, *args]

    def podman(self, runtime: str, *args: str, timeout: float = 60,
               env: dict | None = None) -> subprocess.CompletedProcess:
        return run([*self.user.env(**(env or {})), "podman", "--runtime", runtime, *args],
                   timeout=timeout)

    def import_image(self, ref: str = IMAGE) -> None:
        """`podman import` of busybox_layer(), with sh as its command."""
        tarball = os.path.join(self.base, "rootfs.tar")
        Path(tarball).write_bytes(busybox_layer())
        os.chmod(tarball, 0o644)
        check(self.podman(runtimes()["runc"], "import", "--change", "CMD=sh", tarball, ref,
                          timeout=120))
        os.unlink(tarball)

    def cleanup(self) -> None:
        """Containers, podman's pause process (it holds the user namespace and the storage's
        mounts), then the storage as root: its files belong to the account's subordinate ids."""
        for rt in runtimes().values():
            try:
                self.podman(rt, "rm", "--all", "--force", "--time", "0", timeout=60)
            except subprocess.TimeoutExpired:
                pass
        end_processes(self.user.uid)
        remove_tree(self.base)


# --- containerd ----------------------------------------------------------------------------

CONTAINERD_TOML = """\
version = 2
root = "{base}/root"
state = "{base}/state"
{top}

[grpc]
  address = "{base}/containerd.sock"

[ttrpc]
  address = "{base}/containerd.sock.ttrpc"

[debug]
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.service.v1.tasks-service"]

[plugins."io.containerd.snapshotter.v1.overlayfs"]
  root_path = "{base}/root/overlayfs"
"""

NAMESPACE = "ocirt-test"


class Containerd:
    """A private containerd daemon: its own root, state, socket. Without plugin settings the
    CRI plugin is disabled; cri_plugins (TOML tables) enable and configure it."""

    def __init__(self, base: str, cri_plugins: str = "", namespace: str = NAMESPACE) -> None:
        self.base = base
        self.namespace = namespace
        self.address = os.path.join(base, "containerd.sock")
        self.config = os.path.join(base, "config.toml")
        top = "" if cri_plugins else 'disabled_plugins = ["io.containerd.grpc.v1.cri"]'
        Path(self.config).write_text(CONTAINERD_TOML.format(base=base, top=top) + cri_plugins)
        os.makedirs(os.path.join(base, "fifo"), exist_ok=True)
        self.log_path = os.path.join(base, "containerd.log")
        self.proc: subprocess.Popen | None = None
        self.env = dict(os.environ)
        self.env.pop("NOTIFY_SOCKET", None)

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(["containerd", "--config", self.config], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=self.env, start_new_session=True)
        ok = wait_until(lambda: self.proc.poll() is not None
                        or self.ctr("version").returncode == 0, timeout=30, interval=0.1)
        if self.proc.poll() is not None or not ok:
            raise RuntimeError(f"containerd did not start:\n{self.log()}")

    def log(self) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def ctr_cmd(self, *args: str) -> list[str]:
        return ["ctr", "--address", self.address, "--namespace", self.namespace, *args]

    def ctr(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return run(self.ctr_cmd(*args), timeout=timeout, env=self.env)

    def run_args(self, runtime: str) -> list[str]:
        """`ctr run` options selecting a runtime binary for io.containerd.runc.v2."""
        return ["--runtime", "io.containerd.runc.v2", "--runc-binary", runtime,
                "--runc-root", os.path.join(self.base, "runc-root"),
                "--fifo-dir", os.path.join(self.base, "fifo")]

    def remove_container(self, cid: str) -> None:
        self.ctr("task", "kill", "--signal", "SIGKILL", cid)
        wait_until(lambda: "RUNNING" not in self.ctr("task", "ls").stdout.split(cid)[-1][:40],
                   timeout=5)
        self.ctr("task", "delete", "--force", cid)
        self.ctr("container", "delete", cid)

    def stop(self) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None:
                listing = self.ctr("containers", "ls", "-q", timeout=20).stdout.split()
                for cid in listing:
                    self.remove_container(cid)
        except (subprocess.TimeoutExpired, OSError):
            pass
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        # Shims outlive the daemon by design; ours name our socket on their command line.
        kill_pids_mentioning(self.base)
        remove_tree(self.base)
        remove_empty_cgroups(self.namespace)  # containerd's per-namespace parent cgroup


def new_base(prefix: str) -> str:
    # Not pytest's tmp area: pytest deletes old basetemps itself and must never walk into a
    # leftover overlay mount. /var/tmp holds overlayfs upper dirs (not on a tmpfs /tmp).
    return tempfile.mkdtemp(prefix=prefix, dir="/var/tmp")
