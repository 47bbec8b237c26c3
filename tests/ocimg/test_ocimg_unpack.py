"""Unpacking layers: formats, metadata, whiteouts, and never writing outside the root."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

import ocimgtest_images as ti
from ocimg.digest import Digest
from ocimg.errors import DigestError, LayerError, UnsafeEntry
from ocimg.unpack import unpack_layer


def write_layer(tmp: Path, tar: bytes, compression: str = "none") -> tuple[str, Digest]:
    blob, diff_id = ti.layer(tar, compression)
    path = tmp / f"layer-{blob.digest[7:19]}"
    path.write_bytes(blob.data)
    return str(path), Digest.parse(diff_id)


@pytest.fixture
def dest(tmp: Path) -> Path:
    d = tmp / "root" / "layer"
    d.mkdir(parents=True)
    return d


@pytest.fixture
def outside(tmp: Path) -> Path:
    """A directory next to the root that no layer may touch."""
    d = tmp / "root" / "outside"
    d.mkdir()
    (d / "victim").write_text("untouched\n")
    return d


def tree(root: Path) -> dict[str, tuple]:
    """Everything about a tree that unpacking could change."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            content = None
            if stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(Path(p).read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(p)
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, st.st_rdev, content)
    return out


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_gzip_zstd_and_uncompressed_layers_unpack_alike(tmp, dest, compression):
    path, diff_id = write_layer(tmp, ti.TarBuilder().dir("etc").file("etc/hello", b"hi\n").bytes(), compression)
    unpack_layer(path, str(dest), whiteouts="overlay", diff_id=diff_id)
    assert (dest / "etc" / "hello").read_bytes() == b"hi\n"


def test_ownership_modes_mtimes_devices_fifos_hardlinks_and_xattrs_are_preserved(tmp, dest):
    path, diff_id = write_layer(tmp, ti.second_tar(), "zstd")
    unpack_layer(path, str(dest), whiteouts="overlay", diff_id=diff_id)
    c = os.lstat(dest / "data" / "c")
    assert (c.st_uid, c.st_gid, stat.S_IMODE(c.st_mode), c.st_mtime) == (1000, 2000, 0o640, ti.MTIME)
    assert os.getxattr(dest / "data" / "c", "user.origin") == b"layer2"
    assert os.lstat(dest / "data" / "c-link").st_ino == c.st_ino
    assert stat.S_IMODE(os.lstat(dest / "data" / "setuid").st_mode) == 0o4755
    null = os.lstat(dest / "srv" / "null")
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1 and os.minor(null.st_rdev) == 3
    assert stat.S_ISFIFO(os.lstat(dest / "srv" / "fifo").st_mode)
    assert os.readlink(dest / "srv" / "abs-link") == "/etc/motd"
    assert os.lstat(dest / "srv").st_mtime == ti.MTIME  # directories' times survive their children


def test_overlay_mode_turns_whiteouts_into_overlayfs_whiteouts_and_opaque_xattrs(tmp, dest):
    path, diff_id = write_layer(tmp, ti.third_tar())
    unpack_layer(path, str(dest), whiteouts="overlay", diff_id=diff_id)
    wh = os.lstat(dest / "data" / "a")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == os.makedev(0, 0)
    assert os.getxattr(dest / "opt" / "dir", "trusted.overlay.opaque") == b"y"
    assert not list(dest.rglob(".wh.*"))
    assert (dest / "opt" / "dir" / "z").read_bytes() == b"z\n"


def test_copy_mode_applies_whiteouts_and_opaque_dirs_by_deleting(tmp, dest):
    for tar in (ti.base_tar(), ti.second_tar(), ti.third_tar()):
        path, diff_id = write_layer(tmp, tar, "gzip")
        unpack_layer(path, str(dest), whiteouts="delete", diff_id=diff_id)
    assert not (dest / "data" / "a").exists()
    assert (dest / "data" / "b").exists()
    assert sorted(os.listdir(dest / "opt" / "dir")) == ["z"]
    assert (dest / "etc" / "motd").read_text() == "hello from layer 3\n"
    assert not list(dest.rglob(".wh.*"))


def test_a_later_layer_replaces_a_directory_with_a_file(tmp, dest):
    for tar in (ti.TarBuilder().dir("x").file("x/inner", b"1").bytes(), ti.TarBuilder().file("x", b"now a file").bytes()):
        path, diff_id = write_layer(tmp, tar)
        unpack_layer(path, str(dest), whiteouts="delete", diff_id=diff_id)
    assert (dest / "x").read_bytes() == b"now a file"


