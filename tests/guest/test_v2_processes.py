"""ps and exec --cgroup on a pure cgroup v2 host: the container's processes are those of its
cgroup and of every sub-cgroup below it; exec --cgroup joins a sub-cgroup of the unified
hierarchy, where a controller prefix names no hierarchy (as in runc)."""

from __future__ import annotations

import json
import os

from ocirt_testlib import wait_until

from v2lib import read, start, needs_pure_v2

pytestmark = needs_pure_v2


def procs(d: str) -> list[int]:
    return sorted(int(x) for x in read(d, "cgroup.procs").split())


def test_ps_lists_the_processes_of_sub_cgroups_too(ocirt, bundle, cid):
    d = start(ocirt, bundle, cid, script="sleep 1001 & sleep 1002 & wait")
    wait_until(lambda: len(procs(d)) == 3, "three processes")
    sub = os.path.join(d, "sub")
    os.mkdir(sub)
    moved = procs(d)[-1]
    with open(os.path.join(sub, "cgroup.procs"), "w") as f:
        f.write(str(moved))
    got = json.loads(ocirt.ok("ps", "--format", "json", cid).stdout)
    assert sorted(got) == sorted(procs(d) + [moved])


def test_exec_cgroup_puts_the_process_in_the_sub_cgroup(ocirt, bundle, cid):
    d = start(ocirt, bundle, cid)
    os.mkdir(os.path.join(d, "sub"))
    ocirt.ok("exec", "--detach", "--cgroup", "sub", cid, "sleep", "1003")
    wait_until(lambda: len(procs(os.path.join(d, "sub"))) == 1, "the exec'd process")
    pid = procs(os.path.join(d, "sub"))[0]
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read() == b"sleep\0" + b"1003\0"


def test_exec_cgroup_with_a_controller_prefix_is_refused_as_runc_refuses_it(ocirt, runc, bundle,
                                                                            cid):
    d = start(ocirt, bundle, cid)
    os.mkdir(os.path.join(d, "sub"))
    p = ocirt("exec", "--cgroup", "memory:sub", cid, "true")
    assert p.returncode == 255 and b"unknown controller memory" in p.stderr, p.stderr
    assert procs(os.path.join(d, "sub")) == []
    start(runc, bundle, cid + "-runc")
    r = runc("exec", "--cgroup", "memory:sub", cid + "-runc", "true")
    assert r.returncode != 0 and b"unknown controller memory" in r.stderr, r.stderr


def test_exec_joins_the_init_cgroup_when_domain_controllers_leave_no_room(ocirt, bundle, cid):
    # The init moved itself into a sub-cgroup and enabled memory for its children (systemd as
    # a container's init does this): the container's cgroup may hold no process now, and an
    # exec joins the init's cgroup instead, as with runc (its cgroups.bats, "cgroup v2 + init
    # process in non-root cgroup").
    d = start(ocirt, bundle, cid)
    sub = os.path.join(d, "init")
    os.mkdir(sub)
    with open(os.path.join(sub, "cgroup.procs"), "w") as f:
        f.write(str(ocirt.state(cid)["pid"]))
    with open(os.path.join(d, "cgroup.subtree_control"), "w") as f:
        f.write("+memory")
    ocirt.ok("exec", "--detach", cid, "sleep", "1004")
    wait_until(lambda: len(procs(sub)) == 2, "the exec'd process in the init's cgroup")
    assert procs(d) == []
    ocirt.ok("delete", "--force", cid)
    assert not os.path.exists(d)
