"""Helpers for the process-security tests: run the facade in a forked child, exec busybox, and
report what the exec'd process sees. No mocks: real prctl/capset/seccomp on this kernel."""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

BUSYBOX = "/bin/busybox"

# The capability set of `runc spec` / Docker's default.
DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


def caps_all(names, ambient=True, inheritable=True):
    d = {"bounding": list(names), "effective": list(names), "permitted": list(names)}
    if inheritable:
        d["inheritable"] = list(names)
    if ambient:
        d["ambient"] = list(names)
    return d


def mask(names):
    from ocirt.process.caps import CAP_NUMBERS
    m = 0
    for n in names:
        m |= 1 << CAP_NUMBERS[n]
    return m


class Result:
    def __init__(self, status, out, err, fd_payload=None):
        self.status = status
        self.out = out
        self.err = err
        self.payload = fd_payload

    @property
    def exitcode(self):
        return os.waitstatus_to_exitcode(self.status)

    @property
    def signal(self):
        return os.WTERMSIG(self.status) if os.WIFSIGNALED(self.status) else None

    def status_field(self, name):
        for line in self.out.splitlines():
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
        raise KeyError(f"{name} not in output:\n{self.out}\n--- stderr ---\n{self.err}")

    def cap(self, name):
        return int(self.status_field(name), 16)

    def __repr__(self):
        return f"Result(status={self.status:#x}, out={self.out!r}, err={self.err!r})"


def _read_all(fds, timeout=20.0):
    bufs = {fd: b"" for fd in fds}
    open_fds = set(fds)
    while open_fds:
        r, _, _ = select.select(list(open_fds), [], [], timeout)
        if not r:
            break
        for fd in r:
            chunk = os.read(fd, 65536)
            if chunk:
                bufs[fd] += chunk
            else:
                open_fds.discard(fd)
    return bufs


class _NoImports:
    """After prepare() the init may be past pivot_root: nothing can be imported any more.
    Installed in the child, it turns any import into an error so the tests prove the apply_*
    steps need none."""

    def find_spec(self, name, path=None, target=None):
        raise ImportError(f"import of {name!r} after prepare()")


def run(process, linux=None, argv=None, *, child_fn=None, on_listener=None, timeout=20.0,
        steps=("early", "user", "caps", "seccomp"), block_imports=True):
    """Fork; in the child: prepare -> apply_early -> apply_user -> apply_caps -> apply_seccomp,
    then execv(argv) (default: cat /proc/self/status) or call child_fn() and exit with its
    return value. If the profile has a listener, the child passes the fd to the parent over a
    socketpair and the parent calls on_listener(fd, child_pid) (like the runtime parent would).
    """
    from ocirt.process import security
    if argv is None:
        argv = ["busybox", "cat", "/proc/self/status"]
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    sp_parent, sp_child = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        code = 120
        try:
            sp_parent.close()
            os.close(out_r)
            os.close(err_r)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            p = security.prepare(process, linux or {})
            if block_imports:
                sys.meta_path.insert(0, _NoImports())
            if "early" in steps:
                security.apply_early(p)
            if "user" in steps:
                security.apply_user(p, process.get("user"))
            if "caps" in steps:
                security.apply_caps(p)
            for w in p.warnings:     # the init relays these to the runtime's log
                os.write(2, f"WARNING: {w}\n".encode())
            fd = None
            if "seccomp" in steps:
                fd = security.apply_seccomp(p)
            if fd is not None:
                socket.send_fds(sp_child, [b"fd"], [fd])
                os.close(fd)
                sp_child.recv(1)       # wait until the parent handed it to the agent
            sp_child.close()
            if child_fn is not None:
                code = int(child_fn() or 0)
            else:
                os.execv(BUSYBOX, argv)
        except BaseException as e:  # report and exit: never return into pytest
            try:
                os.write(2, f"CHILD-ERROR {type(e).__name__}: {e}\n".encode())
            except BaseException:
                pass
            code = 121
        finally:
            os._exit(code)
    sp_child.close()
    os.close(out_w)
    os.close(err_w)
    payload = None
    try:
        sp_parent.settimeout(timeout)
        try:
            _msg, fds, _, _ = socket.recv_fds(sp_parent, 16, 1)
        except (OSError, socket.timeout):
            fds = []
        if fds:
            try:
                payload = on_listener(fds[0], pid) if on_listener else None
            finally:
                os.close(fds[0])
            sp_parent.send(b"k")
        bufs = _read_all([out_r, err_r], timeout)
        _, status = os.waitpid(pid, 0)
    except BaseException:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass
        raise
    finally:
        sp_parent.close()
        os.close(out_r)
        os.close(err_r)
    return Result(status, bufs[out_r].decode(errors="replace"),
                  bufs[err_r].decode(errors="replace"), payload)


def have_runc():
    return shutil.which("runc") is not None


def make_bundle(tmp, process, linux=None):
    """A minimal runc bundle with a busybox rootfs (static busybox + applet symlinks)."""
    import json
    rootfs = os.path.join(tmp, "rootfs")
    for d in ("bin", "proc", "dev", "sys", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
    for applet in ("sh", "cat", "mkdir", "ls", "echo", "grep", "id"):
        os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/:/bin/sh\n")
    with open(os.path.join(rootfs, "etc", "group"), "w") as f:
        f.write("root:x:0:\n")
    proc = {"terminal": False, "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}
    proc.update(process)
    lin = {"namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")],
           "maskedPaths": [], "readonlyPaths": []}
    lin.update(linux or {})
    cfg = {"ociVersion": "1.0.2", "process": proc, "root": {"path": "rootfs"},
           "hostname": "t",
           "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                      {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                       "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}],
           "linux": lin}
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(cfg, f)
    return tmp


def runc_run(tmp, cid="ocirt-cmp"):
    root = os.path.join(tmp, "runc-root")
    bundle = os.path.join(tmp)
    try:
        r = subprocess.run(["runc", "--root", root, "run", "-b", bundle, cid],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    finally:
        subprocess.run(["runc", "--root", root, "delete", "-f", cid], capture_output=True)
    return r
