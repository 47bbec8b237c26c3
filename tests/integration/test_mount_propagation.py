"""Mount propagation between the container and the host, as runc 1.1.5: rootfsPropagation is
what the container's mount namespace starts with, so with `rshared` a volume bound `rshared`
from a shared host mount stays in the host's peer group (Kubernetes' Bidirectional
propagation: a mount made inside the container appears on the host); by default (rslave) the
container's mounts never reach the host, while the host's still reach the container."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from ocirt_testlib import host_mounts


@pytest.fixture
def shared_host_dir():
    """A host directory that is a shared mount of its own, unmounted (with anything that
    propagated under it) afterwards."""
    d = Path(tempfile.mkdtemp(prefix="ocirt-propagation-", dir="/var/tmp"))
    subprocess.run(["mount", "--bind", str(d), str(d)], check=True)
    subprocess.run(["mount", "--make-shared", str(d)], check=True)
    (d / "sub").mkdir()
    yield d
    for mp in sorted((m for m in host_mounts() if m.startswith(str(d))), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], check=False)
    shutil.rmtree(d, ignore_errors=True)
    assert not [m for m in host_mounts() if m.startswith(str(d))]


def _mount_tmpfs_inside(bundle, volume: Path, root_propagation: str | None) -> None:
    caps = bundle.process["capabilities"]
    for kind in ("bounding", "effective", "permitted"):
        caps[kind] = sorted(set(caps.get(kind, [])) | {"CAP_SYS_ADMIN"})
    if root_propagation:
        bundle.config["linux"]["rootfsPropagation"] = root_propagation
    bundle.config["mounts"].append({"destination": "/vol", "type": "bind",
                                    "source": str(volume), "options": ["rbind", "rshared"]})
    bundle.sh("mount -t tmpfs tmpfs /vol/sub && grep -c ' /vol/sub ' /proc/self/mountinfo")


def test_rshared_root_and_volume_propagate_a_container_mount_to_the_host(
        ocirt, bundle, cid, shared_host_dir):
    _mount_tmpfs_inside(bundle, shared_host_dir, "rshared")
    p = ocirt("run", "--bundle", str(bundle.path), cid)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"1\n"
    assert str(shared_host_dir / "sub") in host_mounts()


def test_default_root_propagation_keeps_container_mounts_off_the_host(
        ocirt, bundle, cid, shared_host_dir):
    _mount_tmpfs_inside(bundle, shared_host_dir, None)
    p = ocirt("run", "--bundle", str(bundle.path), cid)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"1\n"
    assert str(shared_host_dir / "sub") not in host_mounts()


def test_rshared_root_puts_only_the_volume_mounts_on_the_host(ocirt, bundle, cid,
                                                              shared_host_dir):
    ours = (str(shared_host_dir), bundle.config["root"]["path"])
    _mount_tmpfs_inside(bundle, shared_host_dir, "rshared")
    ocirt.ok("run", "--bundle", str(bundle.path), cid)
    # Not the rootfs bind, nor /proc, /dev or anything else mounted inside the rootfs.
    assert [m for m in host_mounts() if m.startswith(ours)] == [str(shared_host_dir),
                                                                str(shared_host_dir / "sub")]


def test_host_mounts_reach_a_default_container(ocirt, bundle, cid, shared_host_dir):
    bundle.config["mounts"].append({"destination": "/vol", "type": "bind",
                                    "source": str(shared_host_dir), "options": ["rbind"]})
    bundle.args("sleep", "100")
    ocirt.ok("run", "--detach", "--bundle", str(bundle.path), cid)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(shared_host_dir / "sub")], check=True)
    p = ocirt("exec", cid, "grep", "-c", " /vol/sub ", "/proc/self/mountinfo")
    assert p.stdout == b"1\n", p.stderr
