"""Layers as umoci and podman accept them, unpacked the same in overlay and copy mode:
whiteouts below a replaced directory, same-layer whiteouts (image-spec: they apply only to
lower layers), whiteouts in a directory only one layer has, and implicit parent directories."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import ocimgtest_images as ti

T = ti.TarBuilder
MODES = ("overlay", "copy")


@pytest.fixture
def bundle_of(ocimg, tmp):
    """bundle_of([tar, ...], mode) -> the rootfs of a bundle of an image with these layers."""
    count = iter(range(1000))

    def make(tars: list[bytes], mode: str) -> Path:
        n = next(count)
        ref = f"localhost/layers-{n}:1"
        img = ti.image([ti.layer(t, "gzip") for t in tars])
        ti.write_layout(str(tmp / f"layout-{n}"), {ref: img})
        ocimg("import", str(tmp / f"layout-{n}"))
        ocimg("bundle", "--mode", mode, ref, str(tmp / f"b-{n}"))
        return tmp / f"b-{n}" / "rootfs"
    return make


def listing(d: Path) -> list[str]:
    """Names in `d`, each checked to be a usable entry (a broken whiteout fails lstat/stat)."""
    names = sorted(os.listdir(d))
    for name in names:
        os.lstat(d / name)
    return names


@pytest.mark.parametrize("mode", MODES)
def test_a_whiteout_below_a_directory_the_layer_made_a_file_is_ignored(bundle_of, mode):
    lower = T().dir("d").file("d/f", b"f").file("d/g", b"g").bytes()
    upper = T().file("d", b"now a file\n").whiteout("d/f").bytes()  # as `umoci repack` writes it
    rootfs = bundle_of([lower, upper], mode)
    assert (rootfs / "d").read_text() == "now a file\n"


@pytest.mark.parametrize("mode", MODES)
def test_a_whiteout_keeps_an_entry_of_its_own_layer(bundle_of, mode):
    lower = T().dir("a").file("a/x", b"lower x").bytes()
    upper = T().dir("a").file("a/y", b"own y").whiteout("a/y").whiteout("a/x").bytes()
    rootfs = bundle_of([lower, upper], mode)
    assert listing(rootfs / "a") == ["y"]
    assert (rootfs / "a" / "y").read_bytes() == b"own y"


@pytest.mark.parametrize("mode", MODES)
def test_an_entry_after_its_whiteout_in_one_layer_replaces_the_lower_one(bundle_of, mode):
    lower = T().dir("a").file("a/x", b"lower x").dir("a/d").file("a/d/old", b"old").bytes()
    upper = T().dir("a").whiteout("a/x").file("a/x", b"new x").whiteout("a/d").dir("a/d").file("a/d/new", b"n").bytes()
    rootfs = bundle_of([lower, upper], mode)
    assert (rootfs / "a" / "x").read_bytes() == b"new x"
    assert listing(rootfs / "a" / "d") == ["new"]


@pytest.mark.parametrize("mode", MODES)
def test_a_whiteout_in_a_directory_only_its_layer_has_leaves_no_broken_entry(bundle_of, mode):
    lower = T().dir("etc").file("etc/passwd", ti.PASSWD.encode()).bytes()
    upper = T().dir("new").file("new/keep", b"k").whiteout("new/ghost").bytes()
    rootfs = bundle_of([lower, upper], mode)
    assert listing(rootfs / "new") == ["keep"]


@pytest.mark.parametrize("mode", MODES)
def test_parents_a_layer_leaves_out_keep_the_lower_layers_owner_mode_and_mtime(bundle_of, mode):
    lower = T().dir("srv", 0o750, uid=1000, gid=2000).dir("srv/deep", 0o710, uid=7).file("srv/deep/a", b"a").bytes()
    upper = T().file("srv/deep/b", b"b").bytes()  # no entries for srv/ or srv/deep/
    rootfs = bundle_of([lower, upper], mode)
    for path, want in ((rootfs / "srv", (0o750, 1000, 2000)), (rootfs / "srv" / "deep", (0o710, 7, 0))):
        st = os.stat(path)
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime) == (*want, ti.MTIME), path
    assert listing(rootfs / "srv" / "deep") == ["a", "b"]


def test_one_layer_under_two_different_lower_stacks_is_unpacked_for_each(bundle_of):
    """The same layer (diff_id) needs a whiteout over one base and none over another."""
    shared = T().dir("x").whiteout("x/old").file("x/new", b"n").bytes()
    with_old = bundle_of([T().dir("x").file("x/old", b"o").bytes(), shared], "overlay")
    without = bundle_of([T().dir("x").file("x/other", b"t").bytes(), shared], "overlay")
    assert listing(with_old / "x") == ["new"]
    assert listing(without / "x") == ["new", "other"]


def overlay_lowerdirs(mountpoint: Path) -> list[str] | None:
    """The lower dirs of the overlay mounted at `mountpoint`, from mountinfo's super options."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == str(mountpoint):
                sep = fields.index("-")
                opts = fields[sep + 3].split(",")
                return [o for o in opts if o.startswith("lowerdir")]
    return None


def test_an_image_of_130_layers_is_bundled_in_overlay_mode(bundle_of):
    tars = [T().dir("layers").file(f"layers/{i:03d}", f"{i}\n".encode()).file("top", f"{i}\n".encode()).bytes()
            for i in range(130)]
    rootfs = bundle_of(tars, "overlay")
    assert overlay_lowerdirs(rootfs)  # an overlay mount, not a copy
    assert len(listing(rootfs / "layers")) == 130
    assert (rootfs / "top").read_text() == "129\n"
    assert (rootfs / "layers" / "000").read_text() == "0\n"


@pytest.mark.parametrize("user", ["", "app"])
def test_a_self_looping_etc_passwd_is_a_one_line_error_only_when_a_name_needs_it(ocimg, tmp, user):
    ref = f"localhost/loop-{user or 'root'}:1"
    img = ti.image([ti.layer(T().dir("etc").symlink("etc/passwd", "/etc/passwd").bytes(), "gzip")], User=user)
    ti.write_layout(str(tmp / "layout"), {ref: img})
    ocimg("import", str(tmp / "layout"))
    p = ocimg("bundle", ref, str(tmp / "b"), check=False)
    if not user:
        assert p.returncode == 0, p.stderr  # root needs no look-up
        return
    assert p.returncode == 1 and p.stderr.count("\n") == 1
    assert p.stderr == ("ocimg: user 'app' of the image is not in its /etc/passwd "
                        "(/etc/passwd cannot be read: Too many levels of symbolic links)\n")
    assert not (tmp / "b").exists()
