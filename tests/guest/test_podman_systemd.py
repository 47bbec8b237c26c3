"""podman with `--cgroup-manager systemd --runtime ocirt`: podman asks the runtime for the
systemd driver (--systemd-cgroup, cgroupsPath machine.slice:libpod:<id>); the container runs in
libpod-<id>.scope with podman's limits as unit properties and in its cgroup."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ocirt_testlib import OCIRT, REPO, read_cgroup_file, unique_id

IMAGE = "localhost/ocirt-test-busybox:latest"

pytestmark = [
    pytest.mark.skipif(not os.path.isdir("/run/systemd/system"), reason="needs systemd as PID 1"),
    pytest.mark.skipif(shutil.which("podman") is None, reason="needs podman"),
]


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(["podman", "--runtime", OCIRT, "--cgroup-manager", "systemd", *args],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    if check:
        assert p.returncode == 0, f"podman {' '.join(args)}: {p.stderr}"
    return p


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """The test busybox rootfs imported as a local image (the guest has no registry)."""
    d = tmp_path_factory.mktemp("podman-image")
    subprocess.run([str(REPO / "hack" / "mkbundle"), str(d)], check=True, capture_output=True)
    tar = d / "rootfs.tar"
    subprocess.run(["tar", "-C", str(d / "rootfs"), "-cf", str(tar), "."], check=True)
    podman("import", str(tar), IMAGE)
    yield IMAGE
    podman("rmi", "-f", IMAGE, check=False)


@pytest.fixture
def name():
    n = unique_id("pod")
    yield n
    podman("rm", "-f", "-t", "0", n, check=False)


def test_podman_runs_a_container_in_a_libpod_scope_with_its_limits(image, name):
    podman("run", "-d", "--name", name, "--memory", "64m", "--pids-limit", "33", image,
           "sleep", "1000")
    cid = podman("inspect", "--format", "{{.Id}}", name).stdout.strip()
    pid = int(podman("inspect", "--format", "{{.State.Pid}}", name).stdout.strip())
    cgroup = next(line[3:] for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines()
                  if line.startswith("0::"))
    unit = f"libpod-{cid}.scope"
    assert cgroup == f"/machine.slice/{unit}"
    show = subprocess.run(["systemctl", "show", unit, "-pMemoryMax", "-pTasksMax",
                           "-pDelegate"], capture_output=True, text=True, check=True).stdout
    assert f"MemoryMax={64 << 20}" in show and "TasksMax=33" in show and "Delegate=yes" in show
    d = "/sys/fs/cgroup" + cgroup
    assert read_cgroup_file(d, "memory.max") == str(64 << 20)
    assert read_cgroup_file(d, "pids.max") == "33"
    podman("rm", "-f", "-t", "0", name)
    assert not os.path.exists(d)


def test_podman_run_rm_prints_the_limit_seen_inside(image):
    p = podman("run", "--rm", "--memory", "32m", image, "cat", "/sys/fs/cgroup/memory.max")
    assert p.stdout.strip() == str(32 << 20)
