"""The store and the bundles hold images' setuid binaries and device nodes: no other local user
may reach them (checked as a real unprivileged account)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import uuid
from pathlib import Path

import pytest


@pytest.fixture
def local_user():
    """A throwaway unprivileged account: (uid, gid); deleted afterwards."""
    if not shutil.which("useradd") or not shutil.which("setpriv"):
        pytest.skip("needs useradd and setpriv")
    name = f"ocimgt{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--user-group", "--shell", "/bin/false", name],
                   check=True, capture_output=True)
    try:
        out = subprocess.run(["id", "-u", name], check=True, capture_output=True, text=True).stdout
        gid = subprocess.run(["id", "-g", name], check=True, capture_output=True, text=True).stdout
        yield int(out), int(gid)
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


def as_user(user: tuple[int, int], *argv: str) -> subprocess.CompletedProcess:
    uid, gid = user
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *argv],
                          capture_output=True, text=True, timeout=30, cwd="/")


def layer_path(store: Path, rel: str) -> Path:
    hits = [p / rel for p in (store / "layers" / "sha256").glob("[0-9a-f]*") if os.path.lexists(p / rel)]
    assert len(hits) == 1, hits
    return hits[0]


@pytest.fixture
def bundled(ocimg, registry, tmp):
    ref = f"{registry.host}/test/busybox"
    ocimg("pull", "--insecure", ref)
    ocimg("bundle", ref, str(tmp / "overlay"))
    ocimg("bundle", "--mode", "copy", ref, str(tmp / "copy"))
    # The user reaches the temp dir itself, so only ocimg's own modes keep it out.
    os.chmod(tmp, 0o755)
    return tmp


def test_the_store_its_layers_and_bundles_are_root_only(ocimg, bundled):
    for path in (ocimg.root, ocimg.root / "layers", ocimg.root / "layers" / "sha256", ocimg.root / "bundles",
                 bundled / "overlay", bundled / "copy"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, path


def test_another_user_cannot_reach_a_setuid_binary_in_the_store_or_a_bundle(ocimg, bundled, local_user):
    assert as_user(local_user, "/bin/true").returncode == 0  # the account itself works
    targets = [layer_path(ocimg.root, "data/setuid"), bundled / "overlay" / "rootfs" / "data" / "setuid",
               bundled / "copy" / "rootfs" / "data" / "setuid"]
    for path in targets:
        assert os.stat(path).st_mode & stat.S_ISUID, path
        p = as_user(local_user, str(path))
        assert p.returncode != 0 and "Permission denied" in p.stderr, (path, p.stderr)


def test_another_user_cannot_open_a_device_node_of_an_image(ocimg, bundled, local_user):
    targets = [layer_path(ocimg.root, "srv/null"), bundled / "overlay" / "rootfs" / "srv" / "null",
               bundled / "copy" / "rootfs" / "srv" / "null"]
    for path in targets:
        assert stat.S_ISCHR(os.stat(path).st_mode), path
        p = as_user(local_user, "/bin/sh", "-c", f"echo x > {path}")
        assert p.returncode != 0 and "Permission denied" in p.stderr, (path, p.stderr)


def test_an_existing_world_readable_store_is_made_private_again(ocimg, registry):
    ref = f"{registry.host}/test/busybox"
    ocimg("pull", "--insecure", ref)
    os.chmod(ocimg.root, 0o755)
    os.chmod(ocimg.root / "layers", 0o755)
    ocimg("pull", "--insecure", ref)
    assert stat.S_IMODE(os.stat(ocimg.root).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(ocimg.root / "layers").st_mode) == 0o700
