"""Helpers of the pure cgroup v2 guest tests: containers run with given resources by ocirt
or runc, their cgroup directory found from the init's /proc/PID/cgroup (as an outside observer
would), and the files read back."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path

import pytest

from ocirt_testlib import cgroup_dirs, cgroup_dirs_named, pure_cgroup_v2, read_cgroup_file

MiB = 1 << 20

# Each test module sets `pytestmark = needs_pure_v2`: the modules still collect anywhere (the
# VM lane lists the guest's tests from the host), and their tests run only on pure cgroup v2.
needs_pure_v2 = pytest.mark.skipif(not os.environ.get("OCIRT_GUEST") or not pure_cgroup_v2(),
                                   reason="needs the pure cgroup v2 guest (hack/vm)")


def with_resources(bundle, resources: dict, script: str = "sleep 1000"):
    """The bundle with `resources` merged into linux.resources and a shell script to run."""
    res = bundle.config["linux"].setdefault("resources", {})
    res.update(copy.deepcopy(resources))
    return bundle.sh(script)


def create(runtime, bundle, cid: str, resources: dict | None = None,
           script: str = "sleep 1000") -> str:
    """Create a container (ocirt or runc, through the same Runner); its cgroup v2 directory
    on the host."""
    with_resources(bundle, resources or {}, script)
    runtime.ok("create", "--bundle", str(bundle.path), cid)
    return cgroup_dirs(runtime.state(cid)["pid"])[""]


def start(runtime, bundle, cid: str, resources: dict | None = None,
          script: str = "sleep 1000") -> str:
    """Create and start a container; its cgroup v2 directory on the host."""
    d = create(runtime, bundle, cid, resources, script)
    runtime.ok("start", cid)
    return d


def read(d: str, name: str) -> str:
    return read_cgroup_file(d, name)


def keyed(d: str, name: str) -> dict[str, str]:
    """A flat keyed file (cgroup.events, memory.events, cpu.stat) as a dict."""
    return dict(line.split(None, 1) for line in read(d, name).splitlines() if line.strip())


def disk() -> tuple[int, int]:
    """(major, minor) of a whole disk of the guest (io.max takes no partitions)."""
    for name in sorted(os.listdir("/sys/block")):
        if name.startswith(("loop", "ram", "zram", "nbd")):
            continue
        ma, mi = Path(f"/sys/block/{name}/dev").read_text().strip().split(":")
        return int(ma), int(mi)
    pytest.skip("no block device in the guest")


def disk_name(dev: tuple[int, int]) -> str:
    for name in os.listdir("/sys/block"):
        if Path(f"/sys/block/{name}/dev").read_text().strip() == f"{dev[0]}:{dev[1]}":
            return name
    raise AssertionError(f"no /sys/block entry for {dev}")


def refused(runtime, bundle, cid: str, resources: dict) -> str:
    """The error message of a `run` with `resources` that must fail (from the JSON log line),
    after checking that it left nothing behind: no container state, no cgroup."""
    with_resources(bundle, resources, "true")
    p = runtime("run", "--bundle", str(bundle.path), cid, global_args=("--log-format", "json"))
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert runtime.ids() == [] and cgroup_dirs_named(cid) == []
    lines = [json.loads(line) for line in p.stderr.decode().splitlines()]
    return next(e["msg"] for e in lines if e["level"] == "error")


def update(runtime, cid: str, resources: dict) -> None:
    runtime.ok("update", "--resources", "-", cid, input=json.dumps(resources).encode())


def modprobe(module: str) -> None:
    p = subprocess.run(["modprobe", module], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"modprobe {module}: {p.stderr.strip()}")
