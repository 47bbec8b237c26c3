"""Idmapped bind mounts (options idmap/ridmap, mount uidMappings/gidMappings): owners seen
from inside the container and written to disk, on ext4 and tmpfs; sources that cannot be
idmapped fail naming the mount."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from ocirt_testlib import run_out

HOST_ID = 100000


def _fstype(path: str) -> str:
    return subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True,
                          text=True, check=True).stdout.strip()


@pytest.fixture
def area():
    """A directory on the host's ext4 (the tests skip elsewhere), reachable by mapped ids."""
    d = Path(tempfile.mkdtemp(prefix="ocirt-idmap-", dir="/var/tmp"))
    d.chmod(0o755)
    if _fstype(str(d)) != "ext2/ext3":
        shutil.rmtree(d)
        pytest.skip("/var/tmp is not on ext4 here")
    yield d
    subprocess.run(["umount", "-R", "-q", str(d / "tmpfs")], capture_output=True)
    subprocess.run(["umount", "-q", str(d / "ovl")], capture_output=True)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def userns_bundle(bundle, area, rootfs_template):
    shutil.copytree(rootfs_template, area / "rootfs", symlinks=True)
    (area / "rootfs" / "data").mkdir()
    bundle.config["root"]["path"] = str(area / "rootfs")
    linux = bundle.config["linux"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": HOST_ID, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": HOST_ID, "size": 65536}]
    return bundle.write()


def _shared_dir(area: Path, owner: int = 0) -> Path:
    """Files owned by 0 and 1000 in a directory owned by `owner`: the kernel refuses writes
    to an inode whose owner the mount's idmap leaves unmapped, so `owner` must be mapped."""
    d = area / "shared"
    d.mkdir()
    d.chmod(0o777)
    os.chown(d, owner, owner)
    (d / "by-root").write_text("x")
    (d / "by-1000").write_text("x")
    os.chown(d / "by-1000", 1000, 1000)
    return d


def _bind(bundle, source: Path, options: list[str], **extra) -> None:
    bundle.config["mounts"].append({"destination": "/data", "type": "bind",
                                    "source": str(source), "options": options, **extra})
    bundle.write()


OWNERS = "stat -c '%n %u:%g' /data/by-root /data/by-1000; touch /data/new; grep ' /data ' " \
         "/proc/self/mountinfo"


def test_idmap_without_mount_maps_uses_the_container_s_user_namespace(ocirt, userns_bundle,
                                                                      cid, area):
    src = _shared_dir(area)
    _bind(userns_bundle, src, ["bind", "idmap"])
    out = run_out(ocirt, userns_bundle, cid, OWNERS).splitlines()
    # on disk 0 and 1000 are, through the container's map, its root and its uid 1000
    assert out[:2] == ["/data/by-root 0:0", "/data/by-1000 1000:1000"]
    assert "idmapped" in out[2].split()[5].split(",")
    st = (src / "new").stat()
    assert (st.st_uid, st.st_gid) == (0, 0)       # not HOST_ID: written through the idmap


def test_without_idmap_the_same_files_are_unmapped(ocirt, userns_bundle, cid, area):
    src = _shared_dir(area)
    _bind(userns_bundle, src, ["bind"])
    out = run_out(ocirt, userns_bundle, cid, OWNERS + " 2>&1; true").splitlines()
    assert out[:2] == ["/data/by-root 65534:65534", "/data/by-1000 65534:65534"]


def test_mount_maps_translate_disk_ids(ocirt, userns_bundle, cid, area):
    src = _shared_dir(area, owner=1000)
    # on disk 1000 shows as host HOST_ID (the container's root), and back
    maps = [{"containerID": 1000, "hostID": HOST_ID, "size": 1}]
    _bind(userns_bundle, src, ["bind", "idmap"], uidMappings=maps, gidMappings=maps)
    out = run_out(ocirt, userns_bundle, cid, OWNERS + " 2>&1; true").splitlines()
    assert out[:2] == ["/data/by-root 65534:65534", "/data/by-1000 0:0"]
    st = (src / "new").stat()
    assert (st.st_uid, st.st_gid) == (1000, 1000)


