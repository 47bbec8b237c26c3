"""The container's cgroups through the CLI, on real containers, checked in cgroupfs: device
access letters, exec --cgroup, and what delete leaves (nothing, paused or not)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ocirt_testlib import (block_device, cgroup_dirs, cgroup_mounts, pure_cgroup_v2,
                           read_cgroup_file as read)

V1_MOUNTS, _ = cgroup_mounts()


def need_v1(*controllers: str) -> None:
    missing = [c for c in controllers if c not in V1_MOUNTS]
    if missing:
        pytest.skip(f"needs the cgroup v1 {', '.join(missing)} hierarchy")


def running(ocirt, bundle, cid: str, script: str) -> dict[str, str]:
    """Run a detached container; its cgroup directories, from the init's /proc/PID/cgroup."""
    bundle.sh(script)
    ocirt.ok("run", "--detach", "--bundle", str(bundle.path), cid)
    return cgroup_dirs(ocirt.state(cid)["pid"])


def procs(d: str) -> list[int]:
    return [int(x) for x in read(d, "cgroup.procs").split()]


def dead(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


# --- device rules -------------------------------------------------------------------------

def test_device_access_letters_other_than_rwm_are_dropped_with_a_warning(ocirt, bundle, cid):
    # (the v1 devices controller, or the eBPF filter of a pure cgroup v2 host)
    # runc's update.bats writes "rwa" for /dev/kmsg the same way. Opened for writing only
    # (reading needs CAP_SYSLOG), and nothing is written.
    bundle.config["linux"]["devices"] = [{"path": "/dev/kmsg", "type": "c", "major": 1,
                                          "minor": 11}]
    bundle.config["linux"]["resources"]["devices"] = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "rwa"}]
    bundle.sh("exec 3>/dev/kmsg && echo opened")
    p = ocirt("run", "--bundle", str(bundle.path), cid, global_args=("--log-format", "json"))
    assert p.returncode == 0 and p.stdout.decode().strip() == "opened", p.stderr
    warnings = [json.loads(line)["msg"] for line in p.stderr.decode().splitlines()]
    assert warnings == ["linux.resources.devices[1].access: ignoring unknown device access "
                        "'a' in 'rwa' (only r, w and m exist)"]


def test_device_rule_granting_no_known_access_is_refused(ocirt, bundle, cid):
    bundle.config["linux"]["resources"]["devices"] = [
        {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "xyz"}]
    bundle.args("true")
    p = ocirt("run", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    assert b"linux.resources.devices[0].access: must contain r, w or m" in p.stderr
    assert ocirt.ids() == []


def test_device_access_in_cgroupfs_keeps_only_rwm(ocirt, bundle, cid):
    bundle.config["linux"]["resources"]["devices"] = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "wazr"}]
    if pure_cgroup_v2():
        # No list to read back from an eBPF filter: what it lets through is the rule.
        # /dev/kmsg opens for writing; a node of a disk made in the container's /dev (runc's
        # defaults allow mknod of any device; CAP_MKNOD is added) cannot be read.
        dev = block_device()
        if dev is None:
            pytest.skip("no block device in /proc/partitions")
        caps = bundle.config["process"]["capabilities"]
        for kind in ("bounding", "effective", "permitted"):
            caps[kind].append("CAP_MKNOD")
        bundle.config["linux"]["devices"] = [{"path": "/dev/kmsg", "type": "c", "major": 1,
                                              "minor": 11}]
        bundle.sh(f"(exec 3>/dev/kmsg) && echo kmsg ok; mknod /dev/d b {dev[0]} {dev[1]} && "
                  "{ head -c1 /dev/d >/dev/null 2>&1 && echo disk ok || echo disk denied; }")
        p = ocirt("run", "--bundle", str(bundle.path), cid)
        assert p.stdout.decode().splitlines() == ["kmsg ok", "disk denied"], p.stderr
        return
    d = running(ocirt, bundle, cid, "sleep 100")["devices"]
    assert "c 1:11 rw" in read(d, "devices.list").splitlines()


