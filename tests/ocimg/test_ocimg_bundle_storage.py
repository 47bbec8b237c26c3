"""Bundles as container storage: not removed under a running container, and mounted again
with their writable layer after a reboot (simulated by unmounting the rootfs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from ocimgtest_support import REPO, mounts_under


@pytest.fixture
def image_ref(ocimg, registry):
    ref = f"{registry.host}/test/busybox"
    ocimg("pull", "--insecure", ref)
    return ref


def run_detached(runc, bundle) -> str:
    """`runc run -d`: a container left running (sleep), cleaned up by the runc fixture."""
    cid = f"ocimg-test-{uuid.uuid4().hex[:12]}"
    runc.ids.append(cid)
    # The container keeps runc's stdio: files, not pipes that would never reach EOF.
    with open(bundle.parent / f"{cid}.log", "w+") as log:
        p = subprocess.run(["runc", "--root", str(runc.root), "run", "-d", "--bundle", str(bundle), cid],
                           stdin=subprocess.DEVNULL, stdout=log, stderr=log, timeout=60)
        log.seek(0)
        assert p.returncode == 0, log.read()
    return cid


def runc_pid(runc, cid: str) -> int:
    out = subprocess.run(["runc", "--root", str(runc.root), "state", cid], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)["pid"]


@pytest.mark.parametrize("mode", ["overlay", "copy"])
def test_remove_is_refused_while_a_container_runs_from_the_bundle(ocimg, image_ref, tmp, runc, mode):
    ocimg("bundle", "--mode", mode, image_ref, str(tmp / "b"), "--", "/bin/sleep", "1000")
    cid = run_detached(runc, tmp / "b")
    pid = runc_pid(runc, cid)
    p = ocimg("bundle", "--remove", str(tmp / "b"), check=False)
    assert p.returncode == 1
    assert p.stderr == f"ocimg: a container is running from {tmp / 'b'} (pid {pid}): stop it first, or use --force\n"
    assert (tmp / "b" / "config.json").exists() and (tmp / "b" / ".ocimg").is_dir()
    assert os.readlink(f"/proc/{pid}/exe").endswith("busybox")  # still running, its rootfs whole
    subprocess.run(["runc", "--root", str(runc.root), "delete", "--force", cid], check=True, capture_output=True)
    ocimg("bundle", "--remove", str(tmp / "b"))
    assert not (tmp / "b").exists()


def test_remove_force_removes_a_bundle_in_use(ocimg, image_ref, tmp, runc):
    ocimg("bundle", image_ref, str(tmp / "b"), "--", "/bin/sleep", "1000")
    run_detached(runc, tmp / "b")
    ocimg("bundle", "--remove", "--force", str(tmp / "b"))
    assert not (tmp / "b").exists() and mounts_under(str(tmp / "b")) == []


def write_in_container(runc, bundle_dir) -> None:
    p = runc.run(bundle_dir)
    assert p.returncode == 0, p.stderr


@pytest.fixture
def rebooted(ocimg, image_ref, tmp, runc):
    """An overlay bundle whose container wrote a file, then its rootfs unmounted as by a reboot."""
    ocimg("bundle", image_ref, str(tmp / "b"), "--", "/bin/sh", "-c",
          "cat /data/written 2>/dev/null; echo kept > /data/written; rm -f /etc/motd")
    write_in_container(runc, tmp / "b")
    subprocess.run(["umount", str(tmp / "b" / "rootfs")], check=True)
    assert os.listdir(tmp / "b" / "rootfs") == []
    return tmp / "b"


def check_restored(bundle) -> None:
    rootfs = bundle / "rootfs"
    assert mounts_under(str(rootfs)) == [str(rootfs)]
    assert (rootfs / "data" / "written").read_text() == "kept\n"
    assert not (rootfs / "etc" / "motd").exists()  # the deletion (a whiteout in the upper dir) too
    assert (rootfs / "bin" / "busybox").is_file()


def test_mount_restores_a_bundle_after_a_reboot_with_its_writable_layer(ocimg, rebooted):
    assert ocimg("mount", str(rebooted)).stdout == f"{rebooted}/rootfs mounted\n"
    check_restored(rebooted)
    assert ocimg("mount", str(rebooted)).stdout == f"{rebooted}/rootfs needs no mount\n"
    assert len(mounts_under(str(rebooted))) == 1


def test_bundle_of_the_same_image_into_an_unmounted_bundle_mounts_it_again(ocimg, image_ref, rebooted, runc):
    before = (rebooted / "config.json").read_text()
    p = ocimg("bundle", image_ref, str(rebooted), "--", "/bin/true")
    assert "existing bundle" in p.stdout
    check_restored(rebooted)
    assert (rebooted / "config.json").read_text() == before
    p = runc.run(rebooted)  # the kept config: the container sees its own earlier write
    assert (p.returncode, p.stdout) == (0, "kept\n"), p.stderr


def test_bundle_of_another_image_into_an_existing_bundle_is_refused(ocimg, image_ref, registry, tmp):
    ocimg("pull", "--insecure", f"{registry.host}/test/gzip")
    ocimg("bundle", image_ref, str(tmp / "b"))
    p = ocimg("bundle", f"{registry.host}/test/gzip", str(tmp / "b"), check=False)
    assert p.returncode == 1 and "is already a bundle of" in p.stderr
    assert (tmp / "b" / "rootfs" / "etc" / "motd").read_text() == "hello from layer 3\n"


def test_mount_of_a_directory_that_is_no_bundle_is_a_one_line_error(ocimg, tmp):
    (tmp / "plain").mkdir()
    p = ocimg("mount", str(tmp / "plain"), check=False)
    assert p.returncode == 1
    assert p.stderr == f"ocimg: {tmp / 'plain'} is not a bundle made by ocimg (no .ocimg/bundle.json)\n"


def test_remove_is_refused_for_a_created_ocirt_container_not_started_yet(ocimg, image_ref, tmp):
    from test_ocimg_bundle import _ocirt_can_run_containers

    ocimg("bundle", image_ref, str(tmp / "probe"), "--", "/bin/true")
    why = _ocirt_can_run_containers(tmp, tmp / "probe")
    if why:
        pytest.skip(why)
    ocimg("bundle", image_ref, str(tmp / "b"), "--", "/bin/true")
    ocirt = [sys.executable, "-m", "ocirt", "--root", str(tmp / "ocirt-root")]
    try:
        with open(tmp / "ocirt.log", "w+") as log:
            p = subprocess.run([*ocirt, "create", "--bundle", str(tmp / "b"), "ocimg-created"], cwd=REPO,
                               stdin=subprocess.DEVNULL, stdout=log, stderr=log, timeout=60)
            log.seek(0)
            assert p.returncode == 0, log.read()
        p = ocimg("bundle", "--remove", str(tmp / "b"), check=False)
        assert p.returncode == 1 and "a container is running from" in p.stderr
    finally:
        subprocess.run([*ocirt, "delete", "--force", "ocimg-created"], cwd=REPO, capture_output=True, timeout=60)
    ocimg("bundle", "--remove", str(tmp / "b"))


def test_mount_all_restores_every_bundle_of_the_store(ocimg, image_ref, rebooted):
    ocimg("bundle", "--mode", "copy", image_ref, str(rebooted.parent / "copied"))
    out = ocimg("mount", "--all").stdout.splitlines()
    assert sorted(out) == [f"{rebooted}/rootfs mounted", f"{rebooted.parent / 'copied'}/rootfs needs no mount"]
    check_restored(rebooted)