def test_idmapped_tmpfs_source(ocirt, userns_bundle, cid, area):
    t = area / "tmpfs"
    t.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=777", "tmpfs", str(t)], check=True)
    (t / "by-root").write_text("x")
    (t / "by-1000").write_text("x")
    os.chown(t / "by-1000", 1000, 1000)
    _bind(userns_bundle, t, ["bind", "idmap"])
    out = run_out(ocirt, userns_bundle, cid, OWNERS).splitlines()
    assert out[:2] == ["/data/by-root 0:0", "/data/by-1000 1000:1000"]
    assert (t / "new").stat().st_uid == 0


@pytest.fixture
def tree_with_tmpfs_below(area):
    """The shared directory with a tmpfs mounted at tmpfs/ inside it, holding a file f."""
    src = _shared_dir(area)
    (src / "tmpfs").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=777", "tmpfs", str(src / "tmpfs")],
                   check=True)
    (src / "tmpfs" / "f").write_text("x")
    yield src
    subprocess.run(["umount", str(src / "tmpfs")], check=True)


def test_ridmap_maps_the_mounts_below_too(ocirt, userns_bundle, cid, tree_with_tmpfs_below):
    _bind(userns_bundle, tree_with_tmpfs_below, ["rbind", "ridmap"])
    out = run_out(ocirt, userns_bundle, cid, "stat -c '%u' /data/by-root /data/tmpfs/f")
    assert out.split() == ["0", "0"]


def test_idmap_maps_only_the_top_mount(ocirt, userns_bundle, cid, tree_with_tmpfs_below):
    _bind(userns_bundle, tree_with_tmpfs_below, ["rbind", "idmap"])
    out = run_out(ocirt, userns_bundle, cid, "stat -c '%u' /data/by-root /data/tmpfs/f")
    assert out.split() == ["0", "65534"]


def test_mount_maps_without_a_container_user_namespace(ocirt, bundle, cid, area,
                                                      rootfs_template):
    # The container's root is the host's: disk 1000 shows as 0, and root writes 1000.
    src = _shared_dir(area, owner=1000)
    maps = [{"containerID": 1000, "hostID": 0, "size": 1}]
    bundle.config["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(src),
                                    "options": ["bind", "idmap"], "uidMappings": maps,
                                    "gidMappings": maps})
    out = run_out(ocirt, bundle, cid, "stat -c '%u:%g' /mnt/by-1000; touch /mnt/new")
    assert out.split() == ["0:0"]
    st = (src / "new").stat()
    assert (st.st_uid, st.st_gid) == (1000, 1000)


def test_overlay_source_cannot_be_idmapped(ocirt, userns_bundle, cid, area):
    for d in ("lower", "upper", "work", "ovl"):
        (area / d).mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={area}/lower,upperdir={area}/upper,workdir={area}/work",
                    str(area / "ovl")], check=True)
    _bind(userns_bundle, area / "ovl", ["bind", "idmap"])
    userns_bundle.args("true")
    p = ocirt("run", "--bundle", str(userns_bundle.path), cid)
    assert p.returncode == 1
    err = p.stderr.decode()
    n = len(userns_bundle.config["mounts"]) - 1
    assert f"mounts[{n}]: cannot idmap" in err and "overlay" in err, err
    assert ocirt.ids() == []


def test_idmap_without_maps_or_user_namespace_is_a_config_error(ocirt, bundle, cid, area):
    _bind(bundle, area, ["bind", "idmap"])
    bundle.args("true")
    p = ocirt("run", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    n = len(bundle.config["mounts"]) - 1
    assert f"mounts[{n}].options" in p.stderr.decode()
    assert ocirt.ids() == []


def test_mount_maps_without_the_idmap_option_are_a_config_error(ocirt, bundle, cid, area):
    maps = [{"containerID": 0, "hostID": 0, "size": 1}]
    _bind(bundle, area, ["bind"], uidMappings=maps, gidMappings=maps)
    p = ocirt("run", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    assert "uidMappings: mount id mappings need the idmap or ridmap option" in \
        p.stderr.decode()


def test_features_report_idmapped_mounts(ocirt):
    doc = json.loads(ocirt.ok("features").stdout)
    assert doc["linux"]["mountExtensions"]["idmap"]["enabled"] is True
    assert {"idmap", "ridmap"} <= set(doc["mountOptions"])
