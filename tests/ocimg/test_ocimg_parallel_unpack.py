"""Layers unpacked in parallel come out exactly as unpacked one after another: every entry's
type, owner, mode, mtime, device, content, xattrs (overlay whiteouts and opaque markers too)
and hard links, in every layer directory of the store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import ocimgtest_images as ti
from ocimg.errors import DigestError
from ocimg.lowerview import is_whiteout
from ocimg.store import Store, chain_ids
from test_ocimg_unpack import tree

T = ti.TarBuilder
REF = "localhost/parallel:1"


def entries(root: Path) -> dict[str, tuple]:
    """tree() plus each entry's xattrs and which entries of the layer are one inode.

    Overlay whiteouts have no time of their own (the time they were made): theirs is left out.
    """
    out = {}
    inodes: dict[int, str] = {}
    for rel, facts in tree(root).items():
        p = os.path.join(root, rel)
        if is_whiteout(os.lstat(p)):
            facts = (*facts[:3], None, *facts[4:])
        xattrs = {a: os.getxattr(p, a, follow_symlinks=False) for a in sorted(os.listxattr(p, follow_symlinks=False))}
        ino = os.lstat(p).st_ino
        out[rel] = (*facts, xattrs, inodes.setdefault(ino, rel))
    return out


def store_of(tmp: Path, name: str, tars: list[bytes], compression: str = "gzip") -> Store:
    img = ti.image([ti.layer(t, compression) for t in tars])
    return Store(ti.write_layout(str(tmp / name), {REF: img})).init()


def unpacked_serially(store: Store) -> list[str]:
    image = store.image(REF)
    out: list[str] = []
    for desc, diff_id, chain in zip(image.manifest.layers, image.config.diff_ids, chain_ids(image.config.diff_ids)):
        out.append(store.unpack_shared(desc, diff_id, chain, list(reversed(out))))
    return out


def assert_parallel_matches_serial(tmp: Path, tars: list[bytes]) -> None:
    serial = unpacked_serially(store_of(tmp, "serial", tars))
    parallel_store = store_of(tmp, "parallel", tars)
    parallel = parallel_store.unpacked_layers(parallel_store.image(REF))
    assert [os.path.basename(p) for p in parallel] == [os.path.basename(p) for p in serial]
    for s, p in zip(serial, parallel):
        assert entries(Path(p)) == entries(Path(s)), os.path.basename(p)


def base() -> bytes:
    srv_xattrs = {"SCHILY.xattr.user.note": "base", "SCHILY.xattr.user.base-only": "base"}
    t = T().dir("srv", 0o750, uid=1000, gid=2000, pax_headers=srv_xattrs)
    t.dir("srv/deep", 0o710, uid=7).file("srv/deep/a", b"a")
    t.dir("data").file("data/a", b"a").file("data/b", b"b")
    t.dir("opt").dir("opt/dir").file("opt/dir/x", b"x").file("opt/dir/y", b"y")
    t.dir("keep").file("keep/f", b"f", xattrs={"user.origin": "base"}).hardlink("keep/f-link", "keep/f")
    t.dir("ghosts").file("ghosts/g", b"g")
    return t.bytes()


def middle() -> bytes:
    t = T().file("srv/deep/b", b"b")  # parents left out: they take the base's attributes
    t.dir("data").whiteout("data/a").whiteout("data/never-there")
    t.whiteout("data/b").dir("data/b", 0o700)  # replaced by a directory: opaque over the base's file
    t.whiteout("data/q").dir("data/q")  # nothing below to hide: no opaque marker
    t.dir("opt").dir("opt/dir").opaque("opt/dir").file("opt/dir/z", b"z")
    t.dir("new").opaque("new").file("new/n", b"n").whiteout("new/ghost")
    t.dir("keep").file("keep/own", b"own").whiteout("keep/own").whiteout("keep/f")
    t.dir("data2").file("data2/c", b"c", 0o640, uid=1000, gid=2000, xattrs={"user.origin": "middle"})
    t.hardlink("data2/c-link", "data2/c").file("data2/setuid", b"#!/bin/sh\n", 0o4755)
    t.chardev("data2/null", 1, 3).fifo("data2/fifo").symlink("data2/abs", "/etc/motd")
    # An entry for a parent made earlier without one: its own owner, mode and xattrs win; the
    # base's other xattrs stay.
    t.dir("srv", 0o700, uid=5, pax_headers={"SCHILY.xattr.user.mine": "middle", "SCHILY.xattr.user.note": "middle"})
    return t.bytes()


def top() -> bytes:
    t = T().whiteout("ghosts").file("srv/deep/c", b"c")  # srv as the middle layer left it
    t.dir("new").opaque("new").file("new/m", b"m")
    t.dir("data").whiteout("data/a")  # already hidden by the middle layer's whiteout
    return t.bytes()


def test_parallel_unpack_of_a_multi_layer_image_matches_the_serial_one_entry_by_entry(tmp):
    assert_parallel_matches_serial(tmp, [base(), middle(), top()])


def test_a_layer_whose_whiteout_is_in_a_directory_it_leaves_out_matches_too(tmp):
    """Its parents exist only if a lower layer has the target: decided after the lowers."""
    hides = T().whiteout("opt/dir/y").whiteout("opt/none/y").file("late", b"l").bytes()
    assert_parallel_matches_serial(tmp, [base(), middle(), hides])


def test_parallel_unpack_with_a_corrupt_lower_layer_fails_and_leaves_no_layer_behind(tmp):
    store = store_of(tmp, "corrupt", [base(), middle(), top()], "none")
    image = store.image(REF)
    blob = Path(store.layout.blob_path(image.manifest.layers[1].digest))
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes().replace(b"#!/bin/sh", b"#!/bin/XX"))  # same size, other content
    with pytest.raises(DigestError, match="does not match diff_id"):
        store.unpacked_layers(image)
    layers = os.path.join(store.root, "layers", "sha256")
    left = sorted(n for n in os.listdir(layers) if not n.endswith(".lock"))
    assert left == [chain_ids(image.config.diff_ids)[0].hex]
