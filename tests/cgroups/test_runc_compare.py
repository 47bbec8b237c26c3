"""Same resources through runc (when installed) and through ocirt: the cgroup files must read
the same. runc's own merged device rules (from its state.json) are fed to ocirt, so that the
devices lists are compared on equal input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from ocirt.cgroups import detect

from cghelpers import PREFIX, missing_files, need_files, read
from ocirt_testlib import blkio_weight_file, block_device

RUNC = shutil.which("runc")
BUSYBOX = shutil.which("busybox")
MiB = 1 << 20


FILES = {
    "memory": ["memory.limit_in_bytes", "memory.soft_limit_in_bytes",
               "memory.memsw.limit_in_bytes", "memory.swappiness", "memory.oom_control"],
    "cpu": ["cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.rt_period_us",
            "cpu.rt_runtime_us"],
    "cpuset": ["cpuset.cpus", "cpuset.mems"],
    "pids": ["pids.max"],
    "blkio": ["blkio.throttle.read_bps_device", "blkio.throttle.write_iops_device"],
    "devices": ["devices.list"],
    "freezer": ["freezer.state"],
}


# The same resources on a pure cgroup v2 host: one directory, the converted values (the
# device rules are an eBPF program there; tests/guest/test_v2_devices.py compares them by
# what they let through). swappiness has no v2 file: runc ignores it, ocirt refuses it.
FILES_V2 = {"": ["memory.max", "memory.low", "memory.swap.max", "cpu.weight", "cpu.max",
                 "cpuset.cpus", "cpuset.mems", "pids.max", "io.max"]}


@pytest.mark.skipif(not RUNC or not BUSYBOX, reason="runc or busybox not installed")
def test_same_files_as_runc(make, tmp_path):
    v2 = detect.host().mode == detect.V2
    if v2:
        weight = next((n for n in ("io.bfq.weight", "io.weight")
                       if not missing_files("io", n)), None)
        files = {"": FILES_V2[""] + ([weight] if weight else [])}
    else:
        for ctrl, names in FILES.items():
            need_files(ctrl, *(n for n in names if n != "devices.list"))
        weight = blkio_weight_file()      # none without a BFQ/CFQ scheduler
        files = dict(FILES, blkio=FILES["blkio"] + ([weight] if weight else []))
    dev = block_device()
    blkio = {} if weight is None else {"weight": 300}
    if dev is not None:
        blkio.update({
            "throttleReadBpsDevice": [{"major": dev[0], "minor": dev[1], "rate": 1048576}],
            "throttleWriteIOPSDevice": [{"major": dev[0], "minor": dev[1], "rate": 100}]})
    resources = {
        "memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 128 * MiB},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 42},
        "blockIO": blkio,
    }
    if not v2:
        resources["memory"]["swappiness"] = 10
    bundle = tmp_path / "bundle"
    (bundle / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, bundle / "rootfs" / "bin" / "busybox")
    for a in ("sh", "sleep"):
        os.symlink("busybox", bundle / "rootfs" / "bin" / a)
    subprocess.run([RUNC, "spec"], cwd=bundle, check=True)
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sleep", "100"]
    cid = f"{PREFIX}-runc"
    cfg["linux"]["cgroupsPath"] = f"/{PREFIX}-runc/{cid}"
    cfg["linux"]["resources"].update(resources)
    (bundle / "config.json").write_text(json.dumps(cfg))
    root = tmp_path / "root"
    # The detached container inherits runc's stdio: a file, not a pipe we would wait on.
    errlog = tmp_path / "runc.err"
    with open(errlog, "w") as err:
        r = subprocess.run([RUNC, "--root", str(root), "run", "-d", cid], cwd=bundle,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        assert r.returncode == 0, errlog.read_text()
        st = json.loads((root / cid / "state.json").read_text())
        rpaths = st["cgroup_paths"]
        # runc's internal rules -> OCI rules, in runc's order
        rules = [{"allow": d["allow"], "type": chr(d["type"]), "major": d["major"],
                  "minor": d["minor"], "access": d["permissions"]}
                 for d in st["config"]["cgroups"]["devices"]]
        m = make("/{prefix}-ours/{id}")
        m.create(dict(resources, devices=rules))
        assert set(m.paths) == set(rpaths), "same hierarchies, cgroup2 included"
        diffs = []
        for ctrl, names in files.items():
            for name in names:
                theirs, ours = read(rpaths[ctrl], name), read(m.paths[ctrl], name)
                if name == "devices.list":
                    # runc writes its rules sorted; ocirt in the config's order (the spec's
                    # "listed order"): the same rules, in another order.
                    theirs, ours = sorted(theirs.splitlines()), sorted(ours.splitlines())
                if theirs != ours:
                    diffs.append((ctrl, name, theirs, ours))
        assert diffs == []
    finally:
        subprocess.run([RUNC, "--root", str(root), "delete", "-f", cid], capture_output=True)
