"""pids (with a real fork loop) and blkio (weights only where a scheduler offers them)."""

from __future__ import annotations

import os
import subprocess

import pytest

from ocirt.cgroups import detect
from ocirt.errors import ConfigError

from cghelpers import cg_dir, missing_files, need_files, on_v2, read, wait_for
from ocirt_testlib import blkio_weight_file, block_device


def test_pids_limit_stops_fork_loop(make, spawn):
    m = make()
    m.create({"pids": {"limit": 5}})
    d = cg_dir(m, "pids")
    assert read(d, "pids.max") == "5"
    p = spawn(m, ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 100 & done; wait"],
              stderr=subprocess.PIPE)
    # pids.events "max N" counts refused forks
    wait_for(lambda: read(d, "pids.events") != "max 0", what="a refused fork")
    assert 0 < len(m.pids()) <= 5
    p.wait(timeout=30)                      # the shell gives up: "Cannot fork"
    m.kill_all(9)                           # its sleeps hold the stderr pipe open
    assert b"fork" in p.stderr.read()
    m.update({"pids": {"limit": -1}})
    assert read(d, "pids.max") == "max"
    m.update({"pids": {"limit": 0}})                # valid since runtime-spec 1.3.0
    assert read(d, "pids.max") == "0"
    p.kill()


THROTTLES = {"throttleReadBpsDevice": 1048576, "throttleWriteBpsDevice": 2097152,
             "throttleReadIOPSDevice": 100, "throttleWriteIOPSDevice": 200}


def test_blkio_throttle_files(make):
    v2 = on_v2("blkio")
    need_files("io" if v2 else "blkio", "io.max" if v2 else "blkio.throttle.read_bps_device")
    dev = block_device()
    if dev is None:
        pytest.skip("no block device in /proc/partitions to throttle")
    ma, mi = dev
    m = make()
    m.create({"blockIO": {k: [{"major": ma, "minor": mi, "rate": rate}]
                          for k, rate in THROTTLES.items()}})
    d = cg_dir(m, "blkio")
    if v2:
        assert read(d, "io.max") == f"{ma}:{mi} rbps=1048576 wbps=2097152 riops=100 wiops=200"
    else:
        assert read(d, "blkio.throttle.read_bps_device") == f"{ma}:{mi} 1048576"
        assert read(d, "blkio.throttle.write_bps_device") == f"{ma}:{mi} 2097152"
        assert read(d, "blkio.throttle.read_iops_device") == f"{ma}:{mi} 100"
        assert read(d, "blkio.throttle.write_iops_device") == f"{ma}:{mi} 200"
    m.update({"blockIO": {"throttleReadBpsDevice": [{"major": ma, "minor": mi, "rate": 0}]}})
    if v2:
        assert read(d, "io.max") == f"{ma}:{mi} rbps=max wbps=2097152 riops=100 wiops=200"
    else:
        assert read(d, "blkio.throttle.read_bps_device") == ""
    with pytest.raises(ConfigError) as e:
        # 4095:0 is no block device (1:3 would be /dev/ram3 once brd is loaded)
        m.update({"blockIO": {"throttleReadBpsDevice": [{"major": 4095, "minor": 0,
                                                          "rate": 5}]}})
    assert e.value.path == "linux.resources.blockIO.throttleReadBpsDevice[0]"
    with pytest.raises(ConfigError) as e:
        m.update({"blockIO": {"leafWeight": 100}})    # CFQ only; gone from this kernel
    assert e.value.path == "linux.resources.blockIO.leafWeight"


def test_blkio_weight_file(make):
    m = make()
    if on_v2("blkio"):
        # io.bfq.weight as given while BFQ schedules a disk, else io.weight (iocost) on
        # its 1..10000 scale: runc's conversion of 300 is 2930.
        bfq = not missing_files("io", "io.bfq.weight")
        name, want = ("io.bfq.weight", "300") if bfq else ("io.weight", "2930")
        need_files("io", name)
        m.create({"blockIO": {"weight": 300}})
        assert read(cg_dir(m, "blkio"), name).splitlines()[0] == f"default {want}"
        return
    name = blkio_weight_file()
    if name is None:
        pytest.skip("no blkio.bfq.weight or blkio.weight: no block device of this host uses "
                    "a proportional (BFQ/CFQ) scheduler")
    m.create({"blockIO": {"weight": 300}})
    d = m.paths["blkio"]
    assert read(d, name) in ("300", "default 300")
    m.update({"blockIO": {"weight": 500}})
    assert read(d, name) in ("500", "default 500")


def test_blkio_weight_without_a_proportional_scheduler_names_the_field(make):
    if on_v2("blkio"):
        if len(missing_files("io", "io.bfq.weight", "io.weight")) < 2:
            pytest.skip("this host has an io weight file (iocost, or a BFQ scheduler in use)")
    elif "blkio" not in detect.host().v1:
        pytest.skip("no blkio or io cgroup controller")
    elif blkio_weight_file() is not None:
        pytest.skip("this host has a blkio weight file (a BFQ/CFQ scheduler is in use)")
    m = make()
    with pytest.raises(ConfigError) as e:
        m.create({"blockIO": {"weight": 300}})
    assert e.value.path == "linux.resources.blockIO.weight"
    assert "not supported on this host" in str(e.value)
    assert not any(os.path.exists(d) for d in m.paths.values())
