"""Fixtures for the manager tests: one image archive, one private podman storage, one private
containerd and one containerd serving the CRI (with its registry) per session, and the runtime
under test ([ocirt, runc]: every scenario also runs with runc, so a scenario failing with ocirt
alone points at ocirt). Scenarios parametrized with "ocirt-pip" also run the `ocirt` of a pip
install, registered by its path as users would."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import clientlib  # noqa: E402
from ocirt_testlib import cgroup_dirs_named  # noqa: E402
from rootless_account import ACCOUNT_TOOLS, throwaway_account  # noqa: E402


def _need(*tools: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("the manager tests need root (podman and containerd as root, cgroupfs)")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (hack/install --test installs them)")


def _installed(name: str) -> str:
    path = clientlib.runtimes()[name]
    if not os.path.exists(path):
        pytest.skip(f"{name} not installed at {path}")
    return path


@pytest.fixture(params=["ocirt", "runc"])
def runtime(request) -> str:
    if request.param == "ocirt-pip":        # a pip install's console script (tests/packaging)
        return request.getfixturevalue("pip_install").bin("ocirt")
    return _installed(request.param)


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
def rootless_podman_store():
    """Rootless podman of a throw-away account whose home, storage and image live in one
    temporary directory; afterwards the account, its processes and files are gone."""
    _need("podman", "conmon", *ACCOUNT_TOOLS)
    base = clientlib.new_base("ocirt-rlpodman-")
    try:
        with throwaway_account(home=os.path.join(base, "home")) as user:
            store = clientlib.RootlessPodmanStore(base, user)
            try:
                store.import_image()
                yield store
            finally:
                store.cleanup()
    finally:
        clientlib.remove_tree(base)


@pytest.fixture
def rootless_podman(rootless_podman_store, runtime) -> clientlib.Podman:
    return clientlib.Podman(rootless_podman_store, runtime)


@pytest.fixture
def tun_for_users():
    """/dev/net/tun opened to every user for one test (slirp4netns opens it inside rootless
    podman's user namespace), its mode restored afterwards."""
    _need("slirp4netns")
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("no /dev/net/tun")
    mode = os.stat("/dev/net/tun").st_mode & 0o7777
    os.chmod("/dev/net/tun", 0o666)
    try:
        yield
    finally:
        os.chmod("/dev/net/tun", mode)


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


def _netns() -> set[str]:
    """The named network namespaces (containerd 1.6 keeps a pod's in /var/run/netns)."""
    return set(os.listdir("/var/run/netns")) if os.path.isdir("/var/run/netns") else set()


@pytest.fixture(scope="session")
def cri_node():
    """containerd with the CRI plugin, a registry with the images, a CNI network, and a CRI
    client: (daemon, client). Afterwards nothing is left: pods, shims, mounts, network
    namespaces, cgroups, CNI state; the host's forwarding and iptables are as they were."""
    _need("containerd", "containerd-shim-runc-v2", "skopeo", "docker-registry", "iptables-save")
    pytest.importorskip("grpc_tools", reason="grpcio-tools (setup.cfg's test extra)")
    import crilib
    if not os.path.exists(os.path.join(crilib.CNI_PLUGINS_DIR, "bridge")):
        pytest.skip("no CNI plugins in /usr/lib/cni (Debian's containernetworking-plugins)")
    host_before = crilib.host_network_settings()
    cni_state_existed = os.path.exists(crilib.CNI_STATE)
    netns_before = _netns()
    base = clientlib.new_base("ocirt-cri-")
    registry = daemon = cri = None
    try:
        registry = crilib.start_registry(base)
        crilib.push_images(base, registry)
        daemon = crilib.CriContainerd(base, registry)
        daemon.start()
        cri = crilib.Cri(daemon, os.path.join(base, "api"))
        yield daemon, cri
    finally:
        if cri is not None:
            cri.cleanup()  # every pod, as the kubelet removes them
        mounts_left = clientlib.mounts_under(base)
        if daemon is not None:
            daemon.stop()
        if registry is not None:
            registry.stop()
        cni_left = daemon.network.leftovers() if daemon is not None else []
        if daemon is not None:
            daemon.network.remove(remove_cache_dirs=not cni_state_existed)
        host_after = crilib.host_network_settings()
        crilib.restore_host_network(host_before)
        clientlib.remove_tree(base)
        cgroups_left = []
        if daemon is not None:
            clientlib.remove_empty_cgroups(daemon.cgroup_parent)  # the pods' parents
            cgroups_left = cgroup_dirs_named(daemon.cgroup_parent)
        assert not mounts_left, f"mounts left after the pods were removed: {mounts_left}"
        assert not cni_left, f"CNI state left behind: {cni_left}"
        assert not cgroups_left, f"busy cgroups left behind: {cgroups_left}"
        netns_left = _netns() - netns_before
        assert not netns_left, f"network namespaces left behind: {netns_left}"
        assert host_after == host_before, "CNI changed the host's network"


@pytest.fixture(params=["ocirt", "runc"])
def cri_handler(request) -> str:
    """The runtime handler (named after its runtime) the test's pods run on."""
    _installed(request.param)
    return request.param
