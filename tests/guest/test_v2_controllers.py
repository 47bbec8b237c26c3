"""Each linux.resources member of real containers on a pure cgroup v2 host, read back from
the container's cgroup directory: cpu, cpuset, io, memory, pids, hugetlb, rdma, misc and
`unified`, and the same files as runc writes for the same config."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ocirt_testlib import wait_until
from v2lib import MiB, create, disk, disk_name, keyed, modprobe, read, refused, start, needs_pure_v2

pytestmark = needs_pure_v2

# --- cpu ----------------------------------------------------------------------------------


def test_cpu_shares_become_cpu_weight_by_runcs_conversion(ocirt, bundle, cid):
    # runc's ConvertCPUSharesToCgroupV2Value: 1 + (shares - 2) * 9999 / 262142
    d = start(ocirt, bundle, cid, {"cpu": {"shares": 512}})
    assert read(d, "cpu.weight") == "20"


def test_cpu_quota_and_period_become_cpu_max(ocirt, bundle, cid):
    d = start(ocirt, bundle, cid, {"cpu": {"quota": 50000, "period": 100000}})
    assert read(d, "cpu.max") == "50000 100000"


def test_cpu_quota_minus_one_is_max(ocirt, bundle, cid):
    d = start(ocirt, bundle, cid, {"cpu": {"quota": -1, "period": 50000}})
    assert read(d, "cpu.max") == "max 50000"


def test_cpu_quota_throttles_a_busy_loop(ocirt, bundle, cid):
    d = start(ocirt, bundle, cid, {"cpu": {"quota": 10000, "period": 100000}},
              script="while :; do :; done")
    wait_until(lambda: int(keyed(d, "cpu.stat")["nr_throttled"]) > 2,
                    "nr_throttled to grow")


def test_cpu_idle_becomes_cpu_idle(ocirt, bundle, cid):
    d = start(ocirt, bundle, cid, {"cpu": {"idle": 1}})
    assert read(d, "cpu.idle") == "1"


def test_cpu_burst_becomes_cpu_max_burst(ocirt, bundle, cid):
    d = start(ocirt, bundle, cid, {"cpu": {"quota": 20000, "period": 100000,
                                           "burst": 10000}})
    assert read(d, "cpu.max.burst") == "10000"


@pytest.mark.parametrize("field", ["realtimeRuntime", "realtimePeriod"])
def test_cpu_realtime_limits_are_refused_with_nothing_left(ocirt, bundle, cid, field):
    msg = refused(ocirt, bundle, cid, {"cpu": {field: 1000}})
    assert f"linux.resources.cpu.{field}: realtime scheduling limits are not supported on " \
           "cgroup v2" in msg


# --- cpuset -------------------------------------------------------------------------------


def test_cpuset_cpus_and_mems_pin_the_container(ocirt, bundle, cid):
    if os.cpu_count() < 2:
        pytest.skip("one CPU: nothing to pin to")
    d = start(ocirt, bundle, cid, {"cpu": {"cpus": "1", "mems": "0"}})
    assert read(d, "cpuset.cpus") == "1" and read(d, "cpuset.mems") == "0"
    assert read(d, "cpuset.cpus.effective") == "1"
    inside = ocirt.ok("exec", cid, "grep", "Cpus_allowed_list", "/proc/self/status").stdout
    assert inside.decode().split() == ["Cpus_allowed_list:", "1"]


def test_cpuset_of_a_cpu_that_is_not_there_names_the_field(ocirt, bundle, cid):
    msg = refused(ocirt, bundle, cid, {"cpu": {"cpus": "63"}})
    assert "linux.resources.cpu.cpus" in msg


# --- io -----------------------------------------------------------------------------------


@pytest.fixture
def bfq():
    """BFQ scheduling the guest's disk (io.bfq.weight exists only then), put back after."""
    dev = disk()
    sched = Path(f"/sys/block/{disk_name(dev)}/queue/scheduler")
    before = next(w.strip("[]") for w in sched.read_text().split() if w.startswith("["))
    modprobe("bfq")
    sched.write_text("bfq")
    yield dev
    sched.write_text(before)


def test_io_weight_is_converted_to_the_iocost_scale_without_bfq(ocirt, bundle, cid):
    # runc's ConvertBlkIOToIOWeightValue: 1 + (weight - 10) * 9999 / 990
    d = start(ocirt, bundle, cid, {"blockIO": {"weight": 300}})
    if os.path.exists(os.path.join(d, "io.bfq.weight")):
        pytest.skip("the BFQ module is loaded: the weight goes to io.bfq.weight")
    assert read(d, "io.weight").splitlines()[0] == "default 2930"


def test_io_bfq_weight_is_written_as_given_under_bfq(ocirt, bundle, cid, bfq):
    ma, mi = bfq
    d = start(ocirt, bundle, cid, {"blockIO": {
        "weight": 300, "weightDevice": [{"major": ma, "minor": mi, "weight": 500}]}})
    lines = read(d, "io.bfq.weight").splitlines()
    assert lines[0] == "default 300" and f"{ma}:{mi} 500" in lines[1:]


