"""Fixtures for ocimg: test images, a real registry per flavour, stores, bundles, runc.

Everything a test starts (registry processes, token servers, proxies, overlay mounts,
runc containers, temp dirs) is stopped or removed by a finalizer, pass or fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import ocimgtest_images as ti  # noqa: E402
import ocimgtest_registry as tr  # noqa: E402
from ocimgtest_support import (PASSWORD, REPO, USER, mounts_under,  # noqa: E402,F401
                               skopeo_push, unmount_all_under)


if os.geteuid() != 0:
    pytest.skip("ocimg tests need root (overlay mounts, device nodes, runc)", allow_module_level=True)


@pytest.fixture
def tmp(tmp_path: Path):
    """A temp dir whose mounts are undone after the test, even if it failed."""
    try:
        yield tmp_path
    finally:
        unmount_all_under(str(tmp_path))


@pytest.fixture(scope="session")
def session_dir():
    d = tempfile.mkdtemp(prefix="ocimg-tests-")
    try:
        yield Path(d)
    finally:
        unmount_all_under(d)
        shutil.rmtree(d, ignore_errors=True)


# -- images -----------------------------------------------------------------------------------

class TestImages:
    def __init__(self) -> None:
        self.layers = [ti.layer(ti.base_tar(), "gzip"), ti.layer(ti.second_tar(), "zstd"),
                       ti.layer(ti.third_tar(), "none")]
        self.busybox = ti.image(self.layers)
        self.app = ti.image(self.layers, User="app", Cmd=["/bin/id"], Entrypoint=None, WorkingDir="/home/app")
        base_only = [self.layers[0]]
        arm_marker = ti.layer(ti.TarBuilder().file("platform", b"arm64\n").bytes(), "gzip")
        amd_marker = ti.layer(ti.TarBuilder().file("platform", b"amd64\n").bytes(), "gzip")
        self.multi_amd64 = ti.image(base_only + [amd_marker], "amd64", Cmd=["/bin/cat", "/platform"])
        self.multi_arm64 = ti.image(base_only + [arm_marker], "arm64", Cmd=["/bin/cat", "/platform"])
        self.multi = ti.index([(self.multi_amd64, {"os": "linux", "architecture": "amd64"}),
                               (self.multi_arm64, {"os": "linux", "architecture": "arm64", "variant": "v8"})])
        # Only gzip layers: Docker schema2 knows no zstd.
        self.gzip_only = ti.image(base_only)


@pytest.fixture(scope="session")
def images() -> TestImages:
    return TestImages()


# -- registries -------------------------------------------------------------------------------

def _start(workdir: Path, **kw) -> tr.Registry:
    workdir.mkdir(parents=True, exist_ok=True)
    return tr.Registry(str(workdir), tr.free_port(), **kw).start()


@pytest.fixture(scope="session")
def registry(session_dir: Path, images: TestImages):
    """The open, plain-HTTP registry with the test images pushed byte for byte."""
    reg = _start(session_dir / "registry-http")
    try:
        reg.push("test/busybox", "latest", images.busybox)
        reg.push("test/app", "latest", images.app)
        reg.push("test/multi", "latest", images.multi)
        reg.push("test/gzip", "latest", images.gzip_only)
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def fresh_registry(tmp: Path):
    """A registry of its own, for tests that damage what it stores."""
    reg = _start(tmp / "registry")
    try:
        yield reg
    finally:
        reg.stop()




@pytest.fixture(scope="session")
def tls_basic_registry(session_dir: Path, images: TestImages):
    """HTTPS with a CA the tests made, and htpasswd (bcrypt) basic auth."""
    certs = tr.make_certs()
    reg = _start(session_dir / "registry-tls", tls=certs, htpasswd=(USER, PASSWORD))
    try:
        cert_dir = session_dir / "registry-tls" / "push-certs"
        cert_dir.mkdir()
        (cert_dir / "ca.crt").write_bytes(certs.ca_pem)
        skopeo_push(session_dir, images.busybox, reg.host, "test/busybox:latest",
                    ["--dest-cert-dir", str(cert_dir), "--dest-creds", f"{USER}:{PASSWORD}"])
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def token_registry(session_dir: Path, images: TestImages):
    """Bearer-token auth: the registry trusts tokens signed by the tests' token server."""
    work = session_dir / "registry-token"
    work.mkdir()
    tokens = tr.TokenServer(str(work), USER, PASSWORD)
    try:
        reg = _start(work, token=tokens)
        try:
            skopeo_push(session_dir, images.busybox, reg.host, "test/busybox:latest",
                        ["--dest-tls-verify=false", "--dest-creds", f"{USER}:{PASSWORD}"])
            yield reg
        finally:
            reg.stop()
    finally:
        tokens.stop()


