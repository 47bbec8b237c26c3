"""The six hook kinds: when they run, in which namespaces, with the state on stdin."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from ocirt_testlib import cgroup_dirs_named


def recorder(tmp_path: Path, name: str) -> dict:
    """A host-side hook (runs in the runtime's namespaces) that records its stdin, argv, env and
    the mount namespace it ran in."""
    script = tmp_path / f"hook-{name}.sh"
    out = tmp_path / f"{name}.out"
    script.write_text("#!/bin/sh\n"
                      f"cat > {out}.stdin\n"
                      f"echo \"$@\" > {out}.args\n"
                      f"env > {out}.env\n"
                      f"readlink /proc/self/ns/mnt > {out}.mnt\n"
                      f"date +%s%N > {out}.time\n")
    script.chmod(0o755)
    return {"path": str(script), "args": [f"hook-{name}", "a1", "a2"], "env": ["HOOKVAR=yes"]}


def read(tmp_path: Path, name: str, part: str) -> str:
    return (tmp_path / f"{name}.out.{part}").read_text()


@pytest.fixture
def hooked(bundle, tmp_path):
    # Hook files must be reachable from the container too (createContainer runs there before
    # pivot_root, with the host paths still visible).
    bundle.config["hooks"] = {k: [recorder(tmp_path, k)] for k in
                              ("prestart", "createRuntime", "createContainer", "poststart", "poststop")}
    bundle.args("true")
    return bundle


def test_all_hooks_run_in_lifecycle_order(ocirt, hooked, cid, tmp_path):
    ocirt.ok("run", "--bundle", str(hooked.path), cid)
    order = sorted(("prestart", "createRuntime", "createContainer", "poststart", "poststop"),
                   key=lambda k: int(read(tmp_path, k, "time")))
    assert order == ["prestart", "createRuntime", "createContainer", "poststart", "poststop"]


def test_hooks_get_the_state_on_stdin(ocirt, hooked, cid, tmp_path):
    ocirt.ok("run", "--bundle", str(hooked.path), cid)
    st = json.loads(read(tmp_path, "createRuntime", "stdin"))
    assert st["id"] == cid and st["status"] == "created" and st["pid"] > 0
    assert st["bundle"] == str(hooked.path)
    assert json.loads(read(tmp_path, "poststart", "stdin"))["status"] == "running"
    assert json.loads(read(tmp_path, "poststop", "stdin"))["status"] == "stopped"


def test_hooks_get_their_args_and_exactly_their_env(ocirt, hooked, cid, tmp_path):
    ocirt.ok("run", "--bundle", str(hooked.path), cid)
    assert read(tmp_path, "prestart", "args").split() == ["a1", "a2"]
    env = read(tmp_path, "prestart", "env")
    assert "HOOKVAR=yes" in env and "PATH=" not in env.replace("PWD=", "")


def test_create_container_hook_runs_in_the_container_mount_namespace(ocirt, hooked, cid, tmp_path):
    ocirt.ok("run", "--bundle", str(hooked.path), cid)
    host = os.readlink("/proc/self/ns/mnt")
    assert read(tmp_path, "createRuntime", "mnt").strip() == host
    assert read(tmp_path, "createContainer", "mnt").strip() != host


def test_start_container_hook_runs_inside_the_container(ocirt, bundle, cid, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    bundle.config["mounts"].append({"destination": "/shared", "type": "bind", "source": str(shared),
                                    "options": ["rbind"]})
    # The path resolves in the container: /bin/sh is busybox there.
    bundle.config["hooks"] = {"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "cat > /shared/state; hostname > /shared/host"]}]}
    bundle.config["hostname"] = "inside"
    bundle.args("true")
    ocirt.ok("run", "--bundle", str(bundle.path), cid)
    assert (shared / "host").read_text() == "inside\n"
    assert json.loads((shared / "state").read_text())["id"] == cid


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create_and_leaves_nothing(ocirt, bundle, cid, kind):
    bundle.config["hooks"] = {kind: [{"path": "/bin/false"}]}
    bundle.args("true")
    p = ocirt("create", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    assert f"{kind} hook".encode() in p.stderr
    assert ocirt.ids() == []
    assert cgroup_dirs_named(cid) == []


def test_failing_start_container_hook_fails_start(ocirt, bundle, cid):
    bundle.config["hooks"] = {"startContainer": [{"path": "/bin/false"}]}
    bundle.args("true")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    p = ocirt("start", cid)
    assert p.returncode == 1 and b"startContainer hook" in p.stderr


def test_failing_poststart_hook_fails_start_and_stops_the_container(ocirt, bundle, cid):
    bundle.config["hooks"] = {"poststart": [{"path": "/bin/false"}]}
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    p = ocirt("start", cid)
    assert p.returncode == 1 and b"poststart hook" in p.stderr
    deadline = time.monotonic() + 10
    while ocirt.state(cid)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ocirt.state(cid)["status"] == "stopped"


def test_failing_poststop_hook_is_only_a_warning(ocirt, bundle, cid, tmp_path):
    after = recorder(tmp_path, "second")
    bundle.config["hooks"] = {"poststop": [{"path": "/bin/false"}, after]}
    bundle.args("true")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    ocirt.ok("start", cid)
    time.sleep(0.2)
    p = ocirt("delete", cid)
    assert p.returncode == 0
    assert b"poststop hook #0" in p.stderr
    assert (tmp_path / "second.out.stdin").exists()


def test_hook_timeout_kills_the_hook_and_fails(ocirt, bundle, cid):
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"],
                                                 "timeout": 1}]}
    bundle.args("true")
    t = time.monotonic()
    p = ocirt("create", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1 and b"timeout" in p.stderr
    assert time.monotonic() - t < 25
