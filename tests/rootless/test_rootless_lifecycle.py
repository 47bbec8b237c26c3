"""The rest of a rootless container's life: exec, terminals, hooks, state and list."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from ocirt_testlib import ConsoleSocket, read_until
from rlhelpers import OCIRT, console_hand_over, multi_range


def _running(rl_ocirt, rl_bundle, cid) -> int:
    rl_bundle.args("sleep", "100")
    rl_ocirt.ok("run", "-d", "--bundle", str(rl_bundle.path), cid)
    return rl_ocirt.state(cid)["pid"]


def test_exec_joins_the_rootless_container_s_user_namespace(rl_ocirt, rl_user, rl_bundle, cid):
    pid = _running(rl_ocirt, rl_bundle, cid)
    out = rl_ocirt.ok("exec", cid, "sh", "-c", "id -u; readlink /proc/self/ns/user; "
                      "cat /proc/self/uid_map").stdout.decode().splitlines()
    assert out[0] == "0"
    assert out[1] == os.readlink(f"/proc/{pid}/ns/user")
    assert out[2].split() == ["0", str(rl_user.uid), "1"]


def test_exec_as_a_subordinate_user(rl_ocirt, rl_user, rl_bundle, cid):
    rl_bundle.config["linux"]["uidMappings"] = multi_range(rl_user)
    rl_bundle.config["linux"]["gidMappings"] = multi_range(rl_user, "gid")
    _running(rl_ocirt, rl_bundle, cid)
    out = rl_ocirt.ok("exec", "--user", "1000:1000", cid, "id").stdout.decode()
    assert out.startswith("uid=1000 gid=1000")


def test_rootless_terminal_goes_to_the_console_socket(rl_ocirt, rl_user, rl_bundle, cid,
                                                      rl_area):
    rl_bundle.config["process"]["terminal"] = True
    rl_bundle.sh("tty; id -u; read line; echo got:$line")
    d = Path(tempfile.mkdtemp(dir=rl_area))
    d.chmod(0o755)
    console = ConsoleSocket(str(d / "console.sock"))
    os.chmod(console.path, 0o777)
    master = None
    try:
        fds = console_hand_over(console, rl_ocirt.cmd("create", "--bundle", str(rl_bundle.path),
                                                      "--console-socket", console.path, cid))
        master = fds[0]
        rl_ocirt.ok("start", cid)
        os.write(master, b"typed\n")
        out = read_until(master, b"got:typed")
        assert b"/dev/pts/0" in out and b"got:typed" in out, out
    finally:
        if master is not None:
            os.close(master)
        console.close()


def test_hooks_run_as_the_unprivileged_user(rl_ocirt, rl_user, rl_bundle, cid, rl_area):
    out = Path(tempfile.mkdtemp(dir=rl_area))
    os.chown(out, rl_user.uid, rl_user.gid)
    rl_bundle.config["hooks"] = {
        "prestart": [{"path": "/bin/sh", "args": ["sh", "-c", f"id -u > {out}/prestart"]}],
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {out}/poststop"]}]}
    rl_bundle.args("true")
    rl_ocirt.ok("run", "--bundle", str(rl_bundle.path), cid)
    assert (out / "prestart").read_text().strip() == str(rl_user.uid)
    assert json.loads((out / "poststop").read_text())["id"] == cid


def test_state_and_list_name_the_user_as_owner(rl_ocirt, rl_user, rl_bundle, cid, ocirt):
    _running(rl_ocirt, rl_bundle, cid)
    listed = json.loads(rl_ocirt.ok("list", "--format", "json").stdout)
    assert [(c["id"], c["owner"]) for c in listed] == [(cid, rl_user.name)]
    assert rl_ocirt.state(cid)["owner"] == rl_user.name


def test_another_user_cannot_see_the_user_s_containers(rl_ocirt, rl_user, rl_bundle, cid):
    _running(rl_ocirt, rl_bundle, cid)
    root = Path(rl_user.runtime_dir, "ocirt")
    st = os.stat(root)
    assert st.st_uid == rl_user.uid and st.st_mode & 0o077 == 0
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        OCIRT, "--root", str(root), "state", cid], capture_output=True)
    assert p.returncode == 1 and b"Permission denied" in p.stderr