def test_io_max_throttles_each_device(ocirt, bundle, cid):
    ma, mi = disk()
    d = start(ocirt, bundle, cid, {"blockIO": {
        "throttleReadBpsDevice": [{"major": ma, "minor": mi, "rate": 1048576}],
        "throttleWriteBpsDevice": [{"major": ma, "minor": mi, "rate": 2097152}],
        "throttleReadIOPSDevice": [{"major": ma, "minor": mi, "rate": 100}],
        "throttleWriteIOPSDevice": [{"major": ma, "minor": mi, "rate": 200}]}})
    assert read(d, "io.max") == f"{ma}:{mi} rbps=1048576 wbps=2097152 riops=100 wiops=200"


def test_io_max_of_a_device_that_does_not_exist_names_the_field(ocirt, bundle, cid):
    msg = refused(ocirt, bundle, cid, {"blockIO": {
        # no block device has 4095:0 (1:3, /dev/null's number, is /dev/ram3 once brd loads)
        "throttleReadBpsDevice": [{"major": 4095, "minor": 0, "rate": 1048576}]}})
    assert "linux.resources.blockIO.throttleReadBpsDevice[0]" in msg


def test_io_leaf_weight_is_refused(ocirt, bundle, cid):
    msg = refused(ocirt, bundle, cid, {"blockIO": {"leafWeight": 300}})
    assert "linux.resources.blockIO.leafWeight: not supported on cgroup v2" in msg


# --- memory -------------------------------------------------------------------------------


def test_memory_limit_and_reservation_become_memory_max_and_low(ocirt, bundle, cid):
    d = start(ocirt, bundle, cid, {"memory": {"limit": 64 * MiB, "reservation": 32 * MiB}})
    assert read(d, "memory.max") == str(64 * MiB)
    assert read(d, "memory.low") == str(32 * MiB)


@pytest.mark.parametrize("limit,swap,want", [
    (64 * MiB, 128 * MiB, str(64 * MiB)),     # memory+swap total -> the swap alone
    (64 * MiB, 64 * MiB, "0"),                # equal: no swap at all
    (64 * MiB, -1, "max"),
    (-1, None, "max"),                        # unlimited memory: unlimited swap too
], ids=["total", "equal", "swap-max", "unlimited"])
def test_memory_swap_becomes_swap_max_as_runc_converts(ocirt, bundle, cid, limit, swap, want):
    mem = {"limit": limit} if swap is None else {"limit": limit, "swap": swap}
    d = start(ocirt, bundle, cid, {"memory": mem})
    assert read(d, "memory.swap.max") == want
    assert read(d, "memory.max") == ("max" if limit == -1 else str(limit))


def test_memory_swap_without_a_limit_is_refused(ocirt, bundle, cid):
    msg = refused(ocirt, bundle, cid, {"memory": {"swap": 64 * MiB}})
    assert "linux.resources.memory.swap: unable to set swap limit without memory limit" in msg


def test_memory_min_and_high_are_set_through_unified(ocirt, bundle, cid):
    d = start(ocirt, bundle, cid, {"memory": {"limit": 64 * MiB},
                                   "unified": {"memory.min": str(8 * MiB),
                                               "memory.high": str(48 * MiB)}})
    assert read(d, "memory.min") == str(8 * MiB)
    assert read(d, "memory.high") == str(48 * MiB)
    assert read(d, "memory.max") == str(64 * MiB)


@pytest.mark.parametrize("field,value", [("swappiness", 10), ("disableOOMKiller", True)])
def test_memory_fields_without_a_v2_file_are_refused(ocirt, bundle, cid, field, value):
    msg = refused(ocirt, bundle, cid, {"memory": {"limit": 64 * MiB, field: value}})
    assert f"linux.resources.memory.{field}: not supported on cgroup v2" in msg


def test_memory_limit_kills_a_process_beyond_it(ocirt, bundle, cid):
    d = start(ocirt, bundle, cid, {"memory": {"limit": 16 * MiB, "swap": 16 * MiB}},
              script="tail /dev/zero")
    wait_until(lambda: int(keyed(d, "memory.events")["oom_kill"]) >= 1, "an OOM kill")


# --- pids, hugetlb, rdma, misc --------------------------------------------------------------


def test_pids_limit_becomes_pids_max_and_stops_forks(ocirt, bundle, cid):
    # created first: the shell may end as soon as a fork fails
    d = create(ocirt, bundle, cid, {"pids": {"limit": 8}},
               script="i=0; while [ $i -lt 40 ]; do sleep 1000 & i=$((i+1)); done; wait")
    assert read(d, "pids.max") == "8"
    ocirt.ok("start", cid)
    wait_until(lambda: keyed(d, "pids.events")["max"] != "0", "a refused fork")
    assert int(read(d, "pids.current")) <= 8


def _hugepage_sizes() -> list[str]:
    from ocirt.cgroups.controllers import hugetlb
    return hugetlb.page_sizes()


