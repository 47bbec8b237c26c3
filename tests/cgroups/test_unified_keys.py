"""linux.resources.unified on real containers: only resource files of the cgroup v2 hierarchy
are written; a key that would move a process into the container's cgroup (or reshape,
freeze or kill it) is refused at create and at update, and nothing moves.

The pid offered to cgroup.procs is a sleeper of the test's own, never PID 1: should the check
ever regress, only that sleeper is moved. PID 1's cgroups are checked as well."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ocirt_testlib import (cgroup_dirs, cgroup_dirs_named, cgroup_mounts,
                           read_cgroup_file as read)

UNIFIED_ROOT = cgroup_mounts()[1] or "/sys/fs/cgroup/unified"

# Core cgroup2 files that are not resource limits (the kernel's cgroup-v2.rst, "Core Interface
# Files"), and names that are no file of the container's cgroup at all.
NOT_RESOURCES = ["cgroup.procs", "cgroup.threads", "cgroup.subtree_control", "cgroup.kill",
                 "cgroup.freeze", "cgroup.type", "cgroup.pressure", "../cgroup.procs",
                 "hugetlb.2MB.max/../../cgroup.procs", ".."]


def own_cgroup(pid: int) -> str:
    return Path(f"/proc/{pid}/cgroup").read_text()


@pytest.fixture
def sleeper():
    p = subprocess.Popen(["sleep", "300"])
    yield p.pid
    p.kill()
    p.wait()


def cgroup2_has(controller: str) -> bool:
    try:
        return controller in Path(UNIFIED_ROOT, "cgroup.controllers").read_text().split()
    except OSError:
        return False


def with_unified(bundle, unified: dict) -> None:
    bundle.args("sleep", "100")
    bundle.config["linux"].setdefault("resources", {})["unified"] = unified
    bundle.write()


def error_of(ocirt, *args: str, input: bytes | None = None) -> str:
    """The one error message of a failing command (JSON log lines on stderr)."""
    p = ocirt(*args, input=input, global_args=("--log-format", "json"))
    assert p.returncode == 1
    lines = p.stderr.decode(errors="replace").strip().splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])["msg"]


@pytest.mark.parametrize("key", NOT_RESOURCES)
def test_create_refuses_a_unified_key_that_is_not_a_resource_file(ocirt, bundle, cid, sleeper,
                                                                  key):
    before, pid1 = own_cgroup(sleeper), own_cgroup(1)
    with_unified(bundle, {key: str(sleeper)})
    msg = error_of(ocirt, "create", "--bundle", str(bundle.path), cid)
    assert f': config.json: linux.resources.unified["{key}"]: ' in msg, msg
    assert own_cgroup(sleeper) == before and own_cgroup(1) == pid1
    assert ocirt.ids() == [] and cgroup_dirs_named(cid) == []


def test_update_refuses_cgroup_procs_and_the_pid_stays_where_it_was(ocirt, bundle, cid,
                                                                   sleeper):
    before, pid1 = own_cgroup(sleeper), own_cgroup(1)
    bundle.args("sleep", "100")
    ocirt.ok("run", "--detach", "--bundle", str(bundle.path), cid)
    dirs = cgroup_dirs(ocirt.state(cid)["pid"])
    procs = {k: read(d, "cgroup.procs") for k, d in dirs.items()}
    for key in ("cgroup.procs", "cgroup.threads"):
        msg = error_of(ocirt, "update", "--resources", "-", cid,
                       input=json.dumps({"unified": {key: str(sleeper)}}).encode())
        assert msg.startswith(f'resources: linux.resources.unified["{key}"]: '), msg
    assert own_cgroup(sleeper) == before and own_cgroup(1) == pid1
    assert {k: read(d, "cgroup.procs") for k, d in dirs.items()} == procs
    ocirt.ok("delete", "--force", cid)
    assert not any(os.path.exists(d) for d in dirs.values())


def test_unified_key_of_a_controller_not_in_cgroup2_is_an_invalid_configuration(ocirt, bundle,
                                                                               cid):
    # runc's cgroups.bats "cgroup v1 + unified resources should fail" (memory is v1 on the
    # hybrid test machine); on a pure v2 host, net_cls (a v1-only controller) is missing.
    key = "net_cls.classid" if cgroup2_has("memory") else "memory.min"
    with_unified(bundle, {key: "131072"})
    msg = error_of(ocirt, "run", "--detach", "--bundle", str(bundle.path), cid)
    assert f': config.json: linux.resources.unified["{key}"]: invalid configuration' in msg, msg
    assert ocirt.ids() == [] and cgroup_dirs_named(cid) == []


def test_unified_writes_cgroup2_controller_files_and_subtree_limits(ocirt, bundle, cid):
    if not cgroup2_has("hugetlb") or not os.path.isdir("/sys/kernel/mm/hugepages/"
                                                       "hugepages-2048kB"):
        pytest.skip("no hugetlb controller with 2MB pages on the cgroup v2 hierarchy")
    with_unified(bundle, {"hugetlb.2MB.max": "4194304", "cgroup.max.descendants": "2",
                          "cgroup.max.depth": "1"})
    ocirt.ok("run", "--detach", "--bundle", str(bundle.path), cid)
    d = cgroup_dirs(ocirt.state(cid)["pid"])[""]
    assert read(d, "hugetlb.2MB.max") == "4194304"
    assert read(d, "cgroup.max.descendants") == "2" and read(d, "cgroup.max.depth") == "1"
    where = "/sys/fs/cgroup" if UNIFIED_ROOT == "/sys/fs/cgroup" else "/sys/fs/cgroup/unified"
    inside = ocirt.ok("exec", cid, "cat", f"{where}/hugetlb.2MB.max").stdout
    assert inside.decode().strip() == "4194304"
    ocirt.ok("update", "--resources", "-", cid,
             input=json.dumps({"unified": {"hugetlb.2MB.max": "2097152"}}).encode())
    assert read(d, "hugetlb.2MB.max") == "2097152"
