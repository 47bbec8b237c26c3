"""ocirt run by an unprivileged account: its state root, and the user namespace it makes
(single-id maps written by the runtime, wider maps through newuidmap/newgidmap)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ocirt_testlib import run_out, unique_id
from rlhelpers import multi_range


def _status_ids(pid: int, key: str) -> list[str]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return line.split()[1:]
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def test_default_state_root_is_under_xdg_runtime_dir(rl_ocirt, rl_user, rl_bundle, cid):
    rl_bundle.args("sleep", "100")
    rl_ocirt.ok("create", "--bundle", str(rl_bundle.path), cid)
    d = Path(rl_user.runtime_dir, "ocirt", cid)
    assert d.is_dir() and d.stat().st_uid == rl_user.uid
    assert rl_ocirt.ok("list", "-q").stdout.decode().split() == [cid]


def test_unset_xdg_runtime_dir_is_a_clear_error(rl_user):
    p = rl_user.ocirt("list", XDG_RUNTIME_DIR="")
    assert p.returncode == 1
    assert "XDG_RUNTIME_DIR is not set" in p.stderr.decode()


def test_spec_and_features_need_no_xdg_runtime_dir(rl_user, rl_area):
    d = Path(rl_area) / unique_id("spec")
    d.mkdir(mode=0o777)
    d.chmod(0o777)
    try:
        assert rl_user.ocirt("spec", "--rootless", "--bundle", str(d),
                             XDG_RUNTIME_DIR="").returncode == 0
        assert (d / "config.json").is_file()
        assert rl_user.ocirt("features", XDG_RUNTIME_DIR="").returncode == 0
    finally:
        shutil.rmtree(d)


def test_unusable_xdg_runtime_dir_is_a_clear_error(rl_user):
    p = rl_user.ocirt("list", XDG_RUNTIME_DIR="/root")
    assert p.returncode == 1
    assert "XDG_RUNTIME_DIR /root is not usable" in p.stderr.decode()


def test_rootless_container_root_is_the_account_with_setgroups_denied(rl_ocirt, rl_user,
                                                                     rl_bundle, cid):
    out = run_out(rl_ocirt, rl_bundle, cid,
                  "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups")
    lines = out.splitlines()
    assert lines[:2] == ["0", "0"]
    assert lines[2].split() == ["0", str(rl_user.uid), "1"]
    assert lines[3].split() == ["0", str(rl_user.gid), "1"]
    assert lines[4] == "deny"


def test_rootless_init_runs_as_the_account_on_the_host(rl_ocirt, rl_user, rl_bundle, cid):
    rl_bundle.args("sleep", "100")
    rl_ocirt.ok("create", "--bundle", str(rl_bundle.path), cid)
    pid = rl_ocirt.state(cid)["pid"]
    assert _status_ids(pid, "Uid") == [str(rl_user.uid)] * 4
    assert _status_ids(pid, "Gid") == [str(rl_user.gid)] * 4


def test_multi_range_maps_are_written_through_newuidmap_and_newgidmap(rl_ocirt, rl_user,
                                                                      rl_bundle, cid):
    rl_bundle.config["linux"]["uidMappings"] = multi_range(rl_user)
    rl_bundle.config["linux"]["gidMappings"] = multi_range(rl_user, "gid")
    out = run_out(rl_ocirt, rl_bundle, cid,
                  "cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups")
    lines = [l.split() for l in out.splitlines()]
    want = [["0", str(rl_user.uid), "1"], ["1", str(rl_user.subid), "65536"]]
    assert lines[0:2] == want
    assert lines[2:4] == [["0", str(rl_user.gid), "1"], ["1", str(rl_user.subid), "65536"]]
    assert lines[4] == ["allow"]     # newgidmap leaves setgroups usable


def test_container_user_of_a_subordinate_range_is_its_host_id(rl_ocirt, rl_user, rl_bundle,
                                                             cid):
    rl_bundle.config["linux"]["uidMappings"] = multi_range(rl_user)
    rl_bundle.config["linux"]["gidMappings"] = multi_range(rl_user, "gid")
    rl_bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5]}
    rl_bundle.args("sleep", "100")
    rl_ocirt.ok("create", "--bundle", str(rl_bundle.path), cid)
    pid = rl_ocirt.state(cid)["pid"]
    host = str(rl_user.subid + 999)
    assert _status_ids(pid, "Uid") == [host] * 4
    assert _status_ids(pid, "Gid") == [host] * 4
    assert _status_ids(pid, "Groups") == [str(rl_user.subid + 4)]


def test_multi_range_maps_without_newuidmap_name_the_missing_tool(rl_ocirt, rl_user,
                                                                 rl_bundle, cid):
    rl_bundle.config["linux"]["uidMappings"] = multi_range(rl_user)
    rl_bundle.config["linux"]["gidMappings"] = multi_range(rl_user, "gid")
    rl_bundle.write()
    empty = Path("/var/tmp") / unique_id("nopath")
    empty.mkdir(mode=0o755)
    try:
        p = rl_user.ocirt("run", "--bundle", str(rl_bundle.path), cid, PATH=str(empty))
    finally:
        empty.rmdir()
    assert p.returncode == 1
    err = p.stderr.decode()
    assert "newuidmap" in err and "not on PATH" in err and "linux.uidMappings" in err
    assert rl_ocirt.ids() == []


def test_unmappable_range_is_newuidmap_s_error(rl_ocirt, rl_user, rl_bundle, cid):
    # A range that is not the account's in /etc/subuid: newuidmap refuses it.
    bad = [{"containerID": 0, "hostID": rl_user.uid, "size": 1},
           {"containerID": 1, "hostID": 100, "size": 10}]
    rl_bundle.config["linux"]["uidMappings"] = bad
    rl_bundle.write()
    p = rl_ocirt("run", "--bundle", str(rl_bundle.path), cid)
    assert p.returncode == 1
    assert "newuidmap failed" in p.stderr.decode()
    assert rl_ocirt.ids() == []


def test_joining_a_user_namespace_by_path_writes_no_maps(rl_ocirt, rl_user, rl_bundle, cid):
    rl_bundle.config["linux"]["uidMappings"] = multi_range(rl_user)
    rl_bundle.config["linux"]["gidMappings"] = multi_range(rl_user, "gid")
    rl_bundle.args("sleep", "100")
    rl_ocirt.ok("run", "-d", "--bundle", str(rl_bundle.path), cid)
    first = rl_ocirt.state(cid)["pid"]
    linux = rl_bundle.config["linux"]
    del linux["uidMappings"], linux["gidMappings"]
    linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "user"]
    linux["namespaces"].append({"type": "user", "path": f"/proc/{first}/ns/user"})
    second = unique_id()
    out = run_out(rl_ocirt, rl_bundle, second,
                  "readlink /proc/self/ns/user; cat /proc/self/uid_map")
    lines = out.splitlines()
    assert lines[0] == os.readlink(f"/proc/{first}/ns/user")
    assert [l.split() for l in lines[1:]] == [["0", str(rl_user.uid), "1"],
                                              ["1", str(rl_user.subid), "65536"]]


def _in_own_userns_as_root(user, *args: str, **env: str):
    """`ocirt ARGS` as root of a user namespace the account made, as podman runs it."""
    import subprocess
    from rlhelpers import OCIRT
    return subprocess.run([*user.env(**env), "unshare", "--user", "--map-root-user", OCIRT,
                           *args], capture_output=True, stdin=subprocess.DEVNULL)


def test_root_of_a_user_s_namespace_keeps_state_under_xdg_runtime_dir(rl_user):
    p = _in_own_userns_as_root(rl_user, "state", "nothing-here", USER="")
    assert p.returncode == 1
    assert "container does not exist" in p.stderr.decode()


def test_root_of_a_namespace_with_user_root_uses_the_system_root(rl_user):
    # runc's rule: USER=root there means the real root's habits (/run/ocirt), which this
    # namespace's root cannot open.
    os.makedirs("/run/ocirt", mode=0o700, exist_ok=True)     # as any root run leaves it
    p = _in_own_userns_as_root(rl_user, "state", "nothing-here", USER="root")
    assert p.returncode == 1
    assert "/run/ocirt" in p.stderr.decode()
