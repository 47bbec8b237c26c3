"""The parts of runc's command-line contract that conmon and containerd-shim-runc-v2 rely on,
driven the way they drive it, with ocirt and with the installed runc side by side."""

from __future__ import annotations

import array
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from ocirt_testlib import unique_id

REPO = Path(__file__).resolve().parent.parent.parent
BINARIES = {"ocirt": os.environ.get("OCIRT_BIN", str(REPO / "hack" / "ocirt")),
            "runc": shutil.which("runc")}
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)\Z")


class RT:
    """One runtime binary with a private --root."""

    def __init__(self, name: str, binary: str, root: str) -> None:
        self.name = name
        self.binary = binary
        self.root = root

    def cmd(self, *args: str, log: str | None = None) -> list[str]:
        g = ["--root", self.root]
        if log:
            g += ["--log", log, "--log-format", "json"]
        return [self.binary, *g, *args]

    def __call__(self, *args: str, log: str | None = None, timeout: float = 60,
                 env: dict | None = None, **kw) -> subprocess.CompletedProcess:
        # Files, not pipes: a created container holds on to the runtime's stdio.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run(self.cmd(*args, log=log), stdout=out, stderr=err,
                               timeout=timeout, env=env, **kw)
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        return p

    def ok(self, *args: str, **kw) -> subprocess.CompletedProcess:
        p = self(*args, **kw)
        assert p.returncode == 0, f"{self.name} {args} exited {p.returncode}: {p.stderr}"
        return p

    def state(self, cid: str) -> dict:
        return json.loads(self.ok("state", cid).stdout)


@pytest.fixture(params=["ocirt", "runc"])
def rt(request, tmp_path_factory):
    binary = BINARIES[request.param]
    if not binary:
        pytest.skip("runc is not installed")
    root = str(tmp_path_factory.mktemp(f"{request.param}-root"))
    r = RT(request.param, binary, root)
    yield r
    for cid in os.listdir(root):
        if not cid.startswith((".", "~")) and os.path.isdir(os.path.join(root, cid)):
            r("delete", "--force", cid)
    shutil.rmtree(root, ignore_errors=True)


def wait_for(pred, timeout: float = 10.0):
    end = time.monotonic() + timeout
    while not (v := pred()) and time.monotonic() < end:
        time.sleep(0.02)
    return v


def wait_status(rt: RT, cid: str, want: str) -> dict:
    return wait_for(lambda: (st := rt.state(cid))["status"] == want and st) or rt.state(cid)


# --- pid file, logs ----------------------------------------------------------------------

def test_pid_file_is_replaced_atomically_before_create_returns(rt, bundle):
    cid = unique_id()
    bundle.args("sleep", "30")
    pid_file = bundle.path / "init.pid"
    pid_file.write_text("stale")
    old_inode = pid_file.stat().st_ino
    rt.ok("create", "--bundle", str(bundle.path), "--pid-file", str(pid_file), cid)
    # Written to a temporary file and renamed over the target: a reader never sees a
    # partial pid, and the old file is replaced, not rewritten.
    assert pid_file.read_text() == str(rt.state(cid)["pid"])
    assert pid_file.stat().st_ino != old_inode
    assert sorted(p.name for p in bundle.path.iterdir()) == ["config.json", "init.pid"]


def test_failed_create_logs_exactly_one_json_error_line(rt, bundle):
    cid = unique_id()
    bundle.args("/no/such/binary")
    log = bundle.path / "log.json"
    p = rt("create", "--bundle", str(bundle.path), cid, log=str(log))
    assert p.returncode == 1
    lines = log.read_text().splitlines()
    assert len(lines) == 1, lines  # podman parses the whole file as one object
    entry = json.loads(lines[0])
    assert entry["level"] == "error"
    assert "no such file or directory" in entry["msg"]
    assert RFC3339.match(entry["time"]), entry["time"]
    assert rt("state", cid).returncode == 1  # nothing left behind


def test_successful_lifecycle_logs_no_error(rt, bundle):
    cid = unique_id()
    bundle.args("true")
    log = str(bundle.path / "log.json")
    rt.ok("create", "--bundle", str(bundle.path), cid, log=log)
    rt.ok("start", cid, log=log)
    wait_status(rt, cid, "stopped")
    rt.ok("delete", cid, log=log)
    for line in Path(log).read_text().splitlines():
        assert json.loads(line)["level"] != "error", line


