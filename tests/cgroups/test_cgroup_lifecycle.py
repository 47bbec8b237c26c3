"""create / add / state / destroy, ownership of parent cgroups, refusals and rollback."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ocirt.cgroups import manager
from ocirt.errors import CgroupError, ConfigError

from cghelpers import PREFIX, all_dirs, cg_dir, read, wait_for


def test_create_add_pids_destroy(make, spawn):
    m = make()
    assert all(d.endswith("/ocirt/" + m.container_id) for d in m.paths.values())
    m.create(None)
    assert all(os.path.isdir(d) for d in all_dirs(m))
    p = spawn(m, ["sleep", "100"])
    wait_for(lambda: p.pid in m.pids(), what="pid in cgroup")
    for d in all_dirs(m):          # every hierarchy, cgroup2 included
        assert str(p.pid) in read(d, "cgroup.procs").split()
    p.kill()
    p.wait()
    m.destroy()
    assert not any(os.path.exists(d) for d in all_dirs(m))
    m.destroy()                    # idempotent


def test_state_round_trip(make):
    m = make()
    m.create({"pids": {"limit": 7}})
    st = json.loads(json.dumps(m.to_state()))
    m2 = manager.from_state(st)
    assert m2.paths == m.paths and m2.created == m.created and m2.mode == m.mode
    m2.update({"pids": {"limit": 9}})
    assert read(cg_dir(m, "pids"), "pids.max") == "9"
    m2.destroy()
    assert not any(os.path.exists(d) for d in all_dirs(m))


def test_pod_parent_shared_and_preexisting_parent_kept(make, spawn):
    a = make("/{prefix}-pod/a")
    b = make("/{prefix}-pod/b")
    a.create(None)
    b.create(None)
    pa, pb = spawn(a, ["sleep", "100"]), spawn(b, ["sleep", "100"])
    wait_for(lambda: a.pids() == [pa.pid] and b.pids() == [pb.pid], what="pids")
    pod_dirs = {os.path.dirname(d) for d in a.paths.values()}
    a.destroy()
    assert pb.poll() is None, "destroying one container must not touch its sibling"
    assert all(os.path.isdir(d) for d in pod_dirs) and all(os.path.isdir(d) for d in all_dirs(b))
    b.destroy()
    assert not any(os.path.exists(d) for d in all_dirs(b))
    # the pod cgroup was created by `a`: it goes only when empty, and `b` never created it
    for d in pod_dirs:
        if os.path.isdir(d):
            os.rmdir(d)
    # a parent that existed before is never removed
    c = make("/{prefix}-pre/c")
    pre = {os.path.dirname(d) for d in c.paths.values()}
    for d in pre:
        os.makedirs(d, exist_ok=True)
    try:
        c.create(None)
        c.destroy()
        assert all(os.path.isdir(d) for d in pre)
    finally:
        for d in pre:
            os.rmdir(d)


def test_default_parent_goes_with_its_last_container(make):
    a, b = make(), make()
    parent = os.path.dirname(cg_dir(a, "pids"))
    a.create(None)
    b.create(None)
    a.destroy()
    assert os.path.isdir(parent) and os.path.isdir(cg_dir(b, "pids"))
    b.destroy()
    # gone, unless some other container (not ours) lives there
    assert not os.path.isdir(parent) or any(
        e.is_dir() for e in os.scandir(parent))


def test_refuse_non_empty_existing_cgroup(make, spawn):
    a = make("/{prefix}-busy")
    a.create(None)
    p = spawn(a, ["sleep", "100"])
    wait_for(lambda: a.pids() == [p.pid], what="pid")
    b = make("/{prefix}-busy")
    with pytest.raises(CgroupError, match="not empty: 1 process"):
        b.create(None)
    assert p.poll() is None and all(os.path.isdir(d) for d in all_dirs(a))


def test_refuse_frozen_existing_cgroup(make):
    a = make("/{prefix}-frozen")
    a.create(None)
    a.freeze()
    b = make("/{prefix}-frozen")
    with pytest.raises(CgroupError, match="unexpectedly frozen"):
        b.create(None)
    a.thaw()


def test_rollback_on_kernel_refusal_leaves_nothing(make):
    m = make("/{prefix}-rb/{id}")
    with pytest.raises(ConfigError) as e:
        m.create({"pids": {"limit": 5}, "cpu": {"cpus": "63"}})   # no CPU 63 here
    assert e.value.path == "linux.resources.cpu.cpus"
    assert not any(os.path.exists(d) for d in all_dirs(m))
    assert not any(os.path.exists(os.path.dirname(d)) for d in all_dirs(m))


def test_validate_has_no_side_effects_and_names_fields(make):
    m = make()
    bad = [({"memory": {"limit": "1G"}}, "linux.resources.memory.limit"),
           ({"memory": {"limit": 100, "swap": 50}}, "linux.resources.memory.swap"),
           ({"memory": {"swappiness": 101}}, "linux.resources.memory.swappiness"),
           ({"cpu": {"cpus": "0-"}}, "linux.resources.cpu.cpus"),
           ({"cpu": {"mems": "a"}}, "linux.resources.cpu.mems"),
           ({"cpu": {"shares": 1}}, "linux.resources.cpu.shares"),
           ({"cpu": {"idle": 2}}, "linux.resources.cpu.idle"),
           ({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]},
            "linux.resources.hugepageLimits[0].pageSize"),
           ({"devices": [{"allow": True, "access": ""}]}, "linux.resources.devices[0].access"),
           ({"blockIO": {"weight": 5}}, "linux.resources.blockIO.weight"),
           # net_cls exists only on cgroup v1: never a cgroup2 controller
           ({"unified": {"net_cls.classid": "1"}}, 'linux.resources.unified["net_cls.classid"]'),
           ({"unified": {"nodot": "1"}}, "linux.resources.unified.nodot"),
           ({"network": {"classID": 1}}, "linux.resources.network")]
    if m.route("rdma") is None:
        # where the rdma controller exists, the device name is the kernel's to judge (at
        # create: tests/guest/test_v2_controllers.py)
        bad.append(({"rdma": {"mlx5_0": {"hcaHandles": 1}}}, "linux.resources.rdma"))
    for res, field in bad:
        with pytest.raises(ConfigError) as e:
            m.validate(res)
        assert e.value.path == field, (res, e.value)
    assert not any(os.path.exists(d) for d in all_dirs(m))
    with pytest.raises(ConfigError) as e:
        m.create({"pids": {"limit": 3}, "memory": {"limit": True}})
    assert not any(os.path.exists(d) for d in all_dirs(m))


def test_update_error_names_resources_source(make):
    m = make()
    m.create(None)
    with pytest.raises(ConfigError) as e:
        m.update({"pids": {"limit": "x"}})
    assert e.value.source == "resources" and e.value.path == "linux.resources.pids.limit"


def test_rootless_without_permission_goes_without(make):
    # As root everything is permitted; this only checks the flag round-trips.
    m = make(rootless=True)
    m.create(None)
    assert manager.from_state(m.to_state()).rootless is True


def test_add_joins_the_init_cgroup_where_domain_controllers_leave_no_room(make, spawn):
    # cgroup v2: once the container's cgroup enables a domain controller for its children
    # (after moving its init into one), it may hold no process itself: exec joins the init's.
    from cghelpers import v2_host
    m = make("/{prefix}-nip/{id}", host=v2_host())
    domain = next((c for c in ("memory", "pids", "hugetlb") if c in m.v2_controllers), None)
    if domain is None:
        pytest.skip("no domain controller on this host's cgroup2 hierarchy")
    m.create(None)
    d = m.paths[""]
    init = spawn(m, ["sleep", "100"])
    wait_for(lambda: m.pids() == [init.pid], what="the init in its cgroup")
    sub = os.path.join(d, "init")
    os.mkdir(sub)
    with open(os.path.join(sub, "cgroup.procs"), "w") as f:
        f.write(str(init.pid))
    with open(os.path.join(d, "cgroup.subtree_control"), "w") as f:
        f.write("+" + domain)
    with pytest.raises(subprocess.SubprocessError):      # without init_pid: refused
        subprocess.Popen(["sleep", "101"], preexec_fn=lambda: m.add(os.getpid()))
    q = subprocess.Popen(["sleep", "102"], preexec_fn=lambda: m.add(os.getpid(),
                                                                     init_pid=init.pid))
    try:
        wait_for(lambda: q.pid in [int(x) for x in read(sub, "cgroup.procs").split()],
                 what="the process in the init's cgroup")
    finally:
        q.kill()
        q.wait()
