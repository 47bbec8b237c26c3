"""Fixtures for rootless ocirt: a throw-away unprivileged account (with /etc/subuid and
/etc/subgid ranges and a runtime dir, as a login would give it), bundles it can read, an
`ocirt` runner that runs as that account, and a cgroup subtree delegated to it. Everything is
removed afterwards: the account, its id ranges, its runtime dir, containers and cgroups."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from ocirt_testlib import cgroup_mounts  # noqa: E402
from rlhelpers import OCIRT, SUBID_SIZE, User  # noqa: E402


def _free_uid() -> int:
    for uid in range(23100, 23999):
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
    raise RuntimeError("no free uid for the rootless test account")


def _append_line(path: str, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")


def _remove_line(path: str, line: str) -> None:
    with open(path) as f:
        lines = f.read().splitlines()
    with open(path, "w") as f:
        f.writelines(x + "\n" for x in lines if x != line)


@pytest.fixture(scope="session")
def rl_user():
    if os.geteuid() != 0:
        pytest.skip("the rootless tests create an account: they need root")
    for tool in ("useradd", "userdel", "setpriv", "newuidmap", "newgidmap"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    uid = _free_uid()
    name = f"ocirtrl{uid}"
    subprocess.run(["useradd", "-M", "-U", "-u", str(uid), "-d", "/", "-s", "/bin/sh", name],
                   check=True, capture_output=True)
    gid = pwd.getpwnam(name).pw_gid
    user = User(name, uid, gid, subid=3_000_000 + (uid - 23100) * SUBID_SIZE)
    entry = f"{name}:{user.subid}:{SUBID_SIZE}"
    for f in ("/etc/subuid", "/etc/subgid"):
        _append_line(f, entry)
    made_run_user = not os.path.isdir("/run/user")
    os.makedirs("/run/user", exist_ok=True)
    subprocess.run(["install", "-d", "-m", "700", "-o", str(uid), "-g", str(gid),
                    user.runtime_dir], check=True)
    try:
        yield user
    finally:
        for f in ("/etc/subuid", "/etc/subgid"):
            _remove_line(f, entry)
        shutil.rmtree(user.runtime_dir, ignore_errors=True)
        if made_run_user:
            try:
                os.rmdir("/run/user")
            except OSError:
                pass
        subprocess.run(["userdel", name], capture_output=True)


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
