"""hugetlb (on cgroup2 on this hybrid host), unified keys, stats() shape, and the controllers
this host cannot offer."""

from __future__ import annotations

import json
import os

import pytest

from ocirt.cgroups.controllers import rdma
from ocirt.cgroups.detect import Host
from ocirt.cgroups.manager import Manager
from ocirt.errors import ConfigError

from cghelpers import need_hugepages, on_v2, read, v2_host, wait_for

MiB = 1 << 20


def test_hugetlb_routed_to_cgroup2(make):
    need_hugepages(2048, 1048576)
    m = make()
    if m.route("hugetlb") != (2, m.paths.get("")):
        pytest.skip("hugetlb is not on cgroup2 here")
    m.create({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB},
                                 {"pageSize": "1GB", "limit": 0}]})
    d = m.paths[""]
    assert read(d, "hugetlb.2MB.max") == str(4 * MiB)
    assert read(d, "hugetlb.1GB.max") == "0"
    if os.path.exists(os.path.join(d, "hugetlb.2MB.rsvd.max")):
        assert read(d, "hugetlb.2MB.rsvd.max") == str(4 * MiB)
    m.update({"hugepageLimits": [{"pageSize": "2MB", "limit": 8 * MiB}]})
    assert read(d, "hugetlb.2MB.max") == str(8 * MiB)
    assert set(m.stats()["hugetlb"]) == {"2MB", "1GB"}


def test_unified_keys(make):
    need_hugepages(2048)
    m = make()
    if m.route("hugetlb") != (2, m.paths.get("")):
        pytest.skip("hugetlb is not on cgroup2 here")
    m.create({"unified": {"hugetlb.2MB.max": "2097152", "cgroup.max.descendants": "3"}})
    d = m.paths[""]
    assert read(d, "hugetlb.2MB.max") == "2097152"
    assert read(d, "cgroup.max.descendants") == "3"
    with pytest.raises(ConfigError) as e:
        m.update({"unified": {"hugetlb.2MB.nosuchfile": "1"}})
    assert e.value.path == 'linux.resources.unified["hugetlb.2MB.nosuchfile"]'
    with pytest.raises(ConfigError) as e:
        m.update({"unified": {"../escape.max": "1"}})
    assert e.value.path == 'linux.resources.unified["../escape.max"]'
    if on_v2("memory"):
        # a pure v2 host: memory's files are unified keys like any other
        m.update({"unified": {"memory.max": "67108864", "memory.high": "33554432"}})
        assert read(d, "memory.max") == "67108864" and read(d, "memory.high") == "33554432"
        absent = "net_cls.classid"        # net_cls never exists on cgroup v2
    else:
        absent = "memory.max"             # memory is on v1 here
    with pytest.raises(ConfigError) as e:
        m.validate({"unified": {absent: "1"}})
    ctrl = absent.partition(".")[0]
    assert f"invalid configuration: controller '{ctrl}'" in str(e.value)


def test_unified_on_v1_only_host(make):
    from ocirt.cgroups import detect
    h = detect.host()
    m = make(host=Host(mode="v1", v1=h.v1))
    with pytest.raises(ConfigError) as e:
        m.validate({"unified": {"pids.max": "10"}})
    assert e.value.path == 'linux.resources.unified["pids.max"]'
    assert "invalid configuration: cannot use unified on cgroup v1" in str(e.value)


def test_unavailable_controllers_are_errors(make):
    m = make()
    for res, field in [({"network": {"classID": 0x100001}}, "linux.resources.network"),
                       ({"network": {"priorities": [{"name": "eth0", "priority": 1}]}},
                        "linux.resources.network"),
                       ({"rdma": {"mlx5_0": {"hcaHandles": 3}}}, "linux.resources.rdma")]:
        if m.route(field.split(".")[-1]) is not None:
            continue
        with pytest.raises(ConfigError) as e:
            m.create(res)
        assert e.value.path == field
    assert rdma.line("mlx5_0", {"hcaHandles": 3, "hcaObjects": 4}) == \
        "mlx5_0 hca_handle=3 hca_object=4"


# runc 1.1.5's `events --stats` on this host (hybrid, v1 controllers): the member names and
# which of them Go's omitempty drops when zero.
RUNC_TOP = {"cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt",
            "network_interfaces"}
RUNC_CPUSET = {"cpus", "cpu_exclusive", "mems", "mem_hardwall", "mem_exclusive",
               "memory_migrate", "memory_spread_page", "memory_spread_slab", "memory_pressure",
               "sched_load_balance", "sched_relax_domain_level"}


def test_stats_shape_like_runc(make, spawn):
    m = make()
    m.create({"memory": {"limit": 64 * MiB}, "pids": {"limit": 42},
              "cpu": {"quota": 50000, "period": 100000, "cpus": "0", "mems": "0"}})
    p = spawn(m, ["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 100"])
    wait_for(lambda: m.stats()["cpu"]["usage"].get("total", 0) > 0, what="cpu usage")
    s = json.loads(json.dumps(m.stats()))
    assert set(s) == RUNC_TOP and s["network_interfaces"] is None and s["intel_rdt"] == {}
    assert set(s["cpuset"]) == RUNC_CPUSET and s["cpuset"]["cpus"] == [0]
    u = s["cpu"]["usage"]
    assert {"kernel", "user"} <= set(u)
    if on_v2("cpu"):
        # cgroup v2's cpu.stat has no per-CPU counters: runc leaves them out (omitempty)
        assert not {"percpu", "percpu_kernel", "percpu_user"} & set(u)
    else:
        assert len(u["percpu"]) == os.cpu_count()
        assert len(u["percpu_kernel"]) == len(u["percpu_user"]) == os.cpu_count()
    assert set(s["cpu"]["throttling"]) <= {"periods", "throttledPeriods", "throttledTime"}
    mem = s["memory"]
    assert set(mem) >= {"usage", "swap", "kernel", "kernelTCP", "raw"}
    assert mem["usage"]["limit"] == 64 * MiB and "failcnt" in mem["usage"]
    if on_v2("memory"):
        assert {"anon", "file", "pgfault"} <= set(mem["raw"])      # memory.stat of v2
    else:
        assert "total_rss" in mem["raw"] and "hierarchical_memory_limit" in mem["raw"]
    assert s["pids"] == {"current": 2, "limit": 42} or s["pids"]["limit"] == 42
    for e in s["blkio"].get("ioServiceBytesRecursive", []):
        assert set(e) <= {"major", "minor", "op", "value"}
    p.kill()


def test_v2_stats_and_pids(make, spawn):
    need_hugepages(2048)
    if "hugetlb" not in v2_host().v2_controllers:
        pytest.skip("hugetlb is not on the cgroup v2 hierarchy here")
    m = make("/{prefix}-v2s/{id}", host=v2_host())
    m.create({"hugepageLimits": [{"pageSize": "2MB", "limit": 2 * MiB}]})
    p = spawn(m, ["sleep", "100"])
    wait_for(lambda: m.pids() == [p.pid], what="pid")
    s = m.stats()
    assert "2MB" in s["hugetlb"]
    if "pids" in v2_host().v2_controllers:
        assert s["pids"] == {"current": 1}                # pids.max "max": limit omitted
    else:
        assert s["pids"] == {}                            # no v2 pids controller here
    assert m.oom_events() == 0
    p.kill()


def test_manager_for_host_without_any_hierarchy():
    m = Manager.for_host(Host(mode="v1"), "x", None)
    from ocirt.errors import CgroupError
    with pytest.raises(CgroupError, match="no cgroup hierarchy"):
        m.create(None)