def test_default_device_rules_are_runcs(ocirt, runc, bundle, cid):
    if pure_cgroup_v2():
        pytest.skip("no devices.list on cgroup v2: tests/guest/test_v2_devices.py compares "
                    "what the filters let through")
    need_v1("devices")
    theirs = running(runc, bundle, cid + "-runc", "sleep 100")["devices"]
    ours = running(ocirt, bundle, cid, "sleep 100")["devices"]
    listed = sorted(read(ours, "devices.list").splitlines())
    assert listed == sorted(read(theirs, "devices.list").splitlines())
    assert "c 10:200 rwm" in listed       # /dev/net/tun, as runc 1.1.5


# --- exec --cgroup ------------------------------------------------------------------------

@pytest.mark.parametrize("arg", ["..", "../sibling", "a/../..", "memory:..", "pids:/../x"])
def test_exec_cgroup_outside_the_container_is_refused(ocirt, bundle, cid, arg):
    v2 = pure_cgroup_v2()
    if not v2:
        need_v1("memory", "pids")
    dirs = running(ocirt, bundle, cid, "sleep 100")
    before = {k: procs(d) for k, d in dirs.items()}
    p = ocirt("exec", "--cgroup", arg, cid, "true")
    assert p.returncode == 255
    ctrl, _, sub = arg.rpartition(":")
    if v2 and ctrl:
        # cgroup v2 has one hierarchy: a controller prefix names none (runc: the same)
        assert f"unknown controller {ctrl}".encode() in p.stderr, p.stderr
    else:
        assert f"{sub} is not a sub cgroup path".encode() in p.stderr, p.stderr
    assert {k: procs(d) for k, d in dirs.items()} == before


def test_exec_cgroup_joins_an_existing_sub_cgroup_of_the_unified_hierarchy(ocirt, bundle,
                                                                           cid):
    if not pure_cgroup_v2():
        pytest.skip("a hybrid or v1 host: test_exec_cgroup_joins_existing_sub_cgroups_per_"
                    "controller covers it")
    dirs = running(ocirt, bundle, cid, "sleep 100")
    os.mkdir(os.path.join(dirs[""], "sub"))
    init = ocirt.ok("exec", cid, "cat", "/proc/1/cgroup").stdout.decode().strip()
    out = ocirt.ok("exec", "--cgroup", "sub", cid, "cat", "/proc/self/cgroup").stdout.decode()
    assert out.strip() == init.rstrip("/") + "/sub"
    # delete removes the sub-cgroup with the container's own
    ocirt.ok("delete", "--force", cid)
    assert not os.path.exists(dirs[""])


def test_exec_cgroup_joins_existing_sub_cgroups_per_controller(ocirt, bundle, cid):
    if pure_cgroup_v2():
        pytest.skip("cgroup v2 has no per-controller hierarchies: test_exec_cgroup_joins_an_"
                    "existing_sub_cgroup_of_the_unified_hierarchy covers it")
    need_v1("memory", "cpu", "pids")
    dirs = running(ocirt, bundle, cid, "sleep 100")
    os.mkdir(os.path.join(dirs["memory"], "submem"))
    os.mkdir(os.path.join(dirs["pids"], "subpids"))
    out = ocirt.ok("exec", "--cgroup", "memory:submem", "--cgroup", "pids:/subpids", cid,
                   "cat", "/proc/self/cgroup").stdout.decode()
    lines = dict(line.split(":", 2)[1:] for line in out.splitlines())
    own = dict(line.split(":", 2)[1:] for line in
               Path(f"/proc/{ocirt.state(cid)['pid']}/cgroup").read_text().splitlines())
    assert lines["memory"] == own["memory"] + "/submem"
    assert lines["pids"] == own["pids"] + "/subpids"
    cpu = next(k for k in lines if "cpu" in k.split(",") or k == "cpu")
    assert lines[cpu] == own[cpu], "controllers not named stay in the container's cgroup"
    # delete removes the sub-cgroups with the container's own
    ocirt.ok("delete", "--force", cid)
    assert not any(os.path.exists(d) for d in dirs.values())


def test_exec_cgroup_that_does_not_exist_fails_and_leaves_no_process(ocirt, bundle, cid):
    dirs = running(ocirt, bundle, cid, "sleep 100")
    before = {k: procs(d) for k, d in dirs.items()}
    p = ocirt("exec", "--cgroup", "nonexistent", cid, "sleep", "1234")
    assert p.returncode != 0
    # runc's words, which its exec.bats matches
    assert b" adding pid " in p.stderr, p.stderr
    assert b"/nonexistent/cgroup.procs: no such file or directory" in p.stderr, p.stderr
    assert {k: procs(d) for k, d in dirs.items()} == before


