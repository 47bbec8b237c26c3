"""podman + conmon driving the runtime (`podman --runtime PATH`), every scenario with ocirt and
with runc."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from clientlib import IMAGE, PODMAN_RUN_ARGS, in_pty, wait_until
from ocirt_testlib import proc_status


def name() -> str:
    return f"oc-{uuid.uuid4().hex[:10]}"


def run_rm(podman, *args: str, timeout: float = 60, env: dict | None = None):
    return podman("run", "--rm", *PODMAN_RUN_ARGS, *args, timeout=timeout, env=env)


def test_run_exit_code_and_output(podman):
    p = run_rm(podman, IMAGE, "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3")
    assert p.returncode == 3, p.stderr
    assert p.stdout == "to-stdout\n"
    assert "to-stderr" in p.stderr


def test_run_missing_and_unexecutable_command(podman):
    # The runtime's one JSON error line (podman reads its oci-log) decides podman's exit code.
    p = run_rm(podman, IMAGE, "/nonexistent")
    assert p.returncode == 127, p.stderr
    assert "no such file or directory" in p.stderr
    p = run_rm(podman, IMAGE, "/etc/passwd")
    assert p.returncode == 126, p.stderr
    assert "permission denied" in p.stderr


@pytest.mark.parametrize("runtime", ["ocirt", "runc", "ocirt-pip"], indirect=True)
def test_detached_exec_logs_top_pause_stop_rm(podman):
    n = name()
    # sh as PID 1 reports SIGTERM and keeps running: stop must fall back to SIGKILL.
    script = 'echo started; trap "echo got-TERM" TERM; while true; do sleep 0.1; done'
    podman.ok("run", "-d", "--name", n, *PODMAN_RUN_ARGS, IMAGE, "sh", "-c", script)
    try:
        assert wait_until(lambda: "started" in podman("logs", n).stdout)

        p = podman("exec", n, "sh", "-c", "echo in-exec; exit 4")
        assert (p.returncode, p.stdout) == (4, "in-exec\n"), p.stderr
        p = podman("exec", "-e", "X=y", "-w", "/tmp", n, "sh", "-c", "echo $X $(pwd)")
        assert (p.returncode, p.stdout) == (0, "y /tmp\n"), p.stderr

        top = podman.ok("top", n, "pid", "args").stdout
        assert "echo started" in top and "sleep" in top

        podman.ok("pause", n)
        assert podman.ok("inspect", "-f", "{{.State.Status}}", n).stdout.strip() == "paused"
        podman.ok("unpause", n)
        assert podman.ok("inspect", "-f", "{{.State.Status}}", n).stdout.strip() == "running"
        p = podman("exec", n, "echo", "after-unpause")
        assert (p.returncode, p.stdout) == (0, "after-unpause\n"), p.stderr

        t0 = time.monotonic()
        podman.ok("stop", "-t", "2", n)
        took = time.monotonic() - t0
        assert took >= 1.9, f"stopped after {took:.1f}s: SIGTERM should have been ignored"
        assert podman.ok("inspect", "-f", "{{.State.ExitCode}}", n).stdout.strip() == "137"
        assert wait_until(lambda: "got-TERM" in podman("logs", n).stdout, timeout=5)

        p = podman("exec", n, "true")
        assert p.returncode != 0, "exec into a stopped container"
    finally:
        podman("rm", "-f", "-t", "0", n)
    assert n not in podman.ok("ps", "-a", "--format", "{{.Names}}").stdout


def test_stop_with_sigterm(podman):
    n = name()
    podman.ok("run", "-d", "--name", n, *PODMAN_RUN_ARGS, IMAGE, "sh", "-c",
              'trap "exit 0" TERM; while true; do sleep 0.1; done')
    try:
        t0 = time.monotonic()
        podman.ok("stop", "-t", "20", n)
        assert time.monotonic() - t0 < 10
        assert podman.ok("inspect", "-f", "{{.State.ExitCode}}", n).stdout.strip() == "0"
    finally:
        podman("rm", "-f", "-t", "0", n)


def test_run_and_exec_with_tty(podman):
    p = in_pty(podman.cmd("run", "--rm", "-t", *PODMAN_RUN_ARGS, IMAGE, "sh", "-c",
                          "tty; test -t 0 && test -t 1 && echo is-a-tty; exit 5"))
    assert p.returncode == 5, p.stdout + p.stderr
    assert "/dev/pts/0" in p.stdout
    assert "is-a-tty" in p.stdout

    n = name()
    podman.ok("run", "-d", "--name", n, *PODMAN_RUN_ARGS, IMAGE, "sleep", "100")
    try:
        p = in_pty(podman.cmd("exec", "-t", n, "sh", "-c", "tty; exit 6"))
        assert p.returncode == 6, p.stdout + p.stderr
        assert "/dev/pts/" in p.stdout
    finally:
        podman("rm", "-f", "-t", "0", n)


def test_memory_and_pids_limits_seen_inside(podman):
    script = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || "
              "cat /sys/fs/cgroup/memory.max; "
              "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max")
    p = run_rm(podman, "--memory", "64m", "--pids-limit", "77", IMAGE, "sh", "-c", script)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [str(64 << 20), "77"]


def test_read_only(podman):
    p = run_rm(podman, "--read-only", IMAGE, "sh", "-c",
               "touch /x 2>&1; echo rc=$?; touch /tmp/y && echo tmp-writable")
    assert p.returncode == 0, p.stderr
    assert "Read-only file system" in p.stdout
    assert "rc=1" in p.stdout and "tmp-writable" in p.stdout


def test_user_env_workdir_volume(podman, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    vol.chmod(0o777)
    (vol / "from-host").write_text("host data\n")
    p = run_rm(podman, "--user", "1000:1000", "-e", "FOO=bar baz", "--workdir", "/home/app",
               "-v", f"{vol}:/data", IMAGE, "sh", "-c",
               'id -u; id -g; echo "$FOO"; pwd; cat /data/from-host; echo c > /data/from-container')
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["1000", "1000", "bar baz", "/home/app", "host data"]
    st = os.stat(vol / "from-container")
    assert (st.st_uid, st.st_gid) == (1000, 1000)


def test_device_and_privileged(podman):
    # podman writes linux.devices[].fileMode with the file type bits (0o20666).
    p = run_rm(podman, "--device", "/dev/null:/dev/mynull", IMAGE, "sh", "-c",
               "ls -l /dev/mynull; echo x > /dev/mynull && echo writable")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("crw-rw-rw-") and " 1,   3 " in p.stdout
    assert "writable" in p.stdout
    p = run_rm(podman, "--privileged", IMAGE, "sh", "-c", "test -c /dev/tty0 && echo host-devices")
    assert (p.returncode, p.stdout) == (0, "host-devices\n"), p.stderr


def test_update(podman):
    n = name()
    podman.ok("run", "-d", "--name", n, *PODMAN_RUN_ARGS, "--memory", "64m", IMAGE, "sleep", "100")
    try:
        podman.ok("update", "--memory", "128m", "--memory-swap", "256m", "--cpu-shares", "256", n)
        p = podman.ok("exec", n, "sh", "-c",
                      "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || "
                      "cat /sys/fs/cgroup/memory.max")
        assert p.stdout.split() == [str(128 << 20)]
    finally:
        podman("rm", "-f", "-t", "0", n)


NOTIFY_CLIENT = """
import os, socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(os.environ["NOTIFY_SOCKET"])
print("in-container", os.environ["NOTIFY_SOCKET"], flush=True)
time.sleep(0.5)
s.send(b"READY=1")
"""


def test_sdnotify_container(podman, tmp_path):
    """--sdnotify=container: podman 4.3 mounts its own notify directory at /run/notify (the
    runtime sees no NOTIFY_SOCKET) and conmon relays READY=1 and MAINPID to the socket podman
    was given. The runtime's own NOTIFY_SOCKET handling is in test_manager_contract.py."""
    import socket
    host_path = str(tmp_path / "notify.sock")
    host = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    host.bind(host_path)
    host.settimeout(20)
    try:
        p = run_rm(podman, "--sdnotify=container", "-v", "/usr:/usr:ro", IMAGE,
                   "/usr/bin/python3", "-I", "-c", NOTIFY_CLIENT,
                   env={"NOTIFY_SOCKET": host_path})
        assert p.returncode == 0, p.stderr
        assert p.stdout == "in-container /run/notify/notify.sock\n"
        got = []
        while b"READY=1" not in got:
            got.append(host.recv(200).strip())
        assert any(g.startswith(b"MAINPID=") for g in got), got
    finally:
        host.close()


@pytest.mark.parametrize("runtime", ["ocirt"], indirect=True)
def test_a_created_container_waits_in_ocirt_wait_under_podmans_own_profile(podman):
    # podman's config as it comes: its seccomp profile without noNewPrivileges, so the filter
    # is loaded before the wait, and the init still hands the wait over (ocirt.init.waiter).
    n = name()
    podman.ok("create", "--name", n, *PODMAN_RUN_ARGS, IMAGE, "sleep", "60")
    try:
        podman.ok("init", n)                        # the runtime's create
        pid = int(podman.ok("inspect", "-f", "{{.State.Pid}}", n).stdout)
        assert os.readlink(f"/proc/{pid}/exe").startswith("/memfd:ocirt-wait")
        st = proc_status(pid)
        assert (st["Seccomp"], st["NoNewPrivs"]) == ("2", "0")
        assert int(st["VmRSS"].split()[0]) < 1024, st["VmRSS"]
        podman.ok("start", n)
        assert wait_until(lambda: proc_status(pid)["Name"] == "sleep")
        assert proc_status(pid)["Seccomp"] == "2"
    finally:
        podman("rm", "-f", "-t", "0", n)
