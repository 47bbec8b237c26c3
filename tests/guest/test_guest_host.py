"""The guest is what the guest tests assume: a pure cgroup v2 host with systemd as PID 1, where
ocirt runs a container in a cgroup of the unified hierarchy."""

from __future__ import annotations

from pathlib import Path


def test_cgroup2_is_the_only_cgroup_file_system_at_sys_fs_cgroup():
    mounts = [line.split(" - ") for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    cgroup = [(left.split()[4], right.split()[0]) for left, right in mounts
              if right.split()[0] in ("cgroup", "cgroup2")]
    assert cgroup == [("/sys/fs/cgroup", "cgroup2")]


def test_the_unified_hierarchy_offers_the_resource_controllers():
    controllers = Path("/sys/fs/cgroup/cgroup.controllers").read_text().split()
    assert {"cpu", "cpuset", "io", "memory", "pids"} <= set(controllers)


def test_systemd_is_pid_1():
    assert Path("/proc/1/comm").read_text().strip() == "systemd"


def test_a_container_runs_in_its_own_cgroup_of_the_unified_hierarchy(ocirt, bundle, cid):
    bundle.args("cat", "/proc/self/cgroup")
    p = ocirt("run", "--bundle", str(bundle.path), cid)
    assert p.returncode == 0, p.stderr.decode()
    # Without a cgroup namespace the container sees its path from the root: a v2-only line.
    lines = p.stdout.decode().split()
    assert len(lines) == 1 and lines[0].startswith("0::/"), lines
    assert cid in lines[0]
