"""User and time namespaces: id mappings and clock offsets, checked inside and outside."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from ocirt_testlib import run_out, with_userns


def test_user_namespace_maps_container_root_to_the_configured_host_id(ocirt, bundle, cid,
                                                                     reachable_rootfs):
    with_userns(bundle)
    out = run_out(ocirt, bundle, cid, "id -u; cat /proc/self/uid_map /proc/self/gid_map")
    lines = out.splitlines()
    assert lines[0] == "0"
    assert lines[1].split() == ["0", "100000", "65536"]
    assert lines[2].split() == ["0", "100000", "65536"]


def test_user_namespace_process_runs_as_the_mapped_host_uid(ocirt, bundle, cid, reachable_rootfs):
    with_userns(bundle)
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    pid = ocirt.state(cid)["pid"]
    with open(f"/proc/{pid}/status") as f:
        uid_line = [l for l in f if l.startswith("Uid:")][0]
    assert uid_line.split()[1:] == ["100000"] * 4


def test_host_root_files_appear_unmapped_inside_a_user_namespace(ocirt, bundle, cid, reachable_rootfs):
    with_userns(bundle)
    out = run_out(ocirt, bundle, cid, "stat -c '%u' /bin/busybox")
    assert out.strip() == "65534"  # the overflow uid: host root is not mapped


def test_user_namespace_root_cannot_write_host_owned_files(ocirt, bundle, cid, reachable_rootfs):
    shared = reachable_rootfs / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    # The mountpoint must exist: the rootfs belongs to host root, which the container's root
    # (host uid 100000) cannot write to.
    (reachable_rootfs / "rootfs" / "shared").mkdir(exist_ok=True)
    (shared / "f").write_text("host")
    (shared / "f").chmod(0o644)
    with_userns(bundle)
    bundle.config["mounts"].append({"destination": "/shared", "type": "bind",
                                    "source": str(shared), "options": ["rbind"]})
    out = run_out(ocirt, bundle, cid, "echo x > /shared/f 2>&1; echo rc=$?")
    assert "rc=1" in out
    assert (shared / "f").read_text() == "host"


def test_time_namespace_applies_the_configured_offsets(ocirt, bundle, cid):
    bundle.config["linux"]["namespaces"].append({"type": "time"})
    bundle.config["linux"]["timeOffsets"] = {"boottime": {"secs": 172800, "nanosecs": 0},
                                             "monotonic": {"secs": 86400, "nanosecs": 0}}
    out = run_out(ocirt, bundle, cid, "cat /proc/uptime; cat /proc/self/timens_offsets")
    lines = out.splitlines()
    with open("/proc/uptime") as f:
        host_uptime = float(f.read().split()[0])
    assert float(lines[0].split()[0]) >= host_uptime + 172800 - 60
    offsets = {l.split()[0]: l.split()[1:] for l in lines[1:]}
    assert offsets == {"monotonic": ["86400", "0"], "boottime": ["172800", "0"]}


def test_time_namespace_works_inside_a_user_namespace(ocirt, bundle, cid, reachable_rootfs):
    with_userns(bundle)
    bundle.config["linux"]["namespaces"].append({"type": "time"})
    bundle.config["linux"]["timeOffsets"] = {"boottime": {"secs": 1000, "nanosecs": 5}}
    out = run_out(ocirt, bundle, cid, "grep boottime /proc/self/timens_offsets")
    assert out.split() == ["boottime", "1000", "5"]


# --- bind sources the container's root cannot reach (runc's userns.bats) ---------------------

@pytest.fixture
def host_only_dir():
    """A root-owned 0700 directory on the host: mapped ids cannot enter it."""
    d = Path(tempfile.mkdtemp(prefix="ocirt-userns-src-", dir="/var/tmp"))
    d.chmod(0o700)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _bind(bundle, source: Path, dest: str) -> None:
    # The mountpoint too must exist: the rootfs is the host root's, not writable in here.
    (Path(bundle.config["root"]["path"]) / dest.lstrip("/")).mkdir(parents=True, exist_ok=True)
    bundle.config["mounts"].append({"destination": dest, "type": "bind",
                                    "source": str(source), "options": ["bind"]})


def _source_under(parent: Path, name: str) -> Path:
    src = parent / name / "dir"
    src.mkdir(parents=True)
    (src / "foo.txt").write_text(name + "\n")
    return src


def test_userns_binds_sources_under_inaccessible_parents(ocirt, bundle, cid, reachable_rootfs,
                                                         host_only_dir):
    # Two mounts, as runc's test: one source under a 0700 parent, one under a 000 one.
    first = _source_under(host_only_dir, "one")
    second = _source_under(host_only_dir, "two")
    second.parent.chmod(0)
    with_userns(bundle)
    _bind(bundle, first, "/mnt/one")
    _bind(bundle, second, "/mnt/two")
    out = run_out(ocirt, bundle, cid, "cat /mnt/one/foo.txt /mnt/two/foo.txt")
    assert out.split() == ["one", "two"]


def test_userns_binds_a_0700_root_owned_source_directory(ocirt, bundle, cid, reachable_rootfs,
                                                         host_only_dir):
    (host_only_dir / "secret").write_text("x")
    with_userns(bundle)
    _bind(bundle, host_only_dir, "/private")
    # Mounted; its content stays the host root's (not mapped in here).
    out = run_out(ocirt, bundle, cid,
                  "grep -c ' /private ' /proc/self/mountinfo; stat -c '%u %a' /private; "
                  "cat /private/secret 2>/dev/null || echo denied")
    assert out.split() == ["1", "65534", "700", "denied"]


def test_userns_inaccessible_bind_is_seen_by_exec(ocirt, bundle, cid, reachable_rootfs,
                                                  host_only_dir):
    src = _source_under(host_only_dir, "one")
    with_userns(bundle)
    _bind(bundle, src, "/mnt/one")
    bundle.args("sleep", "100")
    ocirt.ok("run", "--detach", "--bundle", str(bundle.path), cid)
    p = ocirt("exec", cid, "cat", "/mnt/one/foo.txt")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"one\n"


def test_userns_missing_bind_source_is_the_ordinary_mount_error(ocirt, bundle, cid,
                                                                reachable_rootfs, host_only_dir):
    with_userns(bundle)
    _bind(bundle, host_only_dir / "nothing", "/mnt/x")
    bundle.write()
    p = ocirt("run", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    assert b"mounts[" in p.stderr and b"No such file or directory" in p.stderr
    assert ocirt.ids() == []


READY_CLIENT = ("import os, socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); "
                "s.connect(os.environ['NOTIFY_SOCKET']); s.send(b'READY=1')")


def test_userns_container_with_notify_socket_reaches_the_host(ocirt, bundle, cid,
                                                              reachable_rootfs, tmp_path):
    # The notify directory lives in ocirt's 0700 state dir: the host's root opens it.
    rootfs = reachable_rootfs / "rootfs"
    for link in ("lib", "lib64"):
        if not (rootfs / link).exists():
            (rootfs / link).symlink_to(f"usr/{link}")
    (rootfs / "run" / "notify").mkdir(parents=True, exist_ok=True)  # rootfs: host root's
    with_userns(bundle)
    bundle.config["mounts"].append({"destination": "/usr", "type": "bind", "source": "/usr",
                                    "options": ["rbind", "ro"]})
    bundle.args("/usr/bin/python3", "-I", "-c", READY_CLIENT)
    host = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    host.bind(str(tmp_path / "notify.sock"))
    host.settimeout(30)
    try:
        p = ocirt("run", "--bundle", str(bundle.path), cid,
                  env=dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "notify.sock")))
        assert p.returncode == 0, p.stderr
        assert host.recv(100) == b"READY=1\n"
    finally:
        host.close()


def test_cwd_only_the_process_user_may_enter_is_entered_after_the_user_switch(
        ocirt, runc, bundle, cid, reachable_rootfs):
    # Container root cannot override permissions on a file whose group is not mapped: the
    # first chdir (still root) is refused, the one after the switch to the owner succeeds, as
    # in runc.
    with_userns(bundle)
    vol = reachable_rootfs / "rootfs" / "owned"     # a name no other test mounts on
    vol.mkdir()
    os.chown(vol, 100042, 0)
    vol.chmod(0o700)
    bundle.config["process"]["user"] = {"uid": 42, "gid": 42}
    bundle.config["process"]["cwd"] = "/owned"
    bundle.args("pwd")
    ours = ocirt("run", "--bundle", str(bundle.path), cid)
    theirs = runc("run", "--bundle", str(bundle.path), cid + "-runc")
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout == b"/owned\n"
    # The premise: the container's root is refused.
    bundle.config["process"]["user"] = {"uid": 0, "gid": 0}
    bundle.config["process"]["cwd"] = "/"
    assert run_out(ocirt, bundle, cid + "-root", "cd /owned || echo refused") == "refused\n"