def test_exec_cgroup_argument_errors_are_runcs(ocirt, bundle, cid):
    running(ocirt, bundle, cid, "sleep 100")
    for args, msg in [(["--cgroup", "a:b:c"], b"invalid --cgroup argument: a:b:c"),
                      (["--cgroup", "x", "--cgroup", "memory:y"],
                       b"invalid --cgroup argument: x (missing <controller>: prefix)"),
                      (["--cgroup", "whaaat:/"], b"unknown controller whaaat")]:
        p = ocirt("exec", *args, cid, "true")
        assert p.returncode == 255 and msg in p.stderr, p.stderr


# --- cgroupsPath -------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "//", "/./", "///."])
def test_cgroups_path_naming_a_hierarchy_root_is_refused(ocirt, bundle, cid, path):
    bundle.config["linux"]["cgroupsPath"] = path
    bundle.args("true")
    p = ocirt("run", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    assert b"linux.cgroupsPath" in p.stderr and b"names the root cgroup" in p.stderr, p.stderr
    assert ocirt.ids() == []


# --- delete -------------------------------------------------------------------------------

def test_delete_removes_cgroups_that_existed_before_create(ocirt, bundle, cid):
    v1, unified = cgroup_mounts()
    rel = f"/ocirt-pre-{cid}/{cid}"
    mounts = set(v1.values()) | ({unified} if unified else set())
    made = [m + rel for m in sorted(mounts)]
    for d in made:
        os.makedirs(d)
    try:
        bundle.config["linux"]["cgroupsPath"] = rel
        running(ocirt, bundle, cid, "sleep 100")
        ocirt.ok("delete", "--force", cid)
        assert [d for d in made if os.path.exists(d)] == []
        # the parent existed before too, and is nobody's to remove
        assert all(os.path.isdir(os.path.dirname(d)) for d in made)
    finally:
        for d in made:
            for x in (d, os.path.dirname(d)):
                try:
                    os.rmdir(x)
                except FileNotFoundError:
                    pass


def test_delete_force_of_a_paused_container_with_a_frozen_sub_cgroup(ocirt, bundle, cid):
    v2 = pure_cgroup_v2()
    if not v2:
        need_v1("freezer")
    dirs = running(ocirt, bundle, cid, "sleep 101 & sleep 102 & wait")
    fz = dirs[""] if v2 else dirs["freezer"]
    sub = os.path.join(fz, "frozen-by-itself")
    os.mkdir(sub)
    pids = procs(fz)
    victim = next(p for p in pids if Path(f"/proc/{p}/cmdline").read_bytes().startswith(
        b"sleep\x00102"))
    Path(sub, "cgroup.procs").write_text(str(victim))
    Path(sub, "cgroup.freeze" if v2 else "freezer.state").write_text("1" if v2 else "FROZEN")
    ocirt.ok("pause", cid)
    if v2:
        # frozen on its own: stays frozen when its parent thaws
        assert read(sub, "cgroup.freeze") == "1"
    else:
        assert read(sub, "freezer.self_freezing") == "1"
    ocirt.ok("delete", "--force", cid)
    assert ocirt.ids() == []
    assert not any(os.path.exists(d) for d in dirs.values())
    assert all(dead(p) for p in pids)


def test_delete_force_of_a_paused_container_kills_and_removes_everything(ocirt, bundle, cid):
    v2 = pure_cgroup_v2()
    if not v2:
        need_v1("freezer")
    dirs = running(ocirt, bundle, cid, "sleep 101 & sleep 102 & wait")
    fz = dirs[""] if v2 else dirs["freezer"]
    pids = procs(fz)
    ocirt.ok("pause", cid)
    if v2:
        assert read(fz, "cgroup.freeze") == "1" and "frozen 1" in read(fz, "cgroup.events")
    else:
        assert read(fz, "freezer.state") == "FROZEN"
    ocirt.ok("delete", "--force", cid)
    assert ocirt.ids() == []
    assert not any(os.path.exists(d) for d in dirs.values())
    assert all(dead(p) for p in pids)
