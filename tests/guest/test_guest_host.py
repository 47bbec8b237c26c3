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
    ocirt.ok("create", "--bundle", str(bundle.args("sleep", "100").path), cid)
    pid = ocirt.state(cid)["pid"]
    # Seen from outside: one line, the unified hierarchy's, naming a cgroup of the container's
    # own that holds its init.
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("0::/"), lines
    path = lines[0][len("0::"):]
    assert path.rsplit("/", 1)[-1].endswith(cid), path
    procs = Path("/sys/fs/cgroup" + path, "cgroup.procs").read_text().split()
    assert procs == [str(pid)]


def test_ocirt_spec_gives_a_container_its_own_cgroup_namespace_on_pure_v2(ocirt, bundle, cid):
    """Inside, /proc/self/cgroup names the root of the container's cgroup namespace (the
    spec's default adds one where cgroup v2 is the only hierarchy, as runc's does)."""
    assert {"type": "cgroup"} in bundle.config["linux"]["namespaces"]
    bundle.args("cat", "/proc/self/cgroup")
    p = ocirt("run", "--bundle", str(bundle.path), cid)
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout.decode() == "0::/\n"