def test_absolute_and_dotdot_entry_names_are_clamped_inside_the_root(tmp, dest, outside):
    tar = (ti.TarBuilder().file("/abs", b"abs").file("../../outside/victim", b"pwned")
           .file("a/../../../dotdot", b"dd").bytes())
    path, diff_id = write_layer(tmp, tar)
    unpack_layer(path, str(dest), whiteouts="delete", diff_id=diff_id)
    assert (outside / "victim").read_text() == "untouched\n"
    assert (dest / "abs").read_bytes() == b"abs"
    assert (dest / "outside" / "victim").read_bytes() == b"pwned"
    assert (dest / "dotdot").read_bytes() == b"dd"


def test_a_symlinked_parent_is_resolved_inside_the_root_not_on_the_host(tmp, dest, outside):
    tar = (ti.TarBuilder().symlink("evil", str(outside)).file("evil/victim", b"pwned")
           .symlink("rel", "../outside").file("rel/other", b"pwned").bytes())
    path, diff_id = write_layer(tmp, tar)
    with pytest.raises((UnsafeEntry, LayerError)):
        unpack_layer(path, str(dest), whiteouts="delete", diff_id=diff_id)
    assert (outside / "victim").read_text() == "untouched\n"
    assert not (outside / "other").exists()
    assert sorted(os.listdir(outside)) == ["victim"]


def test_a_symlinked_parent_whose_target_exists_in_the_root_writes_there(tmp, dest, outside):
    tar = (ti.TarBuilder().dir("real").symlink("evil", str(outside)).dir("outside_in_root")
           .symlink("link", "/real").file("link/file", b"inside").bytes())
    path, diff_id = write_layer(tmp, tar)
    unpack_layer(path, str(dest), whiteouts="delete", diff_id=diff_id)
    assert (dest / "real" / "file").read_bytes() == b"inside"


def test_a_hard_link_pointing_out_of_the_root_is_never_linked_to_the_host_file(tmp, dest, outside):
    tar = ti.TarBuilder().hardlink("stolen", "../outside/victim").bytes()
    path, diff_id = write_layer(tmp, tar)
    with pytest.raises(LayerError):
        unpack_layer(path, str(dest), whiteouts="delete", diff_id=diff_id)
    assert os.stat(outside / "victim").st_nlink == 1


def test_a_hard_link_through_a_symlink_to_the_host_is_not_followed(tmp, dest, outside):
    tar = ti.TarBuilder().symlink("hostdir", str(outside)).hardlink("stolen", "hostdir/victim").bytes()
    path, diff_id = write_layer(tmp, tar)
    with pytest.raises(LayerError):
        unpack_layer(path, str(dest), whiteouts="delete", diff_id=diff_id)
    assert os.stat(outside / "victim").st_nlink == 1


def test_a_file_entry_never_writes_through_an_existing_symlink(tmp, dest, outside):
    tar = ti.TarBuilder().symlink("f", str(outside / "victim")).file("f", b"pwned").bytes()
    path, diff_id = write_layer(tmp, tar)
    unpack_layer(path, str(dest), whiteouts="delete", diff_id=diff_id)
    assert (outside / "victim").read_text() == "untouched\n"
    assert (dest / "f").read_bytes() == b"pwned" and not (dest / "f").is_symlink()


def test_a_layer_cannot_forge_overlayfs_xattrs(tmp, dest):
    tar = ti.TarBuilder().dir("d").file("d/f", b"x", xattrs={"trusted.overlay.redirect": "/etc"}).bytes()
    path, diff_id = write_layer(tmp, tar)
    unpack_layer(path, str(dest), whiteouts="overlay", diff_id=diff_id)
    assert "trusted.overlay.redirect" not in os.listxattr(dest / "d" / "f")


def test_without_openat2_a_symlinked_parent_is_refused(tmp, dest, outside):
    tar = ti.TarBuilder().symlink("evil", str(outside)).file("evil/victim", b"pwned").bytes()
    path, diff_id = write_layer(tmp, tar)
    with pytest.raises(UnsafeEntry):
        unpack_layer(path, str(dest), whiteouts="delete", diff_id=diff_id, use_openat2=False)
    assert (outside / "victim").read_text() == "untouched\n"


def test_without_openat2_ordinary_layers_still_unpack(tmp, dest):
    path, diff_id = write_layer(tmp, ti.base_tar(), "gzip")
    unpack_layer(path, str(dest), whiteouts="delete", diff_id=diff_id, use_openat2=False)
    assert os.readlink(dest / "bin" / "sh") == "busybox"


def test_a_layer_whose_content_does_not_match_its_diff_id_is_rejected(tmp, dest):
    path, _ = write_layer(tmp, ti.TarBuilder().file("x", b"1").bytes(), "gzip")
    with pytest.raises(DigestError):
        unpack_layer(path, str(dest), whiteouts="overlay", diff_id=Digest.parse("sha256:" + "0" * 64))


def test_a_truncated_layer_is_a_layer_error(tmp, dest):
    path, diff_id = write_layer(tmp, ti.base_tar(), "gzip")
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    with pytest.raises((LayerError, DigestError)):
        unpack_layer(path, str(dest), whiteouts="overlay", diff_id=diff_id)
