"""Fixtures for the manager tests: one image archive, one private podman storage and one
private containerd per session, and the runtime under test ([ocirt, runc]: every scenario also
runs with runc, so a scenario failing with ocirt alone points at ocirt). Scenarios parametrized
with "ocirt-pip" also run the `ocirt` of a pip install, registered by its path as users would."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import clientlib  # noqa: E402


def _need(*tools: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("the manager tests need root (podman and containerd as root, cgroupfs)")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (hack/install --test installs them)")


@pytest.fixture(params=["ocirt", "runc"])
def runtime(request) -> str:
    if request.param == "ocirt-pip":        # a pip install's console script (tests/packaging)
        return request.getfixturevalue("pip_install").bin("ocirt")
    path = clientlib.runtimes()[request.param]
    if not os.path.exists(path):
        pytest.skip(f"{request.param} not installed at {path}")
    return path


@pytest.fixture(scope="session")
def image_archive(tmp_path_factory) -> Path:
    return clientlib.docker_archive(tmp_path_factory.mktemp("image") / "busybox.tar")


@pytest.fixture(scope="session")
def podman_store(image_archive):
    _need("podman", "conmon")
    store = clientlib.PodmanStore(clientlib.new_base("ocirt-podman-"))
    try:
        clientlib.check(store.podman(clientlib.runtimes()["runc"], "load", "-i",
                                     str(image_archive), timeout=120))
        yield store
    finally:
        store.cleanup()
        assert not clientlib.mounts_under(store.base), "podman mounts left behind"


@pytest.fixture
def podman(podman_store, runtime) -> clientlib.Podman:
    return clientlib.Podman(podman_store, runtime)


@pytest.fixture(scope="session")
def containerd(image_archive):
    _need("containerd", "ctr", "containerd-shim-runc-v2")
    d = clientlib.Containerd(clientlib.new_base("ocirt-containerd-"))
    try:
        d.start()
        clientlib.check(d.ctr("images", "import", str(image_archive), timeout=120))
        yield d
    finally:
        d.stop()
        assert not clientlib.mounts_under(d.base), "containerd mounts left behind"
