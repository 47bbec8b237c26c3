"""SCMP_ACT_NOTIFY end to end: the child loads a filter with a listener, passes the fd to the
test process (acting as the runtime parent), which sends it to an agent listening on
listenerPath; the agent answers the notification with SECCOMP_IOCTL_NOTIF_RECV/SEND."""

import ctypes
import os
import socket
import threading

import pytest

from procsec_helpers import run

from ocirt.errors import SetupError
from ocirt.process import security
from ocirt.security import notify

_libc = ctypes.CDLL(None, use_errno=True)


class _Notif(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("pid", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("nr", ctypes.c_int32), ("arch", ctypes.c_uint32),
                ("instruction_pointer", ctypes.c_uint64), ("args", ctypes.c_uint64 * 6)]


class _Resp(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("val", ctypes.c_int64), ("error", ctypes.c_int32),
                ("flags", ctypes.c_uint32)]


def _iowr(nr, size):
    return (3 << 30) | (size << 16) | (ord("!") << 8) | nr


NOTIF_RECV = _iowr(0, ctypes.sizeof(_Notif))
NOTIF_SEND = _iowr(1, ctypes.sizeof(_Resp))
assert NOTIF_RECV == 0xC0502100 and NOTIF_SEND == 0xC0182101


def _nr(name):
    lib = ctypes.CDLL("libseccomp.so.2")
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    return lib.seccomp_syscall_resolve_name(name.encode())


class Agent(threading.Thread):
    """Accept one connection on `path`, take the listener fd, answer `count` notifications
    with -errno_ret."""

    def __init__(self, path, errno_ret=42, count=1):
        super().__init__(daemon=True)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(1)
        self.srv.settimeout(15)
        self.errno_ret = errno_ret
        self.count = count
        self.state = None
        self.seen = []
        self.error = None

    def run(self):
        try:
            conn, _ = self.srv.accept()
            with conn:
                self.state, fd = notify.recv_listener(conn)
            try:
                for _ in range(self.count):
                    n = _Notif()
                    if _libc.ioctl(fd, ctypes.c_ulong(NOTIF_RECV), ctypes.byref(n)) != 0:
                        raise OSError(ctypes.get_errno(), "NOTIF_RECV")
                    self.seen.append((n.nr, n.pid))
                    resp = _Resp(n.id, 0, -self.errno_ret, 0)
                    if _libc.ioctl(fd, ctypes.c_ulong(NOTIF_SEND), ctypes.byref(resp)) != 0:
                        raise OSError(ctypes.get_errno(), "NOTIF_SEND")
            finally:
                os.close(fd)
        except BaseException as e:     # reported by the test
            self.error = e
        finally:
            self.srv.close()


def _profile(path, flags=()):
    return {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path,
                        "listenerMetadata": "agent-meta", "flags": list(flags),
                        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}}


def _runtime_parent(path):
    def on_listener(fd, pid):
        state = {"ociVersion": "1.3.0", "id": "c1", "status": "creating", "pid": pid,
                 "bundle": "/tmp/bundle"}
        security.send_listener(path, "agent-meta", fd, state)
        return pid
    return on_listener


def _mkdir(path):
    def fn():
        try:
            os.mkdir(path)
            os.write(1, b"0")
        except OSError as e:
            os.write(1, b"%d" % e.errno)
        return 0
    return fn


def _run_with_agent(tmp_path, flags=()):
    sock = str(tmp_path / "agent.sock")
    agent = Agent(sock)
    agent.start()
    r = run({}, _profile(sock, flags), child_fn=_mkdir(str(tmp_path / "d")),
            on_listener=_runtime_parent(sock))
    agent.join(20)
    assert agent.error is None, agent.error
    return r, agent


def test_seccomp_notify_agent_answers_with_errno(tmp_path):
    r, agent = _run_with_agent(tmp_path)
    assert r.exitcode == 0, r
    assert r.out == "42"
    assert agent.seen == [(_nr("mkdir"), r.payload)]
    assert not (tmp_path / "d").exists()


def test_seccomp_notify_container_process_state_message(tmp_path):
    r, agent = _run_with_agent(tmp_path)
    st = agent.state
    assert st["ociVersion"] == "1.3.0"
    assert st["fds"] == ["seccompFd"]
    assert st["pid"] == r.payload
    assert st["metadata"] == "agent-meta"
    assert st["state"]["status"] == "creating" and st["state"]["id"] == "c1"


def test_seccomp_notify_with_wait_killable_recv_and_tsync(tmp_path):
    r, agent = _run_with_agent(tmp_path, flags=("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
                                                "SECCOMP_FILTER_FLAG_TSYNC"))
    assert r.exitcode == 0, r
    assert r.out == "42"


def test_seccomp_notify_listener_fd_is_cloexec(tmp_path):
    p = security.prepare({}, _profile(str(tmp_path / "x.sock")))
    # Load in a throwaway child and inspect the fd flags there.
    r_fd, w_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r_fd)
            fd = security.apply_seccomp(p)
            import fcntl
            flags = fcntl.fcntl(fd, fcntl.F_GETFD)
            os.write(w_fd, b"%d" % (flags & fcntl.FD_CLOEXEC))
            code = 0
        finally:
            os._exit(code)
    os.close(w_fd)
    out = os.read(r_fd, 16)
    os.close(r_fd)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert out == b"1"


def test_seccomp_notify_missing_listener_is_runcs_connect_error(tmp_path):
    r_fd, w_fd = os.pipe()
    try:
        with pytest.raises(SetupError, match="^failed to connect with seccomp agent specified "
                                             "in the seccomp profile: .*nobody.sock"):
            security.send_listener(str(tmp_path / "nobody.sock"), "", r_fd,
                                   {"pid": 1, "status": "creating"})
    finally:
        os.close(r_fd)
        os.close(w_fd)


def _notify_bundle(bundle, listener, names=("mkdir",)):
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": listener,
        "syscalls": [{"names": list(names), "action": "SCMP_ACT_NOTIFY"}]}
    return bundle.args("true")


def test_container_with_unreachable_agent_fails_with_runcs_error(ocirt, bundle, cid, tmp_path):
    _notify_bundle(bundle, str(tmp_path / "no-agent.sock"))
    p = ocirt("run", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    assert b"failed to connect with seccomp agent specified in the seccomp profile" in p.stderr
    assert ocirt.ids() == []


def test_container_notify_on_write_is_refused_with_runcs_error(ocirt, bundle, cid, tmp_path):
    _notify_bundle(bundle, str(tmp_path / "agent.sock"), names=("mkdir", "write"))
    p = ocirt("run", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    assert b"SCMP_ACT_NOTIFY cannot be used for the write syscall" in p.stderr
    assert ocirt.ids() == []
