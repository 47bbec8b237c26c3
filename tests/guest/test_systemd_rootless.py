"""A rootless container with --systemd-cgroup: its scope is a unit of the user's own systemd
manager (reached on the user's bus), delegated to the user, below user@UID.service. Run as the
guest's lingering account through `systemd-run --user -M USER@ --wait --pipe`, as a login
session would."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from ocirt_testlib import OCIRT, REPO, read_cgroup_file, unique_id

USER = "ocirt-test"
CGROOT = "/sys/fs/cgroup"


def _account():
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        return None


ACCOUNT = _account()
pytestmark = [
    pytest.mark.skipif(not os.path.isdir("/run/systemd/system"), reason="needs systemd as PID 1"),
    pytest.mark.skipif(ACCOUNT is None, reason=f"needs the lingering account {USER}"),
    pytest.mark.skipif(shutil.which("systemd-run") is None, reason="needs systemd-run"),
]


def as_user(*argv: str) -> subprocess.CompletedProcess:
    """`argv` as the account, in its user manager (its XDG_RUNTIME_DIR and bus). Output goes
    to files: a detached container keeps its stdio open."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.run(["systemd-run", "--user", "-M", f"{USER}@", "--wait", "--pipe",
                            "--quiet", "--", *argv], stdin=subprocess.DEVNULL, stdout=out,
                           stderr=err, timeout=120)
        out.seek(0)
        err.seek(0)
        p.stdout, p.stderr = out.read().decode(), err.read().decode()
    return p


@pytest.fixture
def user_bundle():
    """A bundle and a state root the account owns; the container's root is the account."""
    top = Path(tempfile.mkdtemp(prefix="ocirt-sdrl-"))
    bundle = top / "bundle"
    subprocess.run([str(REPO / "hack" / "mkbundle"), str(bundle), "sleep", "1000"], check=True,
                   capture_output=True)
    (bundle / "config.json").unlink()
    subprocess.run([OCIRT, "spec", "--rootless", "--bundle", str(bundle)], check=True)
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["process"].update(args=["sleep", "1000"], terminal=False)
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": ACCOUNT.pw_uid, "size": 1}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": ACCOUNT.pw_gid, "size": 1}]
    (bundle / "config.json").write_text(json.dumps(cfg, indent=1))
    (top / "state").mkdir()
    os.chmod(top, 0o755)
    subprocess.run(["chown", "-R", f"{ACCOUNT.pw_uid}:{ACCOUNT.pw_gid}", str(top)], check=True)
    yield bundle, cfg, top / "state"
    for cid in os.listdir(top / "state"):
        as_user(OCIRT, "--root", str(top / "state"), "delete", "--force", cid)
    shutil.rmtree(top, ignore_errors=True)


def write(bundle: Path, cfg: dict) -> None:
    (bundle / "config.json").write_text(json.dumps(cfg, indent=1))


def own_cgroup(pid: int) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    raise AssertionError(f"no cgroup v2 entry for {pid}")


def manager_cgroup() -> str:
    return f"/user.slice/user-{ACCOUNT.pw_uid}.slice/user@{ACCOUNT.pw_uid}.service"


def test_rootless_container_is_a_scope_of_the_users_manager(user_bundle):
    bundle, cfg, state = user_bundle
    cid = unique_id()
    p = as_user(OCIRT, "--root", str(state), "--systemd-cgroup", "run", "-d", "--bundle",
                str(bundle), cid)
    assert p.returncode == 0, p.stderr
    st = json.loads(as_user(OCIRT, "--root", str(state), "state", cid).stdout)
    assert st["status"] == "running"
    cg = own_cgroup(st["pid"])
    assert cg == f"{manager_cgroup()}/user.slice/ocirt-{cid}.scope"
    show = as_user("systemctl", "--user", "show", f"ocirt-{cid}.scope", "-pDelegate",
                   "-pActiveState")
    assert "Delegate=yes" in show.stdout and "ActiveState=active" in show.stdout
    assert os.stat(CGROOT + cg).st_uid == ACCOUNT.pw_uid


def test_rootless_limits_reach_the_delegated_scope(user_bundle):
    bundle, cfg, state = user_bundle
    cid = unique_id()
    cfg["linux"]["cgroupsPath"] = f"app.slice:ocirt-rl:{cid}"
    cfg["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 20}}
    write(bundle, cfg)
    p = as_user(OCIRT, "--root", str(state), "--systemd-cgroup", "run", "-d", "--bundle",
                str(bundle), cid)
    assert p.returncode == 0, p.stderr
    pid = json.loads(as_user(OCIRT, "--root", str(state), "state", cid).stdout)["pid"]
    d = CGROOT + own_cgroup(pid)
    assert d.endswith(f"/app.slice/ocirt-rl-{cid}.scope")
    show = as_user("systemctl", "--user", "show", f"ocirt-rl-{cid}.scope", "-pMemoryMax",
                   "-pTasksMax").stdout
    assert f"MemoryMax={64 << 20}" in show and "TasksMax=20" in show
    assert read_cgroup_file(d, "memory.max") == str(64 << 20)
    assert read_cgroup_file(d, "pids.max") == "20"


def test_rootless_delete_stops_the_users_unit(user_bundle):
    bundle, cfg, state = user_bundle
    cid = unique_id()
    assert as_user(OCIRT, "--root", str(state), "--systemd-cgroup", "run", "-d", "--bundle",
                   str(bundle), cid).returncode == 0
    pid = json.loads(as_user(OCIRT, "--root", str(state), "state", cid).stdout)["pid"]
    d = CGROOT + own_cgroup(pid)
    p = as_user(OCIRT, "--root", str(state), "delete", "--force", cid)
    assert p.returncode == 0, p.stderr
    show = as_user("systemctl", "--user", "show", f"ocirt-{cid}.scope", "-pActiveState").stdout
    assert "ActiveState=inactive" in show
    assert not os.path.exists(d)


def test_from_inside_a_user_namespace_the_bus_still_knows_the_user(user_bundle):
    """As rootless podman runs its runtime: uid 0 of a user namespace, which is not the uid
    the bus sees on the socket (authentication goes by the socket's credentials)."""
    bundle, cfg, state = user_bundle
    cid = unique_id()
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 1}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 1}]
    write(bundle, cfg)
    p = as_user("unshare", "--user", "--map-root-user", OCIRT, "--root", str(state),
                "--systemd-cgroup", "run", "-d", "--bundle", str(bundle), cid)
    assert p.returncode == 0, p.stderr
    pid = json.loads(as_user("unshare", "--user", "--map-root-user", OCIRT, "--root",
                             str(state), "state", cid).stdout)["pid"]
    assert own_cgroup(pid) == f"{manager_cgroup()}/user.slice/ocirt-{cid}.scope"