def test_hugetlb_limits_become_max_and_rsvd_max(ocirt, bundle, cid):
    if "2MB" not in _hugepage_sizes():
        pytest.skip("no 2MB huge pages")
    d = start(ocirt, bundle, cid, {"hugepageLimits": [{"pageSize": "2MB",
                                                       "limit": 4 * MiB}]})
    assert read(d, "hugetlb.2MB.max") == str(4 * MiB)
    if not os.path.exists(os.path.join(d, "hugetlb.2MB.rsvd.max")):
        pytest.skip("no hugetlb reservation accounting in this kernel")
    # as runc 1.2 does, so that reserving cannot get around the limit
    assert read(d, "hugetlb.2MB.rsvd.max") == str(4 * MiB)


@pytest.fixture
def soft_roce():
    """An RDMA device of the guest (rdma_rxe over a dummy link), removed after."""
    modprobe("rdma_rxe")
    link, dev = "ocirtrdma0", "ocirtrxe0"
    subprocess.run(["ip", "link", "add", link, "type", "dummy"], check=True)
    try:
        subprocess.run(["ip", "link", "set", link, "up"], check=True)
        p = subprocess.run(["rdma", "link", "add", dev, "type", "rxe", "netdev", link],
                           capture_output=True, text=True)
        if p.returncode != 0:
            pytest.skip(f"rdma link add: {p.stderr.strip()}")
        yield dev
        subprocess.run(["rdma", "link", "delete", dev], check=False)
    finally:
        subprocess.run(["ip", "link", "delete", link], check=False)


def test_rdma_limits_become_rdma_max(ocirt, bundle, cid, soft_roce):
    d = start(ocirt, bundle, cid, {"rdma": {soft_roce: {"hcaHandles": 3,
                                                        "hcaObjects": 40}}})
    assert f"{soft_roce} hca_handle=3 hca_object=40" in read(d, "rdma.max").splitlines()


def test_rdma_limit_of_an_unknown_device_names_it(ocirt, bundle, cid):
    msg = refused(ocirt, bundle, cid, {"rdma": {"mlx5_9": {"hcaHandles": 3}}})
    assert "linux.resources.rdma.mlx5_9" in msg


def test_misc_max_is_set_through_unified(ocirt, bundle, cid):
    capacity = Path("/sys/fs/cgroup/misc.capacity").read_text().split()
    if not capacity:
        # No misc resource on this machine (SEV ASIDs...): the kernel refuses any name,
        # and the error names the key.
        msg = refused(ocirt, bundle, cid, {"unified": {"misc.max": "sev 1"}})
        assert 'linux.resources.unified["misc.max"]' in msg
        return
    name = capacity[0]
    d = start(ocirt, bundle, cid, {"unified": {"misc.max": f"{name} 1"}})
    assert f"{name} 1" in read(d, "misc.max").splitlines()


# --- unified ------------------------------------------------------------------------------


def test_unified_values_win_over_converted_ones(ocirt, bundle, cid):
    d = start(ocirt, bundle, cid, {"cpu": {"shares": 512}, "pids": {"limit": 10},
                                   "unified": {"cpu.weight": "300", "pids.max": "20"}})
    assert read(d, "cpu.weight") == "300" and read(d, "pids.max") == "20"


def test_unified_file_that_does_not_exist_names_the_key(ocirt, bundle, cid):
    msg = refused(ocirt, bundle, cid, {"unified": {"memory.nosuchfile": "1"}})
    assert 'linux.resources.unified["memory.nosuchfile"]: not supported on this host' in msg


def test_unified_value_the_kernel_refuses_names_the_key(ocirt, bundle, cid):
    msg = refused(ocirt, bundle, cid, {"unified": {"memory.max": "lots"}})
    assert 'linux.resources.unified["memory.max"]' in msg and "Invalid argument" in msg


# --- against runc -------------------------------------------------------------------------


def _same_config(dev: tuple[int, int]) -> dict:
    ma, mi = dev
    res = {
        "memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 128 * MiB},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 42},
        "blockIO": {"weight": 300,
                    "throttleReadBpsDevice": [{"major": ma, "minor": mi, "rate": 1048576}],
                    "throttleWriteIOPSDevice": [{"major": ma, "minor": mi, "rate": 100}]},
        "unified": {"memory.high": str(48 * MiB), "memory.min": str(4 * MiB)},
    }
    if "2MB" in _hugepage_sizes():
        res["hugepageLimits"] = [{"pageSize": "2MB", "limit": 4 * MiB}]
    return res


SAME_FILES = ["cpu.weight", "cpu.max", "cpuset.cpus", "cpuset.mems", "io.weight",
              "io.bfq.weight", "io.max", "memory.min", "memory.low", "memory.high",
              "memory.max", "memory.swap.max", "pids.max", "hugetlb.2MB.max"]


def test_same_cgroup_files_as_runc_for_the_same_config(ocirt, runc, bundle, cid):
    ours = start(ocirt, bundle, cid, _same_config(disk()))
    theirs = start(runc, bundle, cid + "-runc")        # the same bundle, as it now is
    diffs = {}
    for name in SAME_FILES:
        a, b = (Path(ours, name), Path(theirs, name))
        if not a.exists() and not b.exists():
            continue
        if a.read_text() != b.read_text():
            diffs[name] = (a.read_text(), b.read_text())
    assert diffs == {}
