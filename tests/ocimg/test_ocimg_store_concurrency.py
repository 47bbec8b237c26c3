"""pull, bundle, rm and gc run at the same time on one store, as separate processes: gc never
removes what a running pull or unpack holds, and a layer is only used once fully unpacked."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import ocimgtest_images as ti

FILES = 3000


def many_files_image() -> ti.Image:
    t = ti.TarBuilder().dir("etc").file("etc/passwd", ti.PASSWD.encode()).dir("many")
    for i in range(FILES):
        t.file(f"many/f{i:05d}", b"x" * 64)
    t.file("etc/zz-last", b"last entry\n")
    return ti.image([ti.layer(t.bytes(), "gzip")], Cmd=["/bin/true"])


def gc_is_waiting(proc: subprocess.Popen) -> bool:
    """True once `proc` waits in flock(2) (a blocked request in /proc/locks); False if it exited."""
    while proc.poll() is None:
        with open("/proc/locks") as f:
            if any("->" in line and f" {proc.pid} " in line for line in f):
                return True
    return False


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    _, err = proc.communicate(timeout=180)
    return proc.returncode, err


def first_match(directory: Path, prefix: str, proc: subprocess.Popen) -> bool:
    """Wait until an entry named prefix* shows up in `directory`, or `proc` exits."""
    while proc.poll() is None:
        if directory.is_dir() and any(n.startswith(prefix) for n in os.listdir(directory)):
            return True
    return False


def test_gc_during_a_first_bundle_waits_and_the_layer_is_complete(ocimg, tmp):
    ti.write_layout(str(tmp / "layout"), {"localhost/many:1": many_files_image()})
    ocimg("import", str(tmp / "layout"))
    ocimg("rm", "localhost/many:1")  # unnamed: gc would delete its blobs and layers if it could
    ocimg("import", str(tmp / "layout"))
    bundle = ocimg.spawn("bundle", "--mode", "overlay", "localhost/many:1", str(tmp / "b"))
    if not first_match(ocimg.root / "layers" / "sha256", ".tmp-", bundle):
        finish(bundle)
        pytest.skip("the layer was unpacked before gc could start")
    gc = ocimg.spawn("gc")
    assert gc_is_waiting(gc)
    assert finish(bundle) == (0, "")
    assert finish(gc)[0] == 0
    rootfs = tmp / "b" / "rootfs"
    assert len(os.listdir(rootfs / "many")) == FILES
    assert (rootfs / "etc" / "zz-last").read_text() == "last entry\n"
    ocimg("bundle", "localhost/many:1", str(tmp / "c"))
    assert len(os.listdir(tmp / "c" / "rootfs" / "many")) == FILES


def test_gc_during_a_pull_keeps_the_blobs_it_already_committed(ocimg, registry, gated_proxy, images, tmp):
    small = ti.layer(ti.TarBuilder().file("small", b"small\n").bytes(), "gzip")
    late = ti.layer(ti.TarBuilder().file("late", b"late\n").bytes(), "gzip")
    img = ti.image([images.layers[0], small, late])
    registry.push("test/gated", "latest", img)
    gated_proxy.held.add(late[0].digest)
    pull = ocimg.spawn("pull", "--insecure", f"{gated_proxy.host}/test/gated")
    assert first_match(ocimg.root / "blobs" / "sha256", small[0].digest.split(":")[1], pull)
    gc = ocimg.spawn("gc")
    assert gc_is_waiting(gc)
    gated_proxy.release.set()
    assert finish(pull)[0] == 0
    assert finish(gc)[0] == 0
    stored = set(os.listdir(ocimg.root / "blobs" / "sha256"))
    assert {b.digest.split(":")[1] for b in img.blobs} <= stored
    ocimg("bundle", "--mode", "copy", f"{gated_proxy.host}/test/gated", str(tmp / "b"))
    assert (tmp / "b" / "rootfs" / "small").read_text() == "small\n"


def test_parallel_pulls_bundles_rm_and_gc_leave_every_named_image_whole(ocimg, registry, tmp):
    busybox, app = f"{registry.host}/test/busybox", f"{registry.host}/test/app"
    ocimg("pull", "--insecure", busybox)
    procs = {
        "pull-app": ocimg.spawn("pull", "--insecure", app),
        "bundle-a": ocimg.spawn("bundle", busybox, str(tmp / "a")),
        "bundle-b": ocimg.spawn("bundle", "--mode", "copy", busybox, str(tmp / "b")),
        "rm": ocimg.spawn("rm", busybox),
        "gc-1": ocimg.spawn("gc"),
        "gc-2": ocimg.spawn("gc"),
    }
    results = {name: finish(p) for name, p in procs.items()}
    for name in ("pull-app", "rm", "gc-1", "gc-2"):
        assert results[name][0] == 0, (name, results[name])
    for name, d in (("bundle-a", tmp / "a"), ("bundle-b", tmp / "b")):
        if results[name][0] == 0:  # a bundle may start after rm took the name: then "not in the store"
            assert (d / "rootfs" / "bin" / "busybox").is_file() and (d / "rootfs" / "etc" / "passwd").is_file()
        else:
            assert "not in the store" in results[name][1]
    ocimg("gc")
    index = json.loads((ocimg.root / "index.json").read_text())
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == [f"{app}:latest"]
    ocimg("bundle", app, str(tmp / "c"))
    assert (tmp / "c" / "rootfs" / "etc" / "motd").read_text() == "hello from layer 3\n"
    for d in (tmp / "a", tmp / "c"):
        if (d / ".ocimg").exists():
            ocimg("bundle", "--remove", str(d))


def test_a_killed_first_bundle_leaves_no_layer_and_the_next_one_is_complete(ocimg, tmp):
    ti.write_layout(str(tmp / "layout"), {"localhost/many:1": many_files_image()})
    ocimg("import", str(tmp / "layout"))
    bundle = ocimg.spawn("bundle", "localhost/many:1", str(tmp / "b"))
    layers = ocimg.root / "layers" / "sha256"
    if not first_match(layers, ".tmp-", bundle):
        finish(bundle)
        pytest.skip("the layer was unpacked before it could be interrupted")
    bundle.kill()
    bundle.wait()
    assert [n for n in os.listdir(layers) if not n.startswith(".")] == []  # never renamed into place
    ocimg("gc")  # removes the abandoned partial tree (no unpack holds the store any more)
    assert not [n for n in os.listdir(layers) if n.startswith(".tmp-")]
    ocimg("bundle", "localhost/many:1", str(tmp / "c"))
    assert len(os.listdir(tmp / "c" / "rootfs" / "many")) == FILES
    assert (tmp / "c" / "rootfs" / "etc" / "zz-last").read_text() == "last entry\n"
