"""Rootless podman (an unprivileged account, its own user namespace and native overlay
storage, no cgroups on cgroup v1) driving the runtime, every scenario with ocirt and with runc,
with no podman flags beyond what runc needs."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from pathlib import Path

from clientlib import IMAGE, in_pty, wait_until


def name() -> str:
    return f"oc-{uuid.uuid4().hex[:10]}"


def proc_ids(pid: int, field: str) -> list[int]:
    """The real, effective, saved and fs ids of `field` (Uid or Gid) in /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return [int(x) for x in line.split()[1:]]
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_run_rm_as_root_of_the_users_namespace(rootless_podman):
    user = rootless_podman.store.user
    n = name()
    p = rootless_podman("run", "--rm", "--name", n, "--network=none", IMAGE, "sh", "-c",
                        "id -u; head -1 /proc/self/uid_map; echo to-stderr >&2; exit 3")
    assert p.returncode == 3, p.stderr
    uid, uid_map = p.stdout.splitlines()
    assert uid == "0"
    assert uid_map.split() == ["0", str(user.uid), "1"]
    assert "to-stderr" in p.stderr
    assert n not in rootless_podman.ok("ps", "-a", "--format", "{{.Names}}").stdout


def test_root_is_the_kernels_overlay(rootless_podman):
    p = rootless_podman.ok("run", "--rm", "--network=none", IMAGE, "sh", "-c",
                           "grep ' / / ' /proc/self/mountinfo")
    assert " - overlay overlay " in p.stdout, p.stdout
    info = rootless_podman.ok("info", "--format", "{{.Store.GraphDriverName}} "
                              "{{index .Store.GraphOptions \"overlay.mount_program\"}}").stdout
    assert info.split()[0] == "overlay" and "fuse" not in info, info


def test_network_none_has_only_loopback(rootless_podman):
    p = rootless_podman.ok("run", "--rm", "--network=none", IMAGE, "ls", "/sys/class/net")
    assert p.stdout.split() == ["lo"]


def test_detached_exec_stop_rm(rootless_podman):
    user = rootless_podman.store.user
    n = name()
    cid = rootless_podman.ok("run", "-d", "--name", n, "--network=none", IMAGE, "sh", "-c",
                             'trap "exit 0" TERM; echo started; while true; do sleep 0.1; done'
                             ).stdout.strip()
    # podman gives no --root: the runtime's state is in its default, $XDG_RUNTIME_DIR/NAME.
    state = Path(user.runtime_dir, os.path.basename(rootless_podman.runtime), cid)
    try:
        assert state.is_dir() and state.stat().st_uid == user.uid
        assert wait_until(lambda: "started" in rootless_podman("logs", n).stdout)
        pid = int(rootless_podman.ok("inspect", "-f", "{{.State.Pid}}", n).stdout)
        # From the host: the container's root is the account.
        assert proc_ids(pid, "Uid") == [user.uid] * 4
        assert proc_ids(pid, "Gid") == [user.gid] * 4

        p = rootless_podman("exec", n, "sh", "-c", "echo in-exec $(id -u); exit 4")
        assert (p.returncode, p.stdout) == (4, "in-exec 0\n"), p.stderr
        p = rootless_podman("exec", "--user", "1000:1000", "-w", "/tmp", n, "sh", "-c",
                            "echo $(id -u):$(id -g) $(pwd)")
        assert (p.returncode, p.stdout) == (0, "1000:1000 /tmp\n"), p.stderr

        rootless_podman.ok("stop", "-t", "20", n)
        assert rootless_podman.ok("inspect", "-f", "{{.State.ExitCode}}", n).stdout.strip() == "0"
        assert not os.path.exists(f"/proc/{pid}")
        rootless_podman.ok("rm", n)
    finally:
        rootless_podman("rm", "-f", "-t", "0", n)
    assert n not in rootless_podman.ok("ps", "-a", "--format", "{{.Names}}").stdout
    assert not state.exists()


def test_keep_id_volume_owners(rootless_podman):
    user = rootless_podman.store.user
    vol = Path(rootless_podman.store.base, f"vol-{uuid.uuid4().hex[:8]}")
    vol.mkdir()
    (vol / "from-host").write_text("host data\n")
    for f in (vol, vol / "from-host"):
        os.chown(f, user.uid, user.gid)
    p = rootless_podman("run", "--rm", "--network=none", "--userns=keep-id", "-v",
                        f"{vol}:/data", IMAGE, "sh", "-c",
                        "id -u; id -g; stat -c %u:%g /data/from-host; cat /data/from-host; "
                        "echo c > /data/from-container")
    assert p.returncode == 0, p.stderr
    ids = f"{user.uid}:{user.gid}"
    assert p.stdout.splitlines() == [str(user.uid), str(user.gid), ids, "host data"]
    st = os.stat(vol / "from-container")
    assert (st.st_uid, st.st_gid) == (user.uid, user.gid)


def test_run_with_tty(rootless_podman):
    p = in_pty(rootless_podman.cmd("run", "--rm", "-t", "--network=none", IMAGE, "sh", "-c",
                                   "tty; test -t 0 && test -t 1 && echo is-a-tty; exit 5"))
    assert p.returncode == 5, p.stdout + p.stderr
    assert "/dev/pts/0" in p.stdout
    assert "is-a-tty" in p.stdout


def test_slirp4netns_reaches_the_hosts_loopback(rootless_podman, tun_for_users):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(60)
        port = server.getsockname()[1]
        got = []

        def accept() -> None:
            conn, _ = server.accept()
            with conn:
                got.append(conn.recv(100))

        t = threading.Thread(target=accept, daemon=True)
        t.start()
        p = rootless_podman("run", "--rm", "--network=slirp4netns:allow_host_loopback=true",
                            IMAGE, "sh", "-c",
                            "ip -o -4 addr show tap0; ip route; "
                            f"echo from-container | nc 10.0.2.2 {port}")
        t.join(60)
    assert p.returncode == 0, p.stderr
    assert "inet 10.0.2.100/24" in p.stdout
    assert "default via 10.0.2.2 dev tap0" in p.stdout
    assert got == [b"from-container\n"]
