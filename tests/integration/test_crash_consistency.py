"""The runtime killed at each step of create, start, exec and delete (kill -9, or SIGTERM as a
manager's timeout sends it): `state` and `list` tell the truth about what is left, `delete -f`
removes all of it (state dir, cgroups, processes, mounts), and no container process outlives a
create that died.

OCIRT_TEST_PAUSE_AT makes the runtime stop itself (SIGSTOP) at a named point, so the kill lands
exactly there."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess

import pytest

from ocirt_testlib import (cgroup_dirs_named, host_mounts, paused_at, pids_with_cmdline,
                           process_state, wait_until)

CREATE_POINTS = ["create:dir", "create:forked", "create:cgroup", "create:joined",
                 "create:created", "create:saved"]


def _kill9(p: subprocess.Popen) -> None:
    p.kill()
    p.wait()


def _ours(bundle) -> list[str]:
    """Host mounts under the container's rootfs (the machine's other mounts come and go)."""
    rootfs = bundle.config["root"]["path"]
    return [m for m in host_mounts() if m.startswith(rootfs)]


def _assert_nothing_left(ocirt, cid: str, bundle) -> None:
    assert ocirt.ids() == []
    assert cgroup_dirs_named(cid) == []
    assert _ours(bundle) == []
    assert pids_with_cmdline(cid) == []


def _state_or_none(ocirt, cid: str) -> dict | None:
    p = ocirt("state", cid)
    if p.returncode != 0:
        assert b"container does not exist" in p.stderr
        return None
    return json.loads(p.stdout)


def _listed(ocirt) -> dict[str, str]:
    p = ocirt.ok("list", "--format", "json")
    return {c["id"]: c["status"] for c in json.loads(p.stdout) or []}


@pytest.fixture
def sleeper(bundle):
    return bundle.args("sleep", "1000")


@pytest.mark.parametrize("point", CREATE_POINTS)
def test_create_killed_leaves_a_stopped_container_that_delete_removes(ocirt, sleeper, cid,
                                                                      point):
    p = paused_at(ocirt, point, "create", "--bundle", str(sleeper.path), cid)
    _kill9(p)
    # The init (and the intermediate) die with the runtime that was creating them.
    wait_until(lambda: pids_with_cmdline(cid) == [], "the container's processes to die")
    st = _state_or_none(ocirt, cid)
    assert st is not None and st["status"] == "stopped" and st["pid"] == 0
    assert _listed(ocirt) == {cid: "stopped"}
    ocirt.ok("delete", "--force", cid)
    _assert_nothing_left(ocirt, cid, sleeper)


@pytest.mark.parametrize("point", ["create:cgroup", "create:created"])
def test_a_killed_create_can_be_deleted_without_force_and_its_id_reused(ocirt, sleeper, cid,
                                                                        point):
    _kill9(paused_at(ocirt, point, "create", "--bundle", str(sleeper.path), cid))
    ocirt.ok("delete", cid)
    ocirt.ok("create", "--bundle", str(sleeper.path), cid)
    assert ocirt.state(cid)["status"] == "created"


def test_init_busy_in_a_hook_dies_with_its_create(ocirt, sleeper, cid):
    # The init is not reading from the runtime while a createContainer hook runs: only its
    # parent-death signal can end it when the runtime is killed.
    marker = "987654"
    sleeper.config["hooks"] = {"createContainer": [{"path": "/bin/sleep",
                                                    "args": ["sleep", marker]}]}
    sleeper.write()
    p = subprocess.Popen(ocirt.cmd("create", "--bundle", str(sleeper.path), cid),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: pids_with_cmdline(marker) != [], "the hook to run")
    inits = [pid for pid in pids_with_cmdline(cid) if pid != p.pid]
    assert inits
    _kill9(p)
    try:
        wait_until(lambda: not any(process_state(pid) not in (None, "Z") for pid in inits),
                   "the init to die")
        wait_until(lambda: pids_with_cmdline(marker) == [], "the hook to die")
    finally:
        for pid in inits + pids_with_cmdline(marker):     # only if the test failed
            subprocess.run(["kill", "-9", str(pid)], stderr=subprocess.DEVNULL)
    ocirt.ok("delete", "--force", cid)
    _assert_nothing_left(ocirt, cid, sleeper)


@pytest.mark.parametrize("point", CREATE_POINTS)
def test_create_terminated_cleans_up_and_fails(ocirt, sleeper, cid, point):
    p = paused_at(ocirt, point, "create", "--bundle", str(sleeper.path), cid)
    p.send_signal(signal.SIGTERM)
    p.send_signal(signal.SIGCONT)
    assert p.wait() != 0
    assert b"interrupted by SIGTERM" in p.stderr.read()
    _assert_nothing_left(ocirt, cid, sleeper)


def test_run_terminated_during_create_cleans_up_and_fails(ocirt, sleeper, cid):
    # run forwards signals to the container once it runs; before that, they abort the create
    p = paused_at(ocirt, "create:joined", "run", "--bundle", str(sleeper.path), cid)
    p.send_signal(signal.SIGTERM)
    p.send_signal(signal.SIGCONT)
    assert p.wait() == 1
    _assert_nothing_left(ocirt, cid, sleeper)


def test_create_interrupted_by_sigint_cleans_up(ocirt, sleeper, cid):
    p = paused_at(ocirt, "create:joined", "create", "--bundle", str(sleeper.path), cid)
    p.send_signal(signal.SIGINT)
    p.send_signal(signal.SIGCONT)
    assert p.wait() != 0
    _assert_nothing_left(ocirt, cid, sleeper)


def test_a_live_create_reads_creating(ocirt, sleeper, cid):
    p = paused_at(ocirt, "create:joined", "create", "--bundle", str(sleeper.path), cid)
    try:
        assert ocirt.state(cid)["status"] == "creating"
        assert _listed(ocirt) == {cid: "creating"}
    finally:
        _kill9(p)


def test_the_containers_processes_do_not_hold_the_creates_lock(ocirt, sleeper, cid):
    # Otherwise a killed create would read "creating", and delete wait, until they exit.
    p = paused_at(ocirt, "create:joined", "create", "--bundle", str(sleeper.path), cid)
    try:
        children = [pid for pid in pids_with_cmdline(cid) if pid != p.pid]
        assert children
        state_dir = str(ocirt.root / cid)
        for pid in children:
            fds = os.listdir(f"/proc/{pid}/fd")
            assert state_dir not in [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in fds]
    finally:
        _kill9(p)
    ocirt.ok("delete", "--force", cid)


def test_start_waiting_for_a_create_that_dies_refuses_it(ocirt, sleeper, cid):
    p = paused_at(ocirt, "create:joined", "create", "--bundle", str(sleeper.path), cid)
    start = subprocess.Popen(ocirt.cmd("start", cid), stderr=subprocess.PIPE)
    _kill9(p)
    assert start.wait() == 1
    assert b"cannot start a container that has stopped" in start.stderr.read()


@pytest.mark.parametrize("point", ["create:joined", "create:created", "create:saved"])
def test_killed_create_leaves_nothing_holding_the_callers_output(ocirt, sleeper, cid, point):
    # A manager reads the runtime's stdout until EOF: nothing of a dead create may keep it.
    p = paused_at(ocirt, point, "create", "--bundle", str(sleeper.path), cid,
                  stdout=subprocess.PIPE)
    _kill9(p)
    ready, _, _ = select.select([p.stdout], [], [], 60)
    assert ready and p.stdout.read() == b""
    ocirt.ok("delete", "--force", cid)


@pytest.mark.parametrize("point", ["create:joined", "create:saved"])
def test_run_killed_during_create_leaves_nothing_after_delete(ocirt, sleeper, cid, point):
    _kill9(paused_at(ocirt, point, "run", "--bundle", str(sleeper.path), cid))
    wait_until(lambda: pids_with_cmdline(cid) == [], "the container's processes to die")
    assert ocirt.state(cid)["status"] == "stopped"
    ocirt.ok("delete", "--force", cid)
    _assert_nothing_left(ocirt, cid, sleeper)


@pytest.mark.parametrize("point,status", [("start:locked", "created"),
                                          ("start:released", "running")])
@pytest.mark.parametrize("how", ["kill", "term"])
def test_start_killed_leaves_a_consistent_container(ocirt, sleeper, cid, point, status, how):
    ocirt.ok("create", "--bundle", str(sleeper.path), cid)
    _end(paused_at(ocirt, point, "start", cid), how)
    assert ocirt.state(cid)["status"] == status
    ocirt.ok("delete", "--force", cid)
    _assert_nothing_left(ocirt, cid, sleeper)


def _end(p: subprocess.Popen, how: str) -> None:
    """SIGKILL, or SIGTERM as a manager's timeout sends it (the runtime is stopped: SIGCONT
    lets it act on it)."""
    if how == "kill":
        _kill9(p)
        return
    p.send_signal(signal.SIGTERM)
    p.send_signal(signal.SIGCONT)
    p.wait()


@pytest.mark.parametrize("point", ["exec:forked", "exec:joined"])
@pytest.mark.parametrize("how", ["kill", "term"])
def test_exec_killed_leaves_no_process_in_the_container(ocirt, sleeper, cid, point, how):
    ocirt.ok("run", "--detach", "--bundle", str(sleeper.path), cid)
    before = ocirt.state(cid)
    _end(paused_at(ocirt, point, "exec", cid, "sleep", "999"), how)
    # The half-made exec process saw the runtime go (EOF) and exited.
    wait_until(lambda: _container_procs(ocirt, cid) == [before["pid"]],
               "the exec's process to exit")
    assert ocirt.state(cid)["status"] == "running"
    ocirt.ok("delete", "--force", cid)
    _assert_nothing_left(ocirt, cid, sleeper)


def _container_procs(ocirt, cid: str) -> list[int]:
    return json.loads(ocirt.ok("ps", "--format", "json", cid).stdout)


@pytest.mark.parametrize("point", ["delete:killed", "delete:cgroup"])
@pytest.mark.parametrize("how", ["kill", "term"])
def test_delete_killed_can_be_finished_by_another_delete(ocirt, sleeper, cid, point, how):
    ocirt.ok("run", "--detach", "--bundle", str(sleeper.path), cid)
    _end(paused_at(ocirt, point, "delete", "--force", cid), how)
    assert ocirt.state(cid)["status"] == "stopped"
    assert _listed(ocirt) == {cid: "stopped"}
    ocirt.ok("delete", "--force", cid)
    _assert_nothing_left(ocirt, cid, sleeper)
