"""Cgroups of rootless containers: none without resources, a clear error for a limit the user
cannot set, and in a subtree delegated to the user, limits, ps, pause/resume, update and
statistics as for root."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ocirt_testlib import cgroup_dirs, cgroup_dirs_named, cgroup_mounts, read_cgroup_file


def test_rootless_container_without_resources_creates_no_cgroup(rl_ocirt, rl_bundle, cid):
    rl_bundle.args("sleep", "100")
    rl_ocirt.ok("create", "--bundle", str(rl_bundle.path), cid)
    pid = rl_ocirt.state(cid)["pid"]
    assert not any(cid in d for d in cgroup_dirs(pid).values())
    assert cgroup_dirs_named(cid) == []


def test_limit_without_a_writable_cgroup_is_a_clear_error(rl_ocirt, rl_bundle, cid):
    rl_bundle.config["linux"]["resources"] = {"memory": {"limit": 64 << 20}}
    rl_bundle.args("true")
    p = rl_ocirt("run", "--bundle", str(rl_bundle.path), cid)
    assert p.returncode == 1
    assert "cannot set memory limit: container could not join or create cgroup" in \
        p.stderr.decode()
    assert rl_ocirt.ids() == [] and cgroup_dirs_named(cid) == []


def test_cgroups_path_the_user_cannot_create_is_a_clear_error(rl_ocirt, rl_bundle, cid):
    rl_bundle.config["linux"]["cgroupsPath"] = f"/not-delegated/{cid}"
    rl_bundle.args("true")
    p = rl_ocirt("run", "--bundle", str(rl_bundle.path), cid)
    assert p.returncode == 1
    err = p.stderr.decode()
    assert "cannot create cgroup" in err and "Permission denied" in err
    assert rl_ocirt.ids() == []


def test_ps_of_a_rootless_container_without_cgroups_is_a_clear_error(rl_ocirt, rl_bundle, cid):
    rl_bundle.args("sleep", "100")
    rl_ocirt.ok("run", "-d", "--bundle", str(rl_bundle.path), cid)
    p = rl_ocirt("ps", cid)
    assert p.returncode == 1
    assert "cgroups not configured for container" in p.stderr.decode()


def test_pause_of_a_rootless_container_without_cgroups_is_runc_s_error(rl_ocirt, rl_bundle,
                                                                      cid):
    rl_bundle.args("sleep", "100")
    rl_ocirt.ok("run", "-d", "--bundle", str(rl_bundle.path), cid)
    p = rl_ocirt("pause", cid)
    assert p.returncode == 1
    assert "cannot toggle freezer: cgroups not configured for container" in p.stderr.decode()
    assert rl_ocirt.state(cid)["status"] == "running"


def test_events_stats_of_a_rootless_container_without_cgroups_is_a_clear_error(rl_ocirt,
                                                                              rl_bundle, cid):
    rl_bundle.args("sleep", "100")
    rl_ocirt.ok("run", "-d", "--bundle", str(rl_bundle.path), cid)
    p = rl_ocirt("events", "--stats", cid)
    assert p.returncode == 1
    assert "cannot read statistics of a container without cgroups" in p.stderr.decode()


def _delegated(rl_bundle, delegated_cgroup, cid, resources) -> dict[str, str]:
    rl_bundle.config["linux"]["cgroupsPath"] = f"/{delegated_cgroup}/{cid}"
    rl_bundle.config["linux"]["resources"] = resources
    rl_bundle.args("sleep", "100")
    v1, _ = cgroup_mounts()
    return {c: os.path.join(v1[c], delegated_cgroup, cid) for c in ("memory", "pids", "cpu",
                                                                    "freezer", "devices")}


def test_delegated_cgroup_gets_the_configured_limits(rl_ocirt, rl_bundle, delegated_cgroup,
                                                     cid):
    d = _delegated(rl_bundle, delegated_cgroup, cid,
                   {"memory": {"limit": 64 << 20}, "pids": {"limit": 42},
                    "cpu": {"shares": 512}})
    rl_ocirt.ok("run", "-d", "--bundle", str(rl_bundle.path), cid)
    assert read_cgroup_file(d["memory"], "memory.limit_in_bytes") == str(64 << 20)
    assert read_cgroup_file(d["pids"], "pids.max") == "42"
    assert read_cgroup_file(d["cpu"], "cpu.shares") == "512"
    pid = rl_ocirt.state(cid)["pid"]
    assert cgroup_dirs(pid)["memory"] == d["memory"]


def test_no_device_rules_are_written_for_a_rootless_container(rl_ocirt, rl_bundle,
                                                              delegated_cgroup, cid):
    d = _delegated(rl_bundle, delegated_cgroup, cid, {"pids": {"limit": 42}})
    rl_bundle.config["linux"]["resources"]["devices"] = [{"allow": False, "access": "rwm"}]
    rl_ocirt.ok("run", "-d", "--bundle", str(rl_bundle.path), cid)
    # the kernel refuses them to an unprivileged writer: the cgroup keeps what it inherited
    assert read_cgroup_file(d["devices"], "devices.list") == "a *:* rwm"


def test_delegated_cgroup_ps_pause_resume_update_and_stats(rl_ocirt, rl_bundle,
                                                           delegated_cgroup, cid):
    d = _delegated(rl_bundle, delegated_cgroup, cid, {"pids": {"limit": 42}})
    rl_ocirt.ok("run", "-d", "--bundle", str(rl_bundle.path), cid)
    pid = rl_ocirt.state(cid)["pid"]
    assert json.loads(rl_ocirt.ok("ps", "--format", "json", cid).stdout) == [pid]
    rl_ocirt.ok("pause", cid)
    assert read_cgroup_file(d["freezer"], "freezer.state") == "FROZEN"
    assert rl_ocirt.state(cid)["status"] == "paused"
    rl_ocirt.ok("resume", cid)
    assert read_cgroup_file(d["freezer"], "freezer.state") == "THAWED"
    rl_ocirt.ok("update", "--pids-limit", "77", "--memory", "100m", cid)
    assert read_cgroup_file(d["pids"], "pids.max") == "77"
    assert read_cgroup_file(d["memory"], "memory.limit_in_bytes") == str(100 << 20)
    stats = json.loads(rl_ocirt.ok("events", "--stats", cid).stdout)
    assert stats["data"]["pids"]["limit"] == 77


def test_delete_removes_the_container_s_delegated_cgroup(rl_ocirt, rl_bundle, delegated_cgroup,
                                                        cid):
    d = _delegated(rl_bundle, delegated_cgroup, cid, {"pids": {"limit": 42}})
    rl_ocirt.ok("run", "-d", "--bundle", str(rl_bundle.path), cid)
    rl_ocirt.ok("delete", "--force", cid)
    assert not any(Path(p).exists() for p in d.values())
    assert Path(d["pids"]).parent.is_dir()      # the delegated parent stays