def test_device_file_mode_may_carry_the_file_type(rt, bundle):
    # podman sends Go's os.FileMode bits: S_IFCHR | 0666.
    bundle.config["linux"]["devices"] = [{"path": "/dev/mynull", "type": "c", "major": 1,
                                          "minor": 3, "fileMode": 0o20640, "uid": 0, "gid": 0}]
    bundle.args("ls", "-l", "/dev/mynull")
    p = rt("run", "--bundle", str(bundle.path), unique_id())
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("crw-r-----"), p.stdout


# --- state, list -------------------------------------------------------------------------

def test_state_and_list_fields_as_go_runc_reads_them(rt, bundle):
    cid = unique_id()
    assert rt.ok("list", "--format", "json").stdout.strip() in ("null", "")
    bundle.config["annotations"] = {"org.example.key": "value"}
    bundle.args("sleep", "30")
    rt.ok("create", "--bundle", str(bundle.path), cid)
    st = rt.state(cid)
    assert {"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created",
            "owner"} <= set(st)
    assert st["id"] == cid and st["status"] == "created" and st["pid"] > 0
    assert st["bundle"] == str(bundle.path)
    assert st["annotations"] == {"org.example.key": "value"}
    assert RFC3339.match(st["created"]), st["created"]
    listed = json.loads(rt.ok("list", "--format=json").stdout)
    assert [c["id"] for c in listed] == [cid]
    assert {k: listed[0][k] for k in ("id", "pid", "status", "bundle", "rootfs", "created")} == \
        {k: st[k] for k in ("id", "pid", "status", "bundle", "rootfs", "created")}
    rt.ok("start", cid)
    assert rt.state(cid)["status"] == "running"
    rt.ok("kill", cid, "9")
    st = wait_status(rt, cid, "stopped")
    assert st["status"] == "stopped" and st["pid"] == 0


# --- delete ------------------------------------------------------------------------------

def test_delete_of_a_deleted_container(rt, bundle):
    cid = unique_id()
    bundle.args("true")
    rt.ok("create", "--bundle", str(bundle.path), cid)
    rt.ok("delete", "--force", cid)
    p = rt("delete", cid)
    assert p.returncode == 1
    assert "container does not exist" in p.stderr
    rt.ok("delete", "--force", cid)  # the shim's cleanup of a container already gone


# --- exec --------------------------------------------------------------------------------

def test_exec_status_passes_through_and_a_stopped_container_refuses(rt, bundle):
    cid = unique_id()
    bundle.args("sleep", "30")
    rt.ok("run", "--detach", "--bundle", str(bundle.path), cid)
    assert rt("exec", cid, "sh", "-c", "exit 42").returncode == 42
    assert rt("exec", cid, "sh", "-c", "kill -9 $$").returncode == 128 + 9
    p = rt("exec", cid, "sh", "-c", "echo out")
    assert (p.returncode, p.stdout) == (0, "out\n")
    rt.ok("kill", cid, "KILL")
    wait_status(rt, cid, "stopped")
    p = rt("exec", cid, "true")
    assert p.returncode != 0
    assert "stopped" in p.stderr or "not running" in p.stderr, p.stderr


# --- ps, pause, resume ----------------------------------------------------------------

def test_ps_pause_resume(rt, bundle):
    cid = unique_id()
    bundle.sh("sleep 30 & exec sleep 31")
    rt.ok("run", "--detach", "--bundle", str(bundle.path), cid)
    init = rt.state(cid)["pid"]
    pids = wait_for(lambda: (v := json.loads(rt.ok("ps", "--format", "json", cid).stdout))
                    and len(v) == 2 and v)
    assert init in pids and len(pids) == 2, pids
    table = rt.ok("ps", cid).stdout.splitlines()
    assert table[0].split()[:2] == ["UID", "PID"]
    assert sorted(int(line.split()[1]) for line in table[1:]) == sorted(pids)
    assert rt.ok("ps", cid, "-o", "pid,args").stdout.splitlines()[0].split() == ["PID", "COMMAND"]

    p = rt("resume", cid)
    assert p.returncode == 1 and "not paused" in p.stderr
    rt.ok("pause", cid)
    assert rt.state(cid)["status"] == "paused"
    assert [c["status"] for c in json.loads(rt.ok("list", "--format", "json").stdout)] == ["paused"]
    rt.ok("resume", cid)
    assert rt.state(cid)["status"] == "running"
    rt.ok("kill", cid, "KILL")
    wait_status(rt, cid, "stopped")
    p = rt("pause", cid)
    assert p.returncode == 1 and "not running" in p.stderr


