"""Fixtures for rootless ocirt: a throw-away unprivileged account (with /etc/subuid and
/etc/subgid ranges and a runtime dir, as a login would give it), bundles it can read, an
`ocirt` runner that runs as that account, and a cgroup subtree delegated to it. Everything is
removed afterwards: the account, its id ranges, its runtime dir, containers and cgroups."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from ocirt_testlib import cgroup_mounts  # noqa: E402
from rlhelpers import OCIRT, User  # noqa: E402
from rootless_account import missing_account_tools, throwaway_account  # noqa: E402


@pytest.fixture(scope="session")
def rl_user():
    if os.geteuid() != 0:
        pytest.skip("the rootless tests create an account: they need root")
    missing = missing_account_tools()
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")
    with throwaway_account() as user:
        yield user


@pytest.fixture(scope="session")
def rl_area(rl_user, template):
    """A directory every account can read (pytest's are root's 0700), with a rootfs copy."""
    d = Path(tempfile.mkdtemp(prefix="ocirt-rootless-", dir="/var/tmp"))
    d.chmod(0o755)
    shutil.copytree(template[0], d / "rootfs", symlinks=True)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def user_runner(base: type, user: User, root: Path | None):
    """The tests' Runner (conftest.py), with `ocirt` run as the unprivileged account."""

    class UserRunner(base):
        def cmd(self, *args: str, global_args: tuple[str, ...] = ()) -> list[str]:
            opt = ("--root", str(self.root)) if self.root is not None else ()
            return [*user.env(), OCIRT, *opt, *global_args, *args]

        def ids(self) -> list[str]:
            try:
                return [n for n in os.listdir(self.root or Path(user.runtime_dir, "ocirt"))
                        if not n.startswith((".", "~"))]
            except FileNotFoundError:
                return []

    return UserRunner(root)


@pytest.fixture
def rl_ocirt(rl_user, ocirt):
    """`ocirt` as the account, with the default root ($XDG_RUNTIME_DIR/ocirt)."""
    r = user_runner(type(ocirt), rl_user, None)
    yield r
    for cid in r.ids():
        r("delete", "--force", cid)
    shutil.rmtree(Path(rl_user.runtime_dir, "ocirt"), ignore_errors=True)


@pytest.fixture
def rl_bundle(rl_user, rl_area, bundle):
    """`ocirt spec --rootless` made by the account, with the shared rootfs, no terminal."""
    d = Path(tempfile.mkdtemp(prefix="bundle-", dir=rl_area))
    d.chmod(0o755)
    os.chown(d, rl_user.uid, rl_user.gid)
    p = rl_user.ocirt("spec", "--rootless", "--bundle", str(d))
    assert p.returncode == 0, p.stderr.decode()
    bundle.path = d
    bundle.config = json.loads((d / "config.json").read_text())
    bundle.config["root"] = {"path": str(rl_area / "rootfs"), "readonly": False}
    bundle.config["process"]["terminal"] = False
    yield bundle.write()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def delegated_cgroup(rl_user):
    """A directory per v1 controller chowned to the account, as an administrator delegates
    a subtree; yields its name relative to each hierarchy's root."""
    v1, _unified = cgroup_mounts()
    name = f"ocirt-rl-{rl_user.uid}"
    made = []
    for mnt in sorted(set(v1.values())):
        d = os.path.join(mnt, name)
        os.makedirs(d, exist_ok=True)
        made.append(d)
        if os.path.exists(os.path.join(mnt, "cpuset.cpus")):
            for f in ("cpuset.cpus", "cpuset.mems"):
                Path(d, f).write_text(Path(mnt, f).read_text())
        for top, dirs, files in os.walk(d):
            os.chown(top, rl_user.uid, rl_user.gid)
            for f in files:
                os.chown(os.path.join(top, f), rl_user.uid, rl_user.gid)
    yield name
    for d in made:
        for top, dirs, _ in os.walk(d, topdown=False):
            try:
                os.rmdir(top)
            except OSError:
                pass
