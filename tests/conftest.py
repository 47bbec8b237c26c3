"""Shared fixtures: a busybox-static rootfs built once per session, bundles made from ocirt's
default spec, and an `ocirt` runner with its own state root that deletes whatever a test left."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ocirt_testlib import PipInstall, unique_id  # noqa: F401  (unique_id: re-exported)

REPO = Path(__file__).resolve().parent.parent
OCIRT = os.environ.get("OCIRT_BIN", str(REPO / "hack" / "ocirt"))


class Runner:
    def __init__(self, root: Path, binary: str = OCIRT) -> None:
        self.root = root
        self.binary = binary

    def cmd(self, *args: str, global_args: tuple[str, ...] = ()) -> list[str]:
        return [self.binary, "--root", str(self.root), *global_args, *args]

    def __call__(self, *args: str, input: bytes | None = None, timeout: float = 60,
                 global_args: tuple[str, ...] = (), check: bool = False,
                 **kw) -> subprocess.CompletedProcess:
        # Files, not pipes: a created container inherits ocirt's stdio and keeps it open, so
        # waiting for EOF on a pipe would wait for the container to exit.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run(self.cmd(*args, global_args=global_args), input=input,
                               stdout=out, stderr=err, timeout=timeout, **kw)
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read(), err.read()
        if check and p.returncode != 0:
            raise AssertionError(f"ocirt {' '.join(args)} exited {p.returncode}: "
                                 f"{p.stderr.decode(errors='replace')}")
        return p

    def ok(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self(*args, check=True, **kw)

    def state(self, cid: str) -> dict:
        return json.loads(self.ok("state", cid).stdout)

    def ids(self) -> list[str]:
        try:
            return [n for n in os.listdir(self.root) if not n.startswith((".", "~"))]
        except FileNotFoundError:
            return []


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
