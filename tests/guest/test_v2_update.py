"""update on a pure cgroup v2 host: every flag and the --resources fields, read back from the
container's cgroup files, and the same values as runc's update writes."""

from __future__ import annotations

import json
import os

import pytest

from v2lib import MiB, disk, read, start, update, needs_pure_v2

pytestmark = needs_pure_v2

# flag, value, file, what it reads after an update of a container created with BASE
BASE = {"memory": {"limit": 64 * MiB, "swap": 128 * MiB}, "cpu": {"shares": 1024}}
FLAGS = [
    ("--memory", "100m", "memory.max", str(100 * MiB)),
    ("--memory-swap", "256m", "memory.swap.max", str(192 * MiB)),   # total - limit
    ("--memory-reservation", "32m", "memory.low", str(32 * MiB)),
    ("--cpu-share", "512", "cpu.weight", "20"),
    ("--cpu-quota", "30000", "cpu.max", "30000 100000"),
    ("--cpu-period", "50000", "cpu.max", "max 50000"),
    ("--cpu-burst", "5000", "cpu.max.burst", "5000"),
    ("--cpu-idle", "1", "cpu.idle", "1"),
    ("--cpuset-cpus", "0", "cpuset.cpus", "0"),
    ("--cpuset-mems", "0", "cpuset.mems", "0"),
    ("--pids-limit", "17", "pids.max", "17"),
    ("--blkio-weight", "300", "io.weight", "default 2930"),    # see weight_file()
]


def weight_file(d: str, name: str, want: str) -> tuple[str, str]:
    """io.bfq.weight takes the weight as given wherever the BFQ module is loaded (its files
    exist then, whatever scheduler the disks use), as runc does; io.weight (iocost) else."""
    if name == "io.weight" and os.path.exists(os.path.join(d, "io.bfq.weight")):
        return "io.bfq.weight", "default 300"
    return name, want


@pytest.mark.parametrize("flag,value,name,want", FLAGS, ids=[f[0][2:] for f in FLAGS])
def test_update_flag_is_written_to_its_v2_file(ocirt, bundle, cid, flag, value, name, want):
    d = start(ocirt, bundle, cid, BASE)
    name, want = weight_file(d, name, want)
    ocirt.ok("update", flag, value, cid)
    got = read(d, name)
    assert (got.splitlines()[0] if name.startswith("io.") else got) == want


def test_update_of_memory_keeps_the_swap_total(ocirt, bundle, cid):
    # memory+swap stays 128M: swap.max follows the new limit, as runc's merged Set does
    d = start(ocirt, bundle, cid, BASE)
    ocirt.ok("update", "--memory", "100m", cid)
    assert read(d, "memory.swap.max") == str(28 * MiB)


def test_update_resources_sets_io_max_hugetlb_and_unified(ocirt, bundle, cid):
    ma, mi = disk()
    d = start(ocirt, bundle, cid, BASE)
    update(ocirt, cid, {
        "blockIO": {"throttleWriteBpsDevice": [{"major": ma, "minor": mi, "rate": 4096000}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 2 * MiB}],
        "unified": {"memory.high": str(50 * MiB)}})
    assert read(d, "io.max") == f"{ma}:{mi} rbps=max wbps=4096000 riops=max wiops=max"
    assert read(d, "hugetlb.2MB.max") == str(2 * MiB)
    assert read(d, "memory.high") == str(50 * MiB)


def test_update_refused_by_the_kernel_leaves_every_file_as_it_was(ocirt, bundle, cid):
    d = start(ocirt, bundle, cid, BASE)
    before = {n: read(d, n) for n in ("memory.max", "memory.swap.max", "cpu.weight")}
    # memory is written before io, whose device the kernel refuses: memory is put back
    p = ocirt("update", "--resources", "-", cid, input=json.dumps(
        {"memory": {"limit": 32 * MiB}, "cpu": {"shares": 512},
         "blockIO": {"throttleReadBpsDevice": [{"major": 1, "minor": 3, "rate": 1}]}}).encode())
    assert p.returncode == 1
    assert b"linux.resources.blockIO.throttleReadBpsDevice[0]" in p.stderr
    assert {n: read(d, n) for n in before} == before


RUNC_FLAGS = [("--memory", "100m"), ("--memory-swap", "256m"), ("--memory-reservation", "32m"),
              ("--cpu-share", "512"), ("--cpu-quota", "30000"), ("--cpu-period", "50000"),
              ("--cpuset-cpus", "0"), ("--pids-limit", "17"), ("--blkio-weight", "300")]
SAME = ["memory.max", "memory.swap.max", "memory.low", "cpu.weight", "cpu.max", "cpuset.cpus",
        "pids.max", "io.weight", "io.bfq.weight"]


def test_update_writes_the_same_values_as_runcs(ocirt, runc, bundle, cid):
    ours = start(ocirt, bundle, cid, BASE)
    theirs = start(runc, bundle, cid + "-runc")
    args = [a for pair in RUNC_FLAGS for a in pair]
    ocirt.ok("update", *args, cid)
    runc.ok("update", *args, cid + "-runc")
    names = [n for n in SAME if os.path.exists(os.path.join(ours, n))]
    assert {n: read(ours, n) for n in names} == {n: read(theirs, n) for n in names}
