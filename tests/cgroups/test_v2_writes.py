"""What the v2 paths write for controllers this host's cgroup2 does not offer (memory, cpu,
io, pids, cpuset are all bound to v1 here). The files are plain files in a temporary
directory: this checks names and conversions only; the kernel's acceptance of the values is
not exercised (see the v2 tests on the real hierarchy for devices, freezer, kill, hugetlb)."""

from __future__ import annotations

import pytest

from ocirt.cgroups.controllers import Ctx, blkio, cpu, cpuset, memory, pids
from ocirt.errors import ConfigError

MiB = 1 << 20
FILES = ("memory.max", "memory.swap.max", "memory.low", "memory.current", "cpu.weight",
         "cpu.max", "cpu.max.burst", "cpu.idle", "io.weight", "io.max", "pids.max",
         "cpuset.cpus", "cpuset.mems")


@pytest.fixture
def d(tmp_path):
    for f in FILES:
        (tmp_path / f).write_text("max\n" if f.endswith(".max") else "0\n")
    return tmp_path


def r(d, name):
    return (d / name).read_text().strip()


def test_memory_v2(d):
    res = {"memory": {"limit": 64 * MiB, "swap": 96 * MiB, "reservation": 16 * MiB}}
    memory.validate(res, 2, Ctx())
    memory.apply(str(d), res, 2, Ctx())
    assert r(d, "memory.max") == str(64 * MiB)
    assert r(d, "memory.swap.max") == str(32 * MiB)
    assert r(d, "memory.low") == str(16 * MiB)
    memory.apply(str(d), {"memory": {"limit": -1}}, 2, Ctx())
    assert r(d, "memory.max") == "max" and r(d, "memory.swap.max") == "max"
    (d / "memory.max").write_text(str(64 * MiB))
    memory.apply(str(d), {"memory": {"swap": 128 * MiB}}, 2, Ctx(update=True))
    assert r(d, "memory.swap.max") == str(64 * MiB), "swap alone: relative to current max"
    (d / "memory.current").write_text(str(50 * MiB))
    with pytest.raises(ConfigError):
        memory.apply(str(d), {"memory": {"limit": 10 * MiB, "checkBeforeUpdate": True}}, 2,
                     Ctx(update=True))


def test_cpu_v2(d):
    cpu.apply(str(d), {"cpu": {"shares": 1024, "quota": 50000, "period": 100000,
                               "burst": 1000}}, 2, Ctx())
    assert r(d, "cpu.weight") == "39" and r(d, "cpu.max") == "50000 100000"
    assert r(d, "cpu.max.burst") == "1000"
    cpu.apply(str(d), {"cpu": {"quota": -1}}, 2, Ctx())
    assert r(d, "cpu.max") == "max"
    with pytest.raises(ConfigError) as e:
        cpu.validate({"cpu": {"realtimeRuntime": 1000}}, 2, Ctx())
    assert e.value.path == "linux.resources.cpu.realtimeRuntime"


def test_io_pids_cpuset_v2(d):
    blkio.apply(str(d), {"blockIO": {"weight": 500, "throttleWriteIOPSDevice": [
        {"major": 8, "minor": 0, "rate": 300}]}}, 2, Ctx())
    assert r(d, "io.weight") == "4950" and r(d, "io.max") == "8:0 wiops=300"
    pids.apply(str(d), {"pids": {"limit": -1}}, 2, Ctx())
    assert r(d, "pids.max") == "max"
    cpuset.apply(str(d), {"cpu": {"cpus": "0-1", "mems": "0"}}, 2, Ctx())
    assert r(d, "cpuset.cpus") == "0-1" and r(d, "cpuset.mems") == "0"
    with pytest.raises(ConfigError):
        blkio.validate({"blockIO": {"leafWeight": 100}}, 2, Ctx())
