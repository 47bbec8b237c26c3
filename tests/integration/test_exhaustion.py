"""Running out of something: a full state filesystem, no pids left in a parent cgroup, a
container out of memory. Each is a clear one-line error (or the container's own exit status),
with nothing half-applied and nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ocirt_testlib import Runner
from ocirt_testlib import cgroup_dirs, cgroup_dirs_named, pids_with_cmdline, read_cgroup_file


def _fill(root: Path) -> Path:
    """Fill the filesystem of `root` up; the filler's name is not a container id."""
    filler = root / "~filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


@pytest.fixture
def small_root(tmp_path):
    """A Runner whose state root is a 256 KiB tmpfs; unmounted after the test."""
    root = tmp_path / "small-root"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(root)],
                   check=True)
    r = Runner(root)
    try:
        yield r
    finally:
        (root / "~filler").unlink(missing_ok=True)
        for cid in r.ids():
            r("delete", "--force", cid)
        subprocess.run(["umount", str(root)], check=True)


def test_create_on_a_full_state_filesystem_fails_clearly(small_root, bundle, cid):
    _fill(small_root.root)
    p = small_root("create", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    assert f"cannot save the state of container {cid}: No space left on device".encode() \
        in p.stderr
    assert small_root.ids() == []
    assert cgroup_dirs_named(cid) == [] and pids_with_cmdline(cid) == []


def test_update_that_cannot_be_saved_is_not_applied(small_root, bundle, cid):
    bundle.args("sleep", "1000")
    bundle.config["linux"]["resources"] = {"pids": {"limit": 30}}
    bundle.write()
    small_root.ok("run", "--detach", "--bundle", str(bundle.path), cid)
    pids_dir = cgroup_dirs(small_root.state(cid)["pid"])["pids"]
    state_file = small_root.root / cid / "state.json"
    saved = state_file.read_bytes()
    filler = _fill(small_root.root)

    p = small_root("update", "--pids-limit", "50", cid)
    assert p.returncode == 1
    assert b"No space left on device; the update was not applied" in p.stderr
    assert read_cgroup_file(pids_dir, "pids.max") == "30"
    assert state_file.read_bytes() == saved
    assert os.listdir(small_root.root / cid) == ["state.json"]      # no temporary file

    filler.unlink()
    small_root.ok("update", "--pids-limit", "50", cid)
    assert read_cgroup_file(pids_dir, "pids.max") == "50"
    assert json.loads(state_file.read_text())["config"]["linux"]["resources"]["pids"] == \
        {"limit": 50}


@pytest.fixture
def pids_parent():
    """A v1 pids cgroup allowing one process, as a parent for a container's cgroupsPath."""
    mnt = Path("/sys/fs/cgroup/pids")
    if not (mnt / "pids.max").exists() and not mnt.is_dir():
        pytest.skip("no v1 pids hierarchy on this host")
    name = f"ocirt-test-pids-{os.getpid()}"
    d = mnt / name
    d.mkdir()
    (d / "pids.max").write_text("1")
    try:
        yield name
    finally:
        for sub in d.iterdir():
            if sub.is_dir():
                sub.rmdir()
        d.rmdir()


def test_exec_without_pids_left_fails_clearly_and_leaves_nothing(ocirt, bundle, cid,
                                                                 pids_parent):
    bundle.args("sleep", "1000")
    bundle.config["linux"]["cgroupsPath"] = f"/{pids_parent}/{cid}"
    bundle.write()
    ocirt.ok("run", "--detach", "--bundle", str(bundle.path), cid)   # the init only: 1 pid
    init = ocirt.state(cid)["pid"]
    p = ocirt("exec", cid, "true")
    assert p.returncode == 255
    assert b"exec failed: Resource temporarily unavailable" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert json.loads(ocirt.ok("ps", "--format", "json", cid).stdout) == [init]
    assert ocirt.state(cid)["status"] == "running"
    ocirt.ok("delete", "--force", cid)
    assert cgroup_dirs_named(cid) == [] and pids_with_cmdline(cid) == []


def test_container_out_of_memory_is_killed_and_cleaned_up(ocirt, bundle, cid):
    if not Path("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists():
        pytest.skip("no v1 memory hierarchy on this host")
    limit = 32 << 20
    bundle.config["linux"]["resources"] = {"memory": {"limit": limit, "swap": limit}}
    # dd's 128 MiB buffer cannot fit: the kernel's OOM killer ends it.
    bundle.sh("dd if=/dev/zero of=/dev/null bs=128M count=1")
    p = ocirt("run", "--keep", "--bundle", str(bundle.path), cid)
    assert p.returncode == 137, p.stderr
    assert b"internal error" not in p.stderr
    mem = [d for d in cgroup_dirs_named(cid) if d.startswith("/sys/fs/cgroup/memory/")][0]
    oom = dict(line.split() for line in Path(mem, "memory.oom_control").read_text().splitlines())
    assert int(oom["oom_kill"]) >= 1
    assert ocirt.state(cid)["status"] == "stopped"
    ocirt.ok("delete", cid)
    assert cgroup_dirs_named(cid) == [] and pids_with_cmdline(cid) == []