def _proxy(registry: tr.Registry, **kw):
    proxy = tr.DroppingProxy(registry.port, **kw)
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def mangling_proxy(registry: tr.Registry):
    yield from _proxy(registry, mangle_manifests=True)


@pytest.fixture
def dropping_proxy(registry: tr.Registry):
    yield from _proxy(registry)


@pytest.fixture
def truncating_proxy(registry: tr.Registry):
    """Cuts the first transfer of each blob, then answers the resuming Range request with a
    416 whose body is shorter than its Content-Length (a blob truncated on the registry)."""
    yield from _proxy(registry, refuse_ranges=True)


@pytest.fixture
def patch_cutting_proxy(registry: tr.Registry):
    """Passes pushes on, but cuts the first upload PATCH from `.cut_patch_from` on (set it)."""
    yield from _proxy(registry, cut_blobs=False)


@pytest.fixture
def forgetful_proxy(registry: tr.Registry):
    """Like patch_cutting_proxy, and answers every upload status request with 404."""
    yield from _proxy(registry, cut_blobs=False, forget_uploads=True)


@pytest.fixture
def gated_proxy(registry: tr.Registry):
    """Passes everything on whole, but holds GETs of the blobs in `.held` until `.release` is set."""
    yield from _proxy(registry, cut_blobs=False)


# -- ocimg and runc ---------------------------------------------------------------------------

class Ocimg:
    """`python3 -m ocimg --root STORE ...` as a user runs it."""

    def __init__(self, root: Path, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.env = {**os.environ, "OCIMG_CONFIG": "/nonexistent-ocimg-config-for-tests", **(env or {})}
        self.env.pop("REGISTRY_AUTH_FILE", None)

    def __call__(self, *args: str, check: bool = True, timeout: float = 180,
                 input: str | None = None) -> subprocess.CompletedProcess:
        p = subprocess.run([sys.executable, "-m", "ocimg", "--root", str(self.root), *args], cwd=REPO,
                           env=self.env, capture_output=True, text=True, timeout=timeout,
                           input=input, stdin=None if input is not None else subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"ocimg {' '.join(args)} exited {p.returncode}: {p.stderr}")
        return p

    def spawn(self, *args: str) -> subprocess.Popen:
        """The same command started in the background (the caller waits for it)."""
        return subprocess.Popen([sys.executable, "-m", "ocimg", "--root", str(self.root), *args], cwd=REPO,
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def ocimg(tmp: Path) -> Ocimg:
    cfg = tmp / "empty-config.toml"
    cfg.write_text("")
    o = Ocimg(tmp / "store", {"OCIMG_CONFIG": str(cfg), "HOME": str(tmp / "home")})
    return o


class Runc:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.ids: list[str] = []

    def run(self, bundle: Path, timeout: float = 60) -> subprocess.CompletedProcess:
        cid = f"ocimg-test-{uuid.uuid4().hex[:12]}"
        self.ids.append(cid)
        return subprocess.run(["runc", "--root", str(self.root), "run", "--bundle", str(bundle), cid],
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def cleanup(self) -> None:
        for cid in self.ids:
            subprocess.run(["runc", "--root", str(self.root), "delete", "--force", cid],
                           capture_output=True, check=False)


@pytest.fixture
def runc(tmp: Path):
    r = Runc(tmp / "runc-root")
    try:
        yield r
    finally:
        r.cleanup()
