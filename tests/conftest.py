"""Shared fixtures: a busybox-static rootfs built once per session, bundles made from ocirt's
default spec, and an `ocirt` runner with its own state root that deletes whatever a test left."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ocirt_testlib import (OCIRT, REPO, PipInstall, Runner,  # noqa: F401  (re-exported)
                           unique_id)

class Bundle:
    def __init__(self, path: Path, config: dict) -> None:
        self.path = path
        self.config = config

    @property
    def process(self) -> dict:
        return self.config["process"]

    def args(self, *argv: str) -> "Bundle":
        self.config["process"]["args"] = list(argv)
        return self.write()

    def sh(self, script: str) -> "Bundle":
        return self.args("sh", "-c", script)

    def write(self) -> "Bundle":
        (self.path / "config.json").write_text(json.dumps(self.config, indent=1))
        return self

    def init_waits_in_python(self) -> "Bundle":
        """Keep the init waiting for `start` as the runtime's interpreter instead of ocirt-wait
        (ocirt/init/waiter.py): a startContainer hook, which the init runs after the wait,
        keeps it. For the tests of what the interpreter-based init exposes."""
        hooks = self.config.setdefault("hooks", {})
        hooks.setdefault("startContainer", []).append({"path": "/bin/true"})
        return self.write()

    def own_rootfs(self, template: Path) -> Path:
        """A private copy of the rootfs, for tests that change it."""
        dst = self.path / "rootfs"
        if not dst.exists():
            shutil.copytree(template, dst, symlinks=True)
        self.config["root"]["path"] = "rootfs"
        self.write()
        return dst


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> tuple[Path, dict]:
    d = tmp_path_factory.mktemp("template")
    subprocess.run([str(REPO / "hack" / "mkbundle"), str(d), "true"], check=True,
                   capture_output=True)
    cfg = json.loads((d / "config.json").read_text())
    return d / "rootfs", cfg


@pytest.fixture
def rootfs_template(template) -> Path:
    return template[0]


@pytest.fixture
def bundle(template, tmp_path) -> Bundle:
    rootfs, cfg = template
    cfg = copy.deepcopy(cfg)
    cfg["root"]["path"] = str(rootfs)
    cfg["root"]["readonly"] = False
    b = Bundle(tmp_path / "bundle", cfg)
    b.path.mkdir()
    return b.write()


@pytest.fixture
def reachable_rootfs(bundle, rootfs_template):
    """A rootfs the mapped ids of a user namespace can reach: pytest's own temp dirs are 0700
    root."""
    d = Path(tempfile.mkdtemp(prefix="ocirt-userns-", dir="/var/tmp"))
    d.chmod(0o755)
    shutil.copytree(rootfs_template, d / "rootfs", symlinks=True)
    bundle.config["root"]["path"] = str(d / "rootfs")
    bundle.write()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _runner(tmp_path_factory, name: str, binary: str):
    """A runner with its own state root that deletes whatever a test left."""
    root = tmp_path_factory.mktemp(name)
    r = Runner(root, binary)
    yield r
    for cid in r.ids():
        r("delete", "--force", cid)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pip_install(tmp_path_factory) -> PipInstall:
    """This checkout built into a wheel and pip-installed into a fresh venv, once per session."""
    work = tmp_path_factory.mktemp("pip")
    return PipInstall.make(REPO, work)


@pytest.fixture
def pip_ocirt(ocirt, pip_install) -> Runner:
    """`ocirt` as a pip install's console script, on the `ocirt` fixture's state root (which
    deletes what is left)."""
    return Runner(ocirt.root, binary=pip_install.bin("ocirt"))


@pytest.fixture(params=["launcher", "pip"])
def any_ocirt(request, ocirt) -> Runner:
    """`ocirt` started as the launcher (hack/ocirt) and as a pip install's console script."""
    return ocirt if request.param == "launcher" else request.getfixturevalue("pip_ocirt")


@pytest.fixture
def ocirt(tmp_path_factory) -> Runner:
    yield from _runner(tmp_path_factory, "state", OCIRT)


@pytest.fixture
def runc(tmp_path_factory) -> Runner:
    """The installed runc (1.1.5) behind the same runner, for side-by-side tests."""
    binary = shutil.which("runc")
    if binary is None:
        pytest.skip("runc is not installed")
    yield from _runner(tmp_path_factory, "runc-state", binary)


@pytest.fixture
def cid() -> str:
    return unique_id()


sys.path.insert(0, str(REPO))
