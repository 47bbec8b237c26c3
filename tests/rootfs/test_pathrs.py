"""ocirt.linux.pathrs and procfs, without containers: lookups stay inside a root."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from ocirt.errors import SecurityError
from ocirt.linux import pathrs, procfs
from ocirt.linux import syscalls as sc


@pytest.fixture(params=["openat2", "walk"])
def root(request, monkeypatch):
    if request.param == "walk":
        monkeypatch.setattr(pathrs, "_openat2_works", False)
    d = tempfile.mkdtemp(prefix="ocirt-pathrs-")
    os.makedirs(f"{d}/a/b")
    os.symlink("/etc", f"{d}/abs")
    os.symlink("../../../../../../tmp", f"{d}/a/rel")
    os.symlink("/nonexistent-ocirt/x", f"{d}/dangling")
    os.symlink("loop2", f"{d}/loop1")
    os.symlink("loop1", f"{d}/loop2")
    fd = os.open(d, os.O_PATH | os.O_DIRECTORY)
    yield d, fd
    os.close(fd)
    shutil.rmtree(d)


def _inner(fd: int, d: str) -> str:
    try:
        return pathrs.check_in_root(fd, d)
    finally:
        os.close(fd)


def test_symlinks_resolve_inside_root(root):
    d, fd = root
    os.makedirs(f"{d}/etc")
    os.makedirs(f"{d}/tmp")
    assert _inner(pathrs.open_in_root(fd, "/abs", os.O_PATH), d) == "/etc"
    assert _inner(pathrs.open_in_root(fd, "a/rel", os.O_PATH), d) == "/tmp"
    assert _inner(pathrs.open_in_root(fd, "/../../..", os.O_PATH), d) == "/"
    with pytest.raises(FileNotFoundError):
        pathrs.open_in_root(fd, "/dangling", os.O_PATH)
    with pytest.raises(OSError):
        pathrs.open_in_root(fd, "/loop1", os.O_PATH)


def test_mkdir_all_and_create_file_stay_inside(root):
    d, fd = root
    assert _inner(pathrs.mkdir_all_in_root(fd, "/abs/new/dir"), d) == "/etc/new/dir"
    assert _inner(pathrs.mkdir_all_in_root(fd, "/a/rel/x/../y"), d) == "/tmp/y"
    assert _inner(pathrs.create_file_in_root(fd, "/dangling"), d) == "/nonexistent-ocirt/x"
    assert _inner(pathrs.create_file_in_root(fd, "/a/rel/f"), d) == "/tmp/f"
    assert not os.path.exists("/etc/new")
    assert not os.path.exists("/nonexistent-ocirt")
    assert not os.path.exists("/tmp/y") and not os.path.exists("/tmp/f")
    with pytest.raises(NotADirectoryError):
        pathrs.mkdir_all_in_root(fd, "/a/rel/f/sub")


def test_check_in_root_refuses_outside_fd(root):
    d, _ = root
    fd = os.open("/etc", os.O_PATH)
    with pytest.raises(SecurityError):
        pathrs.check_in_root(fd, d)
    os.close(fd)


def test_procfs_handle_is_private_and_verified():
    root = procfs.root_fd()
    assert sc.fstatfs_type(root) == sc.PROC_SUPER_MAGIC
    assert os.fstat(root).st_ino == 1
    assert procfs.read_file("self/status").startswith(b"Name:")
    assert procfs.read_file("sys/kernel/ostype") == b"Linux\n"
    for bad in ("../etc/passwd", "self/cwd/etc/passwd", "sys/../../etc"):
        with pytest.raises(OSError):
            procfs.open_proc_file(bad, os.O_RDONLY)
    procfs.close()
