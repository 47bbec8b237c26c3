"""cpu and cpuset: files, update, conversions, throttling for real, the v1 cpuset pitfall."""

from __future__ import annotations

import os
import sys

import pytest

from ocirt.cgroups.controllers import blkio, cpu
from ocirt.errors import ConfigError

from cghelpers import cg_dir, need_files, on_v2, read, wait_for


def test_cpu_files_create_update(make):
    if on_v2("cpu"):
        _cpu_files_create_update_v2(make())
        return
    need_files("cpu", "cpu.cfs_burst_us", "cpu.idle", "cpu.rt_period_us")
    m = make()
    m.create({"cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 10000,
                      "idle": 0, "realtimePeriod": 500000}})
    d = m.paths["cpu"]
    assert read(d, "cpu.shares") == "512"
    assert read(d, "cpu.cfs_quota_us") == "50000"
    assert read(d, "cpu.cfs_period_us") == "100000"
    assert read(d, "cpu.cfs_burst_us") == "10000"
    assert read(d, "cpu.idle") == "0"
    assert read(d, "cpu.rt_period_us") == "500000"
    m.update({"cpu": {"quota": -1, "period": 20000, "shares": 1024, "idle": 1}})
    assert read(d, "cpu.cfs_quota_us") == "-1"
    assert read(d, "cpu.cfs_period_us") == "20000"
    assert read(d, "cpu.idle") == "1"        # shares are moot (and skipped) while idle
    m.update({"cpu": {"idle": 0, "shares": 1024}})
    assert read(d, "cpu.shares") == "1024" and read(d, "cpu.idle") == "0"


def _cpu_files_create_update_v2(m) -> None:
    need_files("cpu", "cpu.max.burst", "cpu.idle")
    m.create({"cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 10000,
                      "idle": 0}})
    d = cg_dir(m, "cpu")
    assert read(d, "cpu.weight") == "20"         # runc's shares -> weight conversion
    assert read(d, "cpu.max") == "50000 100000"
    assert read(d, "cpu.max.burst") == "10000"
    assert read(d, "cpu.idle") == "0"
    m.update({"cpu": {"quota": -1, "period": 20000, "shares": 1024, "idle": 1}})
    assert read(d, "cpu.max") == "max 20000"
    assert read(d, "cpu.idle") == "1"
    m.update({"cpu": {"idle": 0, "shares": 1024}})
    assert read(d, "cpu.weight") == "39" and read(d, "cpu.idle") == "0"


def test_cpu_shares_clamped_by_kernel_is_an_error(make):
    m = make()
    m.create(None)
    with pytest.raises(ConfigError) as e:
        m.validate({"cpu": {"shares": 262145}})
    assert e.value.path == "linux.resources.cpu.shares"


def test_realtime_runtime_without_parent_budget_rolls_back(make):
    m = make("/{prefix}-rt/{id}")
    if on_v2("cpu"):
        # cgroup v2 has no realtime budget at all: refused before anything is made
        with pytest.raises(ConfigError) as e:
            m.create({"cpu": {"realtimeRuntime": 1000, "realtimePeriod": 1000000}})
        assert e.value.path in ("linux.resources.cpu.realtimeRuntime",
                                "linux.resources.cpu.realtimePeriod")
        assert "not supported on cgroup v2" in str(e.value)
        assert not any(os.path.exists(d) for d in m.paths.values())
        return
    need_files("cpu", "cpu.rt_runtime_us")
    with pytest.raises(ConfigError) as e:
        m.create({"cpu": {"realtimeRuntime": 1000, "realtimePeriod": 1000000}})
    assert e.value.path == "linux.resources.cpu.realtimeRuntime"
    assert not any(os.path.exists(d) for d in m.paths.values())


def test_quota_throttles(make, spawn):
    m = make()
    m.create({"cpu": {"quota": 5000, "period": 50000}})
    spawn(m, [sys.executable, "-c", "while True: pass"])
    wait_for(lambda: m.stats()["cpu"]["throttling"].get("throttledPeriods", 0) > 2,
             what="nr_throttled to grow")
    t = m.stats()["cpu"]["throttling"]
    assert t["periods"] >= t["throttledPeriods"] > 0 and t["throttledTime"] > 0


def test_conversions():
    assert cpu.shares_to_weight(2) == 1
    assert cpu.shares_to_weight(1024) == 39
    assert cpu.shares_to_weight(262144) == 10000
    assert cpu.shares_to_weight(512) == 20          # what runc 1.1.5 stored for 512
    assert cpu.cpu_max(50000, 100000) == "50000 100000"
    assert cpu.cpu_max(-1, 100000) == "max 100000"
    assert cpu.cpu_max(0, 100000) == "max 100000"
    assert cpu.cpu_max(20000, 0) == "20000"
    assert blkio.weight_to_io(10) == 1 and blkio.weight_to_io(1000) == 10000
    assert blkio.weight_to_io(500) == 4950


def test_cpuset_files_and_copied_parents(make, spawn):
    m = make("/{prefix}-cs/{id}")
    m.create({"cpu": {"cpus": "0", "mems": "0"}})
    d = cg_dir(m, "cpuset")
    assert read(d, "cpuset.cpus") == "0" and read(d, "cpuset.mems") == "0"
    parent = os.path.dirname(d)
    if on_v2("cpuset"):
        # cgroup v2 parents keep cpuset.cpus empty and inherit the effective sets
        assert read(parent, "cpuset.cpus.effective") and read(parent, "cpuset.mems.effective")
        assert read(d, "cpuset.cpus.effective") == "0"
    else:
        assert read(parent, "cpuset.cpus") and read(parent, "cpuset.mems"), \
            "created parents must get cpus/mems from their parent"
    m.update({"cpu": {"cpus": "0-1"}})
    assert read(d, "cpuset.cpus") == "0-1"
    m.update({"cpu": {"cpus": "1"}})
    p = spawn(m, ["sleep", "100"])
    wait_for(lambda: m.pids() == [p.pid], what="pid")
    with open(f"/proc/{p.pid}/status") as f:
        assert "Cpus_allowed_list:\t1" in f.read()


def test_cpuset_pitfall_no_resources_still_joins(make, spawn):
    m = make("/{prefix}-cs2/a/b/{id}")
    m.create(None)
    p = spawn(m, ["sleep", "100"])          # ENOSPC here if cpus/mems were left empty
    wait_for(lambda: m.pids() == [p.pid], what="pid")
    d = cg_dir(m, "cpuset")
    assert read(d, "cpuset.cpus.effective" if on_v2("cpuset") else "cpuset.cpus")
