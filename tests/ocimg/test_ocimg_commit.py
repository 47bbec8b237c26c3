"""`ocimg commit BUNDLE REF`: an overlay bundle's writable layer as a new image layer."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import zstandard

from ocimg.store import Store
from ocimgtest_support import REPO, mounts_under

CHANGES = ("echo changed > /etc/motd; rm /data/b; rm -r /opt/dir; mkdir /opt/dir; echo new > /opt/dir/n; "
           "mkdir /newdir; echo hi > /newdir/f; ln /newdir/f /newdir/f2; chown 1000:2000 /newdir/f")
SHOW = "cat /etc/motd; ls /data; ls /opt/dir; cat /newdir/f2; stat -c '%u:%g' /newdir/f"
SHOWN = ["changed", "c", "c-link", "setuid", "n", "hi", "1000:2000"]


def changed_bundle(ocimg, ref: str, bundle: Path, runc) -> Path:
    """An overlay bundle of `ref` whose container changed, deleted and replaced files."""
    ocimg("pull", "--insecure", ref)
    ocimg("bundle", ref, str(bundle), "--", "/bin/sh", "-c", CHANGES)
    p = runc.run(bundle)
    assert p.returncode == 0, p.stderr
    os.setxattr(bundle / "rootfs" / "newdir" / "f", "user.note", b"kept")
    return bundle


def assert_shows_the_changes(ocimg, ref: str, bundle: Path, runc, mode: str = "overlay") -> None:
    """A bundle of `ref` runs and sees what CHANGES did."""
    ocimg("bundle", "--mode", mode, ref, str(bundle), "--", "/bin/sh", "-c", SHOW)
    p = runc.run(bundle)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == SHOWN


@pytest.fixture
def changed(ocimg, registry, tmp, runc) -> Path:
    """test/busybox (gzip, zstd and plain layers), changed."""
    return changed_bundle(ocimg, f"{registry.host}/test/busybox", tmp / "b", runc)


@pytest.fixture
def changed_gzip(ocimg, registry, tmp, runc) -> Path:
    """test/gzip (gzip layers only, which every tool reads), changed."""
    return changed_bundle(ocimg, f"{registry.host}/test/gzip", tmp / "b", runc)


def layer_tar(store: Path, image: str) -> tuple[dict, tarfile.TarFile]:
    """(the top layer's descriptor, its tar) of `image` in `store`."""
    st = Store(str(store))
    img = st.image(image)
    desc = img.manifest.layers[-1]
    data = Path(st.layout.blob_path(desc.digest)).read_bytes()
    raw = gzip.decompress(data) if desc.media_type.endswith("gzip") else \
        zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    return desc.to_json(), tarfile.open(fileobj=io.BytesIO(raw))


def test_commit_appends_one_layer_its_diff_id_and_a_history_entry(ocimg, changed, images):
    base = json.loads(ocimg("inspect", images_ref(ocimg)).stdout)
    p = ocimg("commit", "-m", "my change", str(changed), "example.org/mine:v1")
    new = json.loads(ocimg("inspect", "example.org/mine:v1").stdout)
    assert p.stdout == f"example.org/mine:v1 {new['Digest']}\n"
    assert new["MediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert [l["digest"] for l in new["Layers"][:-1]] == [l["digest"] for l in base["Layers"]]
    assert new["Layers"][-1]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert new["Config"]["rootfs"]["diff_ids"] == [*base["Config"]["rootfs"]["diff_ids"], new["Layers"][-1]["diffID"]]
    assert new["Config"]["history"][-1]["created_by"] == "ocimg commit"
    assert new["Config"]["history"][-1]["comment"] == "my change"
    assert new["Config"]["config"] == base["Config"]["config"]
    assert new["Platform"] == base["Platform"]


def images_ref(ocimg) -> str:
    return ocimg("images", "-q").stdout.split()[0]


def test_the_committed_image_runs_with_the_change_in_overlay_and_copy_bundles(ocimg, changed, tmp, runc):
    ocimg("commit", str(changed), "mine")
    for mode in ("overlay", "copy"):
        assert_shows_the_changes(ocimg, "mine", tmp / mode, runc, mode)
    assert not (tmp / "copy" / "rootfs" / "data" / "b").exists()
    assert os.getxattr(tmp / "copy" / "rootfs" / "newdir" / "f", "user.note") == b"kept"


def test_the_layer_is_a_sorted_tar_with_image_spec_whiteouts_numeric_owners_and_pax_xattrs(ocimg, changed):
    ocimg("commit", str(changed), "mine")
    _, tf = layer_tar(ocimg.root, "mine")
    members = tf.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert {"data/.wh.b", "opt/dir/.wh..wh..opq", "opt/dir/n", "etc/motd", "newdir/f"} <= set(names)
    assert not any(n.startswith("opt/dir/") and n[8:] in ("x", "y", "z") for n in names)
    assert all(m.uname == "" and m.gname == "" for m in members)
    f = tf.getmember("newdir/f")
    assert (f.uid, f.gid) == (1000, 2000)
    assert f.pax_headers["SCHILY.xattr.user.note"] == "kept"
    link = tf.getmember("newdir/f2")
    assert link.islnk() and link.linkname == "newdir/f"
    assert not any("trusted.overlay" in k for m in members for k in m.pax_headers)
    assert tf.getmember("etc/motd").mtime == int(os.stat(changed / ".ocimg" / "upper" / "etc" / "motd").st_mtime)


def test_committing_the_same_changes_twice_gives_the_same_layer(ocimg, changed):
    ocimg("commit", str(changed), "one")
    ocimg("commit", str(changed), "two")
    assert layer_tar(ocimg.root, "one")[0] == layer_tar(ocimg.root, "two")[0]


def test_zstd_compression(ocimg, changed, tmp, runc):
    ocimg("commit", "--compression", "zstd", str(changed), "mine")
    desc, tf = layer_tar(ocimg.root, "mine")
    assert desc["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert "data/.wh.b" in tf.getnames()
    assert_shows_the_changes(ocimg, "mine", tmp / "z", runc)


@pytest.mark.skipif(not shutil.which("umoci"), reason="umoci is not installed")
def test_umoci_unpacks_the_committed_image(ocimg, changed_gzip, tmp):
    ocimg("commit", str(changed_gzip), "mine")
    p = subprocess.run(["umoci", "unpack", "--image", f"{ocimg.root}:docker.io/library/mine:latest",
                        str(tmp / "umoci")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    rootfs = tmp / "umoci" / "rootfs"
    assert (rootfs / "etc" / "motd").read_text() == "changed\n"
    assert not (rootfs / "data" / "b").exists()
    assert sorted(os.listdir(rootfs / "opt" / "dir")) == ["n"]


@pytest.mark.skipif(not shutil.which("skopeo"), reason="skopeo is not installed")
def test_skopeo_inspects_the_committed_image(ocimg, changed):
    ocimg("commit", str(changed), "mine")
    new = json.loads(ocimg("inspect", "mine").stdout)
    p = subprocess.run(["skopeo", "inspect", f"oci:{ocimg.root}:docker.io/library/mine:latest"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["Digest"] == new["Digest"] and doc["Layers"] == [l["digest"] for l in new["Layers"]]


def test_a_copy_mode_bundle_commits_what_differs_from_its_image(ocimg, registry, tmp, runc):
    ref = f"{registry.host}/test/busybox"
    ocimg("pull", "--insecure", ref)
    ocimg("bundle", "--mode", "copy", ref, str(tmp / "c"), "--", "/bin/sh", "-c", CHANGES)
    assert runc.run(tmp / "c").returncode == 0
    ocimg("commit", str(tmp / "c"), "mine")
    _, tf = layer_tar(ocimg.root, "mine")
    names = tf.getnames()
    assert names == sorted(names)
    assert {"data/.wh.b", "etc/motd", "opt/dir/.wh.z", "opt/dir/n", "newdir/f", "newdir/f2"} <= set(names)
    assert not {"bin/busybox", "data/c", "etc/passwd", "srv/null"} & set(names)  # unchanged
    assert mounts_under(str(tmp / "c")) == [] and sorted(os.listdir(tmp / "c" / ".ocimg")) == ["bundle.json"]
    assert_shows_the_changes(ocimg, "mine", tmp / "again", runc)


def test_an_unchanged_copy_mode_bundle_commits_an_empty_layer(ocimg, registry, tmp):
    ref = f"{registry.host}/test/busybox"
    ocimg("pull", "--insecure", ref)
    ocimg("bundle", "--mode", "copy", ref, str(tmp / "c"))
    ocimg("commit", str(tmp / "c"), "mine")
    assert layer_tar(ocimg.root, "mine")[1].getnames() == []


def test_commit_of_a_directory_that_is_no_bundle_is_a_one_line_error(ocimg, changed, tmp):
    p = ocimg("commit", str(tmp), "mine", check=False)
    assert p.returncode == 1
    assert p.stderr == f"ocimg: {tmp} is not a bundle made by ocimg (no .ocimg/bundle.json)\n"


def test_commit_into_another_store_than_the_bundles_is_refused(ocimg, changed, tmp):
    p = ocimg("--root", str(tmp / "other"), "commit", str(changed), "mine", check=False)
    assert p.returncode == 1
    assert p.stderr.startswith(f"ocimg: {changed} was made from the store {ocimg.root}, not {tmp / 'other'}")


def test_a_killed_commits_temp_file_is_removed_by_gc(ocimg, changed):
    left = ocimg.root / "ingest" / ".tmp-commit-abc"
    left.write_bytes(b"partial")
    ocimg("gc")
    assert not left.exists()


def test_a_gzip_commit_and_tag_import_neither_zstandard_nor_the_registry_client(ocimg, changed):
    code = ("import sys, ocimg.cli\n"
            "for argv in (['commit', sys.argv[2], 'mine'], ['tag', 'mine', 'other']):\n"
            "    assert ocimg.cli.main(['--root', sys.argv[1], *argv]) == 0\n"
            "print(' '.join(m for m in ('zstandard', 'urllib3', 'ocimg.registry.client') if m in sys.modules))\n")
    p = subprocess.run([sys.executable, "-c", code, str(ocimg.root), str(changed)], cwd=REPO, env=ocimg.env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[-1] == ""


def test_binary_xattr_values_survive_the_commit(ocimg, changed, tmp):
    value = b"\xff\x00\x01not utf-8\xfe"
    os.setxattr(changed / "rootfs" / "newdir" / "f2", "user.raw", value)
    ocimg("commit", str(changed), "mine")
    ocimg("bundle", "--mode", "copy", "mine", str(tmp / "c"))
    assert os.getxattr(tmp / "c" / "rootfs" / "newdir" / "f", "user.raw") == value
