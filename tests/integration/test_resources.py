"""linux.resources read back from cgroupfs on real containers: after create (config.json),
after `update` (flags and --resources), and side by side with runc 1.1.5 on the same config.

Cgroup directories come from the init's /proc/<pid>/cgroup.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ocirt_testlib import blkio_weight_file, block_device, cgroup_dirs, cgroup_mounts, unique_id
from ocirt_testlib import read_cgroup_file as read

MiB = 1 << 20
RUNC = shutil.which("runc")
U64_MAX_PAGE = "9223372036854771712"     # v1 "unlimited" as the kernel prints it


V1_MOUNTS, UNIFIED = cgroup_mounts()


def need_v1(*controllers: str) -> None:
    missing = [c for c in controllers if c not in V1_MOUNTS]
    if missing:
        pytest.skip(f"needs the cgroup v1 {', '.join(missing)} hierarchy (reads v1 files)")


def hugetlb_v2() -> bool:
    if not UNIFIED or "hugetlb" in V1_MOUNTS:
        return False
    ctrls = Path(UNIFIED, "cgroup.controllers").read_text().split()
    return "hugetlb" in ctrls and os.path.isdir("/sys/kernel/mm/hugepages/hugepages-2048kB")


def run_with(ocirt, bundle, cid: str, resources: dict) -> dict[str, str]:
    bundle.args("sleep", "100")
    bundle.config["linux"].setdefault("resources", {}).update(copy.deepcopy(resources))
    bundle.write()
    ocirt.ok("run", "--detach", "--bundle", str(bundle.path), cid)
    return cgroup_dirs(ocirt.state(cid)["pid"])


def saved_resources(ocirt, cid: str) -> dict:
    st = json.loads((Path(ocirt.root) / cid / "state.json").read_text())
    return st["config"]["linux"]["resources"]


MEMORY = {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 128 * MiB, "swappiness": 10}
CPU = {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"}


# --- after create -----------------------------------------------------------------------------

def test_create_writes_memory_limit_reservation_swap_and_swappiness(ocirt, bundle, cid):
    need_v1("memory")
    d = run_with(ocirt, bundle, cid, {"memory": MEMORY})["memory"]
    assert read(d, "memory.limit_in_bytes") == str(64 * MiB)
    assert read(d, "memory.soft_limit_in_bytes") == str(32 * MiB)
    assert read(d, "memory.memsw.limit_in_bytes") == str(128 * MiB)
    assert read(d, "memory.swappiness") == "10"


def test_create_writes_cpu_shares_quota_period_cpus_and_mems(ocirt, bundle, cid):
    need_v1("cpu", "cpuset")
    dirs = run_with(ocirt, bundle, cid, {"cpu": CPU})
    assert read(dirs["cpu"], "cpu.shares") == "512"
    assert read(dirs["cpu"], "cpu.cfs_quota_us") == "50000"
    assert read(dirs["cpu"], "cpu.cfs_period_us") == "100000"
    assert read(dirs["cpuset"], "cpuset.cpus") == "0"
    assert read(dirs["cpuset"], "cpuset.mems") == "0"


def test_create_writes_pids_limit(ocirt, bundle, cid):
    need_v1("pids")
    d = run_with(ocirt, bundle, cid, {"pids": {"limit": 42}})["pids"]
    assert read(d, "pids.max") == "42"


def test_create_writes_blkio_weight(ocirt, bundle, cid):
    need_v1("blkio")
    name = blkio_weight_file()
    if name is None:
        pytest.skip("this kernel's blkio hierarchy has neither blkio.weight nor "
                    "blkio.bfq.weight (no CFQ/BFQ scheduler): no weight can be set")
    d = run_with(ocirt, bundle, cid, {"blockIO": {"weight": 300}})["blkio"]
    assert read(d, name) in ("300", "default 300")


def test_create_writes_blkio_throttles(ocirt, bundle, cid):
    need_v1("blkio")
    dev = block_device()
    if dev is None:
        pytest.skip("no block device in /proc/partitions to throttle")
    maj, mnr = dev
    d = run_with(ocirt, bundle, cid, {"blockIO": {
        "throttleReadBpsDevice": [{"major": maj, "minor": mnr, "rate": MiB}],
        "throttleWriteIOPSDevice": [{"major": maj, "minor": mnr, "rate": 100}]}})["blkio"]
    assert read(d, "blkio.throttle.read_bps_device") == f"{maj}:{mnr} {MiB}"
    assert read(d, "blkio.throttle.write_iops_device") == f"{maj}:{mnr} 100"


def test_create_writes_hugetlb_limit_on_cgroup2(ocirt, bundle, cid):
    if not hugetlb_v2():
        pytest.skip("hugetlb is not a cgroup2 controller here (or no 2MB pages)")
    d = run_with(ocirt, bundle, cid,
                 {"hugepageLimits": [{"pageSize": "2MB", "limit": 8 * MiB}]})[""]
    assert read(d, "hugetlb.2MB.max") == str(8 * MiB)


# --- after update ------------------------------------------------------------------------------

def test_update_flags_write_memory_cpu_and_pids(ocirt, bundle, cid):
    need_v1("memory", "cpu", "cpuset", "pids")
    dirs = run_with(ocirt, bundle, cid, {"memory": MEMORY, "cpu": CPU, "pids": {"limit": 42}})
    ocirt.ok("update", "--memory", "128m", "--memory-swap", "256M", "--memory-reservation",
             "64m", "--cpu-share", "256", "--cpu-quota", "30000", "--cpu-period", "50000",
             "--cpuset-cpus", "1", "--cpuset-mems", "0", "--pids-limit", "20", cid)
    assert read(dirs["memory"], "memory.limit_in_bytes") == str(128 * MiB)
    assert read(dirs["memory"], "memory.memsw.limit_in_bytes") == str(256 * MiB)
    assert read(dirs["memory"], "memory.soft_limit_in_bytes") == str(64 * MiB)
    assert read(dirs["cpu"], "cpu.shares") == "256"
    assert read(dirs["cpu"], "cpu.cfs_quota_us") == "30000"
    assert read(dirs["cpu"], "cpu.cfs_period_us") == "50000"
    assert read(dirs["cpuset"], "cpuset.cpus") == "1"
    assert read(dirs["pids"], "pids.max") == "20"


def test_update_cpu_shares_alias_burst_and_idle(ocirt, bundle, cid):
    need_v1("cpu")
    d = run_with(ocirt, bundle, cid, {"cpu": {"shares": 512}})["cpu"]
    if not os.path.exists(os.path.join(d, "cpu.cfs_burst_us")):
        pytest.skip("no cpu.cfs_burst_us on this kernel")
    ocirt.ok("update", "--cpu-shares", "300", "--cpu-quota", "20000", "--cpu-burst", "5000",
             cid)
    assert read(d, "cpu.shares") == "300"
    assert read(d, "cpu.cfs_burst_us") == "5000"
    ocirt.ok("update", "--cpu-idle", "1", cid)
    assert read(d, "cpu.idle") == "1"


def test_update_unlimited_memory_and_pids(ocirt, bundle, cid):
    need_v1("memory", "pids")
    dirs = run_with(ocirt, bundle, cid, {"memory": MEMORY, "pids": {"limit": 42}})
    ocirt.ok("update", "--memory", "-1", "--pids-limit", "-1", cid)
    assert read(dirs["memory"], "memory.limit_in_bytes") == U64_MAX_PAGE
    assert read(dirs["memory"], "memory.memsw.limit_in_bytes") == U64_MAX_PAGE
    assert read(dirs["pids"], "pids.max") == "max"


def test_update_resources_file_writes_every_controller(ocirt, bundle, cid, tmp_path):
    need_v1("memory", "cpu", "cpuset", "pids")
    dirs = run_with(ocirt, bundle, cid, {"memory": MEMORY, "cpu": CPU, "pids": {"limit": 42}})
    res = {"memory": {"limit": 96 * MiB, "reservation": 48 * MiB, "swap": 192 * MiB,
                      "swappiness": 30},
           "cpu": {"shares": 1024, "quota": -1, "cpus": "0-1"},
           "pids": {"limit": 64}}
    f = tmp_path / "res.json"
    f.write_text(json.dumps(res))
    ocirt.ok("update", "--resources", str(f), cid)
    assert read(dirs["memory"], "memory.limit_in_bytes") == str(96 * MiB)
    assert read(dirs["memory"], "memory.soft_limit_in_bytes") == str(48 * MiB)
    assert read(dirs["memory"], "memory.memsw.limit_in_bytes") == str(192 * MiB)
    assert read(dirs["memory"], "memory.swappiness") == "30"
    assert read(dirs["cpu"], "cpu.shares") == "1024"
    assert read(dirs["cpu"], "cpu.cfs_quota_us") == "-1"
    assert read(dirs["cpu"], "cpu.cfs_period_us") == "100000"
    assert read(dirs["cpuset"], "cpuset.cpus") == "0-1"
    assert read(dirs["pids"], "pids.max") == "64"


def test_update_resources_from_stdin_writes_blkio_throttle_and_hugetlb(ocirt, bundle, cid):
    dev = block_device()
    if dev is None or "blkio" not in V1_MOUNTS or not hugetlb_v2():
        pytest.skip("needs a block device, the v1 blkio hierarchy and hugetlb on cgroup2")
    maj, mnr = dev
    dirs = run_with(ocirt, bundle, cid, {"blockIO": {
        "throttleReadBpsDevice": [{"major": maj, "minor": mnr, "rate": MiB}]}})
    res = {"blockIO": {"throttleReadBpsDevice": [{"major": maj, "minor": mnr, "rate": 2 * MiB}],
                       "throttleWriteBpsDevice": [{"major": maj, "minor": mnr, "rate": MiB}]},
           "hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB}]}
    ocirt.ok("update", "-r", "-", cid, input=json.dumps(res).encode())
    assert read(dirs["blkio"], "blkio.throttle.read_bps_device") == f"{maj}:{mnr} {2 * MiB}"
    assert read(dirs["blkio"], "blkio.throttle.write_bps_device") == f"{maj}:{mnr} {MiB}"
    assert read(dirs[""], "hugetlb.2MB.max") == str(4 * MiB)


def test_update_is_saved_and_merged_with_the_saved_resources(ocirt, bundle, cid):
    need_v1("memory")
    dirs = run_with(ocirt, bundle, cid, {"memory": MEMORY})
    ocirt.ok("update", "--memory", "100m", cid)
    saved = saved_resources(ocirt, cid)
    assert saved["memory"] == dict(MEMORY, limit=100 * MiB)
    assert saved["devices"] == bundle.config["linux"]["resources"]["devices"]
    # The saved swap (128m) now bounds the next update: 200m is above it.
    p = ocirt("update", "--memory", "200m", cid)
    assert p.returncode == 1 and "linux.resources.memory.swap" in p.stderr.decode()
    assert read(dirs["memory"], "memory.limit_in_bytes") == str(100 * MiB)
    ocirt.ok("update", "--memory", "200m", "--memory-swap", "400m", cid)
    assert saved_resources(ocirt, cid)["memory"]["swap"] == 400 * MiB
    assert read(dirs["memory"], "memory.memsw.limit_in_bytes") == str(400 * MiB)


def test_update_with_an_invalid_value_changes_nothing(ocirt, bundle, cid):
    need_v1("memory", "cpu", "pids")
    dirs = run_with(ocirt, bundle, cid, {"memory": MEMORY, "cpu": CPU, "pids": {"limit": 42}})
    before = saved_resources(ocirt, cid)
    # cpuset and cpu come first in application order, the bad memory value last.
    bad = {"cpu": {"shares": 256, "cpus": "1"}, "pids": {"limit": 7},
           "memory": {"limit": 256 * MiB, "swappiness": 500}}
    p = ocirt("update", "-r", "-", cid, input=json.dumps(bad).encode())
    assert p.returncode == 1
    err = p.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and "linux.resources.memory.swappiness" in err
    assert read(dirs["cpu"], "cpu.shares") == "512"
    assert read(dirs["cpuset"], "cpuset.cpus") == "0"
    assert read(dirs["pids"], "pids.max") == "42"
    assert read(dirs["memory"], "memory.limit_in_bytes") == str(64 * MiB)
    assert saved_resources(ocirt, cid) == before


def test_update_failing_in_the_kernel_restores_the_previous_values(ocirt, bundle, cid):
    need_v1("cpu", "cpuset")
    dirs = run_with(ocirt, bundle, cid, {"cpu": CPU})
    # Valid syntax, but a CPU this host does not have: the kernel refuses the write.
    p = ocirt("update", "--cpu-share", "256", "--cpuset-cpus", "4095", cid)
    assert p.returncode == 1
    assert "linux.resources.cpu.cpus" in p.stderr.decode()
    assert read(dirs["cpuset"], "cpuset.cpus") == "0"
    assert read(dirs["cpu"], "cpu.shares") == "512"
    assert saved_resources(ocirt, cid)["cpu"] == CPU


# --- side by side with runc 1.1.5 ------------------------------------------------------------

class Runc:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.ids: list[str] = []

    def __call__(self, *args: str, input: bytes | None = None, cwd=None):
        return subprocess.run([RUNC, "--root", str(self.root), *args], input=input,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              cwd=cwd, timeout=60)

    def run_detached(self, bundle: Path, cid: str) -> int:
        self.ids.append(cid)
        # A detached container keeps runc's stdio: files, not pipes we would wait on.
        with open(bundle / "runc.err", "wb") as err:
            p = subprocess.run([RUNC, "--root", str(self.root), "run", "-d", "--bundle",
                                str(bundle), cid], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=err, timeout=60)
        assert p.returncode == 0, (bundle / "runc.err").read_text()
        return json.loads(self("state", cid).stdout)["pid"]


@pytest.fixture
def runc(tmp_path_factory):
    if not RUNC:
        pytest.skip("runc is not installed")
    r = Runc(tmp_path_factory.mktemp("runc-root"))
    yield r
    for cid in r.ids:
        r("delete", "--force", cid)
    shutil.rmtree(r.root, ignore_errors=True)


COMPARED = {
    "memory": ["memory.limit_in_bytes", "memory.soft_limit_in_bytes",
               "memory.memsw.limit_in_bytes", "memory.swappiness"],
    "cpu": ["cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"],
    "cpuset": ["cpuset.cpus", "cpuset.mems"],
    "pids": ["pids.max"],
    "blkio": ["blkio.throttle.read_bps_device", "blkio.throttle.write_iops_device"],
}


def test_same_cgroup_files_as_runc_after_create_and_updates(ocirt, runc, bundle, tmp_path):
    need_v1(*COMPARED)
    dev = block_device()
    resources = {"memory": dict(MEMORY), "cpu": dict(CPU), "pids": {"limit": 42}}
    if dev is not None:
        resources["blockIO"] = {
            "throttleReadBpsDevice": [{"major": dev[0], "minor": dev[1], "rate": MiB}],
            "throttleWriteIOPSDevice": [{"major": dev[0], "minor": dev[1], "rate": 100}]}
    bundle.args("sleep", "100")
    bundle.config["linux"]["resources"].update(resources)
    bundle.write()
    rbundle = tmp_path / "runc-bundle"
    rbundle.mkdir()
    shutil.copy(bundle.path / "config.json", rbundle / "config.json")
    ours_id, theirs_id = unique_id("o"), unique_id("r")
    ocirt.ok("run", "--detach", "--bundle", str(bundle.path), ours_id)
    ours = cgroup_dirs(ocirt.state(ours_id)["pid"])
    theirs = cgroup_dirs(runc.run_detached(rbundle, theirs_id))

    def diffs(step: str) -> list:
        out = []
        for ctrl, names in COMPARED.items():
            for name in names:
                a, b = read(theirs[ctrl], name), read(ours[ctrl], name)
                if a != b:
                    out.append((step, name, "runc", a, "ocirt", b))
        return out

    found = diffs("create")
    flags = ["--memory", "128m", "--memory-swap", "256m", "--memory-reservation", "64m",
             "--cpu-share", "256", "--cpu-quota", "30000", "--cpu-period", "50000",
             "--cpuset-cpus", "1", "--pids-limit", "20"]
    for who, cid in ((runc, theirs_id), (ocirt, ours_id)):
        p = who("update", *flags, cid)
        assert p.returncode == 0, p.stderr
    found += diffs("update flags")
    res = json.dumps({"memory": {"limit": 96 * MiB, "reservation": 48 * MiB,
                                 "swap": 192 * MiB},
                      "cpu": {"shares": 1024, "quota": -1, "cpus": "0-1", "mems": "0"},
                      "pids": {"limit": 64}}).encode()
    for who, cid in ((runc, theirs_id), (ocirt, ours_id)):
        p = who("update", "--resources", "-", cid, input=res)
        assert p.returncode == 0, p.stderr
    found += diffs("update --resources")
    for who, cid in ((runc, theirs_id), (ocirt, ours_id)):
        p = who("update", "--memory", "-1", "--pids-limit", "-1", cid)
        assert p.returncode == 0, p.stderr
    found += diffs("update unlimited")
    assert found == []
