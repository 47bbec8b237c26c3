"""Mounts of rootless containers: what the kernel forbids in a user namespace done as runc does
it (sysfs bound from the host, devices bound instead of made, locked flags kept)."""

from __future__ import annotations

import subprocess
import tempfile

import pytest

from ocirt_testlib import run_out


def _mount_line(mountinfo: str, target: str) -> tuple[set[str], str]:
    """(mount options, fstype) of the top mount at `target`."""
    found = None
    for line in mountinfo.splitlines():
        if " - " not in line:
            continue                # the script's other output
        left, right = line.split(" - ", 1)
        f = left.split()
        if f[4] == target:
            found = (set(f[5].split(",")), right.split()[0])
    assert found is not None, f"nothing mounted at {target}"
    return found


def test_sysfs_is_bound_from_the_host_when_it_cannot_be_mounted(rl_ocirt, rl_bundle, cid):
    # The user namespace does not own the host's network namespace: mounting sysfs is EPERM.
    mounts = [m for m in rl_bundle.config["mounts"] if m["destination"] != "/sys"]
    mounts.insert(1, {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                      "options": ["nosuid", "noexec", "nodev", "ro"]})
    rl_bundle.config["mounts"] = mounts
    out = run_out(rl_ocirt, rl_bundle, cid, "cat /proc/self/mountinfo; ls /sys/kernel >/dev/null"
                  " && echo sys-ok")
    opts, fstype = _mount_line(out, "/sys")
    assert fstype == "sysfs"
    assert {"ro", "nosuid", "nodev", "noexec"} <= opts
    assert "sys-ok" in out


def test_cgroup_mount_of_a_rootless_container_is_read_only(rl_ocirt, rl_bundle, cid):
    out = run_out(rl_ocirt, rl_bundle, cid, "cat /proc/self/mountinfo")
    opts, fstype = _mount_line(out, "/sys/fs/cgroup/memory")
    assert fstype == "cgroup" and "ro" in opts


def test_device_nodes_are_bound_from_the_host(rl_ocirt, rl_bundle, cid):
    rl_bundle.config["linux"]["devices"] = [{"path": "/dev/kmsg", "type": "c", "major": 1,
                                             "minor": 11}]
    out = run_out(rl_ocirt, rl_bundle, cid,
                  "cat /proc/self/mountinfo; stat -c 'dev=%t:%T' /dev/null /dev/kmsg")
    assert "dev=1:3" in out and "dev=1:b" in out
    for node in ("/dev/null", "/dev/kmsg"):
        _opts, fstype = _mount_line(out, node)
        assert fstype == "devtmpfs"      # the host's node, bound: mknod is refused here


@pytest.fixture
def locked_tmpfs():
    """A host tmpfs mounted ro,nosuid,nodev,noexec: a user namespace gets those flags locked."""
    d = tempfile.mkdtemp(prefix="ocirt-locked-", dir="/var/tmp")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,nosuid,nodev,noexec,mode=755", "tmpfs", d],
                   check=True)
    yield d
    subprocess.run(["umount", d], check=True)
    subprocess.run(["rmdir", d], check=True)


def test_locked_mount_flags_are_kept_on_a_bind(rl_ocirt, rl_bundle, cid, locked_tmpfs):
    rl_bundle.config["mounts"].append({"destination": "/home", "type": "bind",
                                       "source": locked_tmpfs,
                                       "options": ["bind", "rw", "suid", "dev", "exec"]})
    out = run_out(rl_ocirt, rl_bundle, cid, "cat /proc/self/mountinfo")
    opts, fstype = _mount_line(out, "/home")
    assert fstype == "tmpfs"
    assert {"ro", "nosuid", "nodev", "noexec"} <= opts


def test_read_only_bind_of_a_host_directory(rl_ocirt, rl_bundle, cid):
    rl_bundle.config["mounts"].append({"destination": "/home", "type": "bind",
                                       "source": "/usr/share", "options": ["rbind", "ro"]})
    out = run_out(rl_ocirt, rl_bundle, cid, "cat /proc/self/mountinfo; touch /home/x 2>&1; true")
    opts, _ = _mount_line(out, "/home")
    assert "ro" in opts
    assert "Read-only file system" in out


def test_idmapped_mount_of_a_host_filesystem_is_refused_with_the_reason(rl_ocirt, rl_bundle,
                                                                        cid, rl_area):
    # Only a process privileged over the filesystem's user namespace (the host's root for
    # the host's ext4) may idmap it.
    rl_bundle.config["mounts"].append({"destination": "/home", "type": "bind",
                                       "source": str(rl_area), "options": ["bind", "idmap"]})
    rl_bundle.args("true")
    p = rl_ocirt("run", "--bundle", str(rl_bundle.path), cid)
    assert p.returncode == 1
    err = p.stderr.decode()
    n = len(rl_bundle.config["mounts"]) - 1
    assert f"mounts[{n}]: cannot idmap" in err and "unprivileged runtime cannot" in err, err
    assert rl_ocirt.ids() == []
