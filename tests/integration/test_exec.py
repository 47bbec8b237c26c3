"""exec: a new process joins a running container's namespaces and cgroup, with the command
line's overrides (runc's flags) or a full process.json."""

from __future__ import annotations

import json
import os

import pytest


@pytest.fixture
def running(ocirt, bundle, cid):
    bundle.config["hostname"] = "exec-box"
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    ocirt.ok("start", cid)
    return cid


def exec_out(ocirt, cid, *args: str) -> str:
    p = ocirt("exec", *args[:-1], cid, "sh", "-c", args[-1]) if args[:-1] else \
        ocirt("exec", cid, "sh", "-c", args[-1])
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode()


def test_exec_joins_the_containers_namespaces(ocirt, running):
    pid = ocirt.state(running)["pid"]
    out = exec_out(ocirt, running, "for n in pid net ipc uts mnt; do readlink /proc/self/ns/$n; done")
    theirs = [os.readlink(f"/proc/{pid}/ns/{n}") for n in ("pid", "net", "ipc", "uts", "mnt")]
    assert out.split() == theirs


def test_exec_sees_the_containers_hostname_and_pid_1(ocirt, running):
    assert exec_out(ocirt, running, "hostname; cat /proc/1/cmdline | tr '\\0' ' '").split() == \
        ["exec-box", "sleep", "100"]


def test_exec_joins_the_containers_cgroup(ocirt, running):
    pid = ocirt.state(running)["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        init = sorted(f.read().splitlines())
    out = exec_out(ocirt, running, "cat /proc/self/cgroup")
    assert sorted(out.splitlines()) == init


def test_exec_env_is_added_to_the_configs(ocirt, running):
    out = exec_out(ocirt, running, "-e", "FOO=bar", "-e", "TERM=dumb", "env")
    env = dict(l.split("=", 1) for l in out.splitlines() if "=" in l)
    assert env["FOO"] == "bar" and env["TERM"] == "dumb" and env["PATH"].startswith("/usr/local")


def test_exec_cwd(ocirt, running):
    assert exec_out(ocirt, running, "--cwd", "/tmp", "pwd") == "/tmp\n"


def test_exec_user_and_additional_gids(ocirt, running):
    out = exec_out(ocirt, running, "-u", "1000:1000", "-g", "7", "-g", "9", "id -u; id -g; id -G")
    uid, gid, groups = out.splitlines()
    assert (uid, gid) == ("1000", "1000")
    assert sorted(groups.split()) == ["1000", "7", "9"]


def test_exec_no_new_privs(ocirt, running):
    out = exec_out(ocirt, running, "--no-new-privs", "grep NoNewPrivs /proc/self/status")
    assert out.split() == ["NoNewPrivs:", "1"]


def test_exec_with_a_process_json(ocirt, running, tmp_path):
    proc = {"args": ["sh", "-c", "echo $X; pwd; id -u"], "cwd": "/etc", "env": ["X=from-json", "PATH=/bin"],
            "user": {"uid": 2, "gid": 2}}
    f = tmp_path / "process.json"
    f.write_text(json.dumps(proc))
    p = ocirt("exec", "--process", str(f), running)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().split() == ["from-json", "/etc", "2"]


def test_exec_with_an_invalid_process_json_names_the_field(ocirt, running, tmp_path):
    f = tmp_path / "process.json"
    f.write_text(json.dumps({"args": [], "cwd": "/"}))
    p = ocirt("exec", "--process", str(f), running)
    assert p.returncode != 0 and b"args" in p.stderr


def test_exec_of_a_missing_binary_exits_255(ocirt, running):
    p = ocirt("exec", running, "/no/such/binary")
    assert p.returncode == 255 and b"/no/such/binary" in p.stderr


def test_exec_detach_writes_the_pid_file(ocirt, running, tmp_path):
    pidfile = tmp_path / "exec.pid"
    p = ocirt("exec", "-d", "--pid-file", str(pidfile), running, "sleep", "30")
    assert p.returncode == 0, p.stderr
    pid = int(pidfile.read_text())
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[:2] == [b"sleep", b"30"]


def test_exec_into_a_paused_container_needs_ignore_paused(ocirt, running):
    ocirt.ok("pause", running)
    try:
        p = ocirt("exec", running, "true")
        assert p.returncode != 0 and b"paused" in p.stderr
    finally:
        ocirt.ok("resume", running)


def test_exec_into_an_unknown_container_fails_with_255(ocirt):
    p = ocirt("exec", "nope", "true")
    assert p.returncode == 255 and b"exec failed: container does not exist" in p.stderr


def test_exec_hands_a_notify_listener_to_the_seccomp_agent(ocirt, bundle, cid, tmp_path):
    import array
    import socket
    import threading
    path = str(tmp_path / "agent.sock")
    agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    agent.bind(path)
    agent.listen(4)
    got: list[tuple[dict, int]] = []

    def serve() -> None:
        for _ in range(2):
            conn, _ = agent.accept()
            with conn:
                fds = array.array("i")
                msg, anc, _f, _a = conn.recvmsg(65536, socket.CMSG_SPACE(4 * fds.itemsize))
                for level, typ, data in anc:
                    if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                        fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
                got.append((json.loads(msg), len(fds)))
                for fd in fds:
                    os.close(fd)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path, "listenerMetadata": "meta",
        "syscalls": [{"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_NOTIFY"}]}
    bundle.args("sleep", "100")
    try:
        ocirt.ok("create", "--bundle", str(bundle.path), cid)
        ocirt.ok("start", cid)
        p = ocirt("exec", cid, "true")
        assert p.returncode == 0, p.stderr
        t.join(10)
    finally:
        agent.close()
    assert len(got) == 2
    for state, nfds in got:
        assert nfds == 1 and state["fds"] == ["seccompFd"] and state["metadata"] == "meta"
        assert state["state"]["id"] == cid


def test_exec_forwards_sigterm_to_its_process(ocirt, running):
    import signal
    import subprocess
    proc = subprocess.Popen(
        ocirt.cmd("exec", running, "sh", "-c",
                  "trap 'exit 7' TERM; echo ready; while :; do sleep 0.1; done"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 7


def test_sigterm_right_after_exec_starts_is_not_lost(ocirt, running):
    """The handlers are in place before the process exists: a signal sent as soon as it
    prints is forwarded, never the default action on ocirt."""
    import signal
    import subprocess
    for _ in range(5):
        proc = subprocess.Popen(
            ocirt.cmd("exec", running, "sh", "-c", "trap 'exit 9' TERM; echo go; sleep 5 & wait"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout.readline() == b"go\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 9