# --- update ------------------------------------------------------------------------------

def test_update_from_flags_and_from_stdin(rt, bundle):
    if not os.path.isdir("/sys/fs/cgroup/memory"):
        pytest.skip("reads cgroup v1 memory and pids files")
    cid = unique_id()
    bundle.args("sleep", "30")
    rt.ok("run", "--detach", "--bundle", str(bundle.path), cid)

    def limits() -> list[str]:
        return rt.ok("exec", cid, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                     "/sys/fs/cgroup/pids/pids.max").stdout.split()

    rt.ok("update", "--memory", "50m", "--pids-limit", "40", cid)
    assert limits() == [str(50 << 20), "40"]
    # podman writes a file, containerd's shim pipes LinuxResources JSON to stdin.
    rt.ok("update", "--resources=-", cid, input=b'{"memory": {"limit": 104857600}}')
    assert limits() == [str(100 << 20), "40"]
    rt.ok("kill", cid, "KILL")
    wait_status(rt, cid, "stopped")
    p = rt("update", "--pids-limit", "10", cid)
    assert p.returncode == 1 and "not running" in p.stderr


# --- console socket ------------------------------------------------------------------------

class ConsoleSocket:
    """A manager's --console-socket listener (conmon, go-runc): one SCM_RIGHTS fd, and a
    payload."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.sock.settimeout(30)

    def receive(self) -> tuple[bytes, list[int]]:
        conn, _ = self.sock.accept()
        with conn:
            fds = array.array("i")
            msg, anc, _flags, _addr = conn.recvmsg(4096, socket.CMSG_SPACE(4 * fds.itemsize))
            for level, typ, data in anc:
                assert (level, typ) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
                fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
        return msg, list(fds)

    def close(self) -> None:
        self.sock.close()


def read_until(fd: int, marker: bytes, timeout: float = 15) -> bytes:
    buf = b""
    end = time.monotonic() + timeout
    while marker not in buf and time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


def test_create_with_terminal_sends_the_pty_master_with_console_size(rt, bundle, tmp_path):
    cid = unique_id()
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["consoleSize"] = {"height": 33, "width": 101}
    bundle.sh("stty size; tty; ls -l /dev/console; read line; echo got:$line")
    console = ConsoleSocket(str(tmp_path / "console.sock"))
    master = None
    try:
        p = subprocess.Popen(rt.cmd("create", "--bundle", str(bundle.path),
                                    "--console-socket", console.path, cid),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        msg, fds = console.receive()
        assert p.wait(30) == 0, p.stderr.read()
        assert msg and len(fds) == 1
        master = fds[0]
        rt.ok("start", cid)
        out = read_until(master, b"console")
        assert b"33 101" in out, out
        assert b"/dev/pts/0" in out, out
        assert re.search(rb"c[rw-]{9}.*136, +0 .*/dev/console", out), out
        os.write(master, b"typed\n")
        assert b"got:typed" in read_until(master, b"got:typed")
    finally:
        if master is not None:
            os.close(master)
        console.close()


def test_exec_tty_detach_sends_the_pty_master(rt, bundle, tmp_path):
    cid = unique_id()
    bundle.args("sleep", "30")
    rt.ok("run", "--detach", "--bundle", str(bundle.path), cid)
    console = ConsoleSocket(str(tmp_path / "exec-console.sock"))
    master = None
    try:
        pid_file = tmp_path / "exec.pid"
        p = subprocess.Popen(rt.cmd("exec", "--tty", "--detach", "--console-socket",
                                    console.path, "--pid-file", str(pid_file), cid, "sh"),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        msg, fds = console.receive()
        assert p.wait(30) == 0, p.stderr.read()
        assert msg and len(fds) == 1
        master = fds[0]
        assert int(pid_file.read_text()) > 0
        os.write(master, b"tty; echo $((6 * 7))x\n")
        out = read_until(master, b"42x")
        assert b"42x" in out and b"/dev/pts/" in out, out
        os.write(master, b"exit 0\n")
    finally:
        if master is not None:
            os.close(master)
        console.close()


def test_console_socket_without_terminal_is_refused(rt, bundle, tmp_path):
    bundle.args("true")
    console = ConsoleSocket(str(tmp_path / "c.sock"))
    try:
        p = rt("create", "--bundle", str(bundle.path), "--console-socket", console.path,
               unique_id())
        assert p.returncode == 1
        assert "cannot use console socket" in p.stderr
    finally:
        console.close()


# --- preserved fds, LISTEN_FDS -------------------------------------------------------------

def _run_with_fds(rt: RT, bundle, cid: str, env: dict | None, *flags: str) -> tuple[int, bytes, bytes]:
    r3, w3 = os.pipe()
    r4, w4 = os.pipe()

    def place() -> None:
        os.dup2(w3, 3)
        os.dup2(w4, 4)

    try:
        cmd = rt.cmd("run", *flags, "--bundle", str(bundle.path), cid)
        if env and "LISTEN_FDS" in env:
            # systemd's socket activation names the receiving process: the runtime itself.
            cmd = ["sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh", *cmd]
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, preexec_fn=place, pass_fds=(3, 4), env=env)
        os.close(w3)
        os.close(w4)
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        return p.returncode, out, os.read(r3, 100) + b"|" + os.read(r4, 100)
    finally:
        os.close(r3)
        os.close(r4)


def test_preserve_fds_passes_fds_through(rt, bundle):
    bundle.sh("echo three >&3; echo four >&4; echo env:${LISTEN_FDS:-none}")
    _, out, fds = _run_with_fds(rt, bundle, unique_id(), None, "--preserve-fds", "2")
    assert fds == b"three\n|four\n"
    assert out == b"env:none\n"


def test_listen_fds_passes_fds_and_sets_listen_pid_1(rt, bundle):
    bundle.sh("echo three >&3; echo four >&4; echo env:$LISTEN_FDS:$LISTEN_PID")
    env = dict(os.environ, LISTEN_FDS="2")
    _, out, fds = _run_with_fds(rt, bundle, unique_id(), env)
    assert fds == b"three\n|four\n"
    assert out == b"env:2:1\n"


# --- NOTIFY_SOCKET -------------------------------------------------------------------------

NOTIFY_CLIENT = r"""
import os, signal, socket, sys, time
signal.signal(signal.SIGTERM, lambda *_: os._exit(7))  # PID 1: no default action
path = os.environ["NOTIFY_SOCKET"]
print("NOTIFY_SOCKET=" + path, flush=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(path)
time.sleep(float(sys.argv[1]))
s.send(b"STATUS=almost")
s.send(b"READY=1")
time.sleep(5)
"""


def _notify_bundle(bundle, delay: str) -> None:
    rootfs = bundle.own_rootfs(bundle.config["root"]["path"])
    # The host's python, read-only, so the container has an sd_notify client.
    for link in ("lib", "lib64"):
        if not (rootfs / link).exists():
            os.symlink(f"usr/{link}", rootfs / link)
    bundle.config["mounts"].append({"destination": "/usr", "type": "bind", "source": "/usr",
                                    "options": ["rbind", "ro"]})
    bundle.args("/usr/bin/python3", "-I", "-c", NOTIFY_CLIENT, delay)


def _host_notify_socket(path: str) -> socket.socket:
    host = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    host.bind(path)
    host.settimeout(0.5)
    return host


def test_notify_socket_is_forwarded_after_start(rt, bundle, tmp_path):
    cid = unique_id()
    _notify_bundle(bundle, "0.5")
    host_path = str(tmp_path / "notify.sock")
    host = _host_notify_socket(host_path)
    env = dict(os.environ, NOTIFY_SOCKET=host_path)
    out = tmp_path / "out"
    try:
        with open(out, "wb") as f:
            subprocess.run(rt.cmd("create", "--bundle", str(bundle.path), cid), env=env,
                           stdin=subprocess.DEVNULL, stdout=f, stderr=f, timeout=30, check=True)
        pid = rt.state(cid)["pid"]
        with pytest.raises(socket.timeout):
            host.recv(100)  # nothing before start
        t0 = time.monotonic()
        rt.ok("start", cid, env=env, timeout=30)
        # start waits for the container's READY=1 and then hands it on, with the init's pid.
        assert time.monotonic() - t0 >= 0.4
        assert host.recv(100) == b"READY=1\n"
        assert host.recv(100) == f"MAINPID={pid}\n".encode()
        assert b"NOTIFY_SOCKET=/run/notify/notify.sock" in out.read_bytes()
    finally:
        host.close()


def test_notify_socket_with_foreground_run(rt, bundle, tmp_path):
    """A systemd Type=notify unit running `run` in the foreground: READY=1 is relayed while
    run already forwards signals to the container."""
    _notify_bundle(bundle, "0.3")
    host_path = str(tmp_path / "notify.sock")
    host = _host_notify_socket(host_path)
    host.settimeout(15)
    env = dict(os.environ, NOTIFY_SOCKET=host_path)
    p = subprocess.Popen(rt.cmd("run", "--bundle", str(bundle.path), unique_id()), env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"NOTIFY_SOCKET=/run/notify/notify.sock\n"
        assert host.recv(100) == b"READY=1\n"
        assert host.recv(100).startswith(b"MAINPID=")
        assert p.poll() is None  # the container sleeps on
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 7  # the container's SIGTERM handler
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()
        host.close()


def test_notify_socket_before_ready_signals_reach_the_container(rt, bundle, tmp_path):
    if rt.name == "runc":
        pytest.skip("runc (1.1.5 and HEAD, signals.go) waits for READY= in notifySocket.run "
                    "before it forwards any signal: a SIGTERM before READY= is held back; "
                    "ocirt relays READY= from a child process and forwards at once")
    _notify_bundle(bundle, "30")  # READY=1 only after 30 s
    host = _host_notify_socket(str(tmp_path / "notify.sock"))
    env = dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "notify.sock"))
    p = subprocess.Popen(rt.cmd("run", "--bundle", str(bundle.path), unique_id()), env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"NOTIFY_SOCKET=/run/notify/notify.sock\n"
        time.sleep(0.2)
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 7  # the container's SIGTERM handler
        with pytest.raises(socket.timeout):
            host.recv(100)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()
        host.close()


def _pidfd_listener(path):
    import socket
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)
    return srv


def _recv_pidfd(srv) -> tuple[bytes, int]:
    import array
    import socket
    conn, _ = srv.accept()
    with conn:
        fds = array.array("i")
        msg, anc, _f, _a = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds.frombytes(data[:fds.itemsize])
    return msg, fds[0]


def _pid_of_pidfd(fd: int) -> int:
    with open(f"/proc/self/fdinfo/{fd}") as f:
        return int([l for l in f if l.startswith("Pid:")][0].split()[1])


def test_pidfd_socket_receives_a_pidfd_of_the_init(ocirt, bundle, cid, tmp_path):
    srv = _pidfd_listener(tmp_path / "pidfd.sock")
    bundle.args("sleep", "100")
    try:
        ocirt.ok("create", "--bundle", str(bundle.path), "--pidfd-socket",
                 str(tmp_path / "pidfd.sock"), cid)
        msg, fd = _recv_pidfd(srv)
    finally:
        srv.close()
    try:
        assert msg == b"init"
        assert _pid_of_pidfd(fd) == ocirt.state(cid)["pid"]
    finally:
        os.close(fd)


def test_pidfd_socket_receives_a_pidfd_of_an_exec_process(ocirt, bundle, cid, tmp_path):
    bundle.args("sleep", "100")
    ocirt.ok("run", "-d", "--bundle", str(bundle.path), cid)
    srv = _pidfd_listener(tmp_path / "pidfd.sock")
    pidfile = tmp_path / "exec.pid"
    try:
        ocirt.ok("exec", "-d", "--pid-file", str(pidfile), "--pidfd-socket",
                 str(tmp_path / "pidfd.sock"), cid, "sleep", "30")
        msg, fd = _recv_pidfd(srv)
    finally:
        srv.close()
    try:
        assert msg == b"exec"
        assert _pid_of_pidfd(fd) == int(pidfile.read_text())
    finally:
        os.close(fd)
