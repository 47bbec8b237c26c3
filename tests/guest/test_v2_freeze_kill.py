"""pause/resume through cgroup.freeze, kill --all and delete --force through cgroup.kill, and
the container's cgroup going away on delete, on real containers of a pure cgroup v2 host."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ocirt_testlib import process_state, wait_until

from v2lib import keyed, read, start, needs_pure_v2

pytestmark = needs_pure_v2

COUNTER = ("i=0; while :; do i=$((i+1)); echo $i > /shared/c.tmp; mv /shared/c.tmp /shared/c; "
           "usleep 5000; done")


def shared_dir(bundle, tmp_path) -> Path:
    d = tmp_path / "shared"
    d.mkdir()
    bundle.config["mounts"].append({"destination": "/shared", "type": "bind",
                                    "source": str(d), "options": ["rbind"]})
    return d


def host_pid_namespace(bundle) -> None:
    # Without a pid namespace the init's death takes nobody with it: only the cgroup can.
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"]
                                            if n["type"] != "pid"]


def procs(d: str) -> list[int]:
    return sorted(int(x) for x in read(d, "cgroup.procs").split())


def gone(pid: int) -> bool:
    return process_state(pid) in (None, "Z")


def test_pause_sets_cgroup_freeze_and_state_reads_paused(ocirt, bundle, cid):
    d = start(ocirt, bundle, cid)
    ocirt.ok("pause", cid)
    assert ocirt.state(cid)["status"] == "paused"
    assert read(d, "cgroup.freeze") == "1" and keyed(d, "cgroup.events")["frozen"] == "1"


def test_resume_clears_cgroup_freeze_and_state_reads_running(ocirt, bundle, cid):
    d = start(ocirt, bundle, cid)
    ocirt.ok("pause", cid)
    ocirt.ok("resume", cid)
    assert ocirt.state(cid)["status"] == "running"
    assert read(d, "cgroup.freeze") == "0" and keyed(d, "cgroup.events")["frozen"] == "0"


def test_a_paused_container_stops_counting_and_counts_again_once_resumed(ocirt, bundle, cid,
                                                                          tmp_path):
    counter = shared_dir(bundle, tmp_path) / "c"
    start(ocirt, bundle, cid, script=COUNTER)
    wait_until(lambda: counter.exists() and counter.read_text().strip(), "the counter")
    ocirt.ok("pause", cid)
    before = counter.read_text()
    time.sleep(1)      # two hundred loop iterations, were it running
    assert counter.read_text() == before
    ocirt.ok("resume", cid)
    wait_until(lambda: counter.read_text() != before, "the counter to advance")


def test_kill_all_kill_goes_through_cgroup_kill(ocirt, bundle, cid):
    host_pid_namespace(bundle)
    d = start(ocirt, bundle, cid, script="setsid sleep 1001 & setsid sleep 1002 & wait")
    wait_until(lambda: len(procs(d)) == 3, "three processes")
    pids = procs(d)
    p = ocirt.ok("kill", "--all", cid, "KILL", global_args=("--debug",))
    assert f"writing 1 to {d}/cgroup.kill" in p.stderr.decode()
    wait_until(lambda: procs(d) == [], "an empty cgroup")
    assert all(gone(pid) for pid in pids)


def test_kill_all_of_another_signal_reaches_every_process(ocirt, bundle, cid):
    # PID 1 without a handler ignores SIGTERM; its children do not.
    d = start(ocirt, bundle, cid, script="sleep 1001 & sleep 1002 & wait; exec sleep 1000")
    wait_until(lambda: len(procs(d)) == 3, "three processes")
    init = ocirt.state(cid)["pid"]
    ocirt.ok("kill", "--all", cid, "TERM")
    wait_until(lambda: procs(d) == [init], "only the init left")
    assert read(d, "cgroup.freeze") == "0", "the freeze around the signals is undone"


def test_delete_force_of_a_paused_container_kills_everything_and_removes_the_cgroup(
        ocirt, bundle, cid):
    host_pid_namespace(bundle)
    d = start(ocirt, bundle, cid, script="setsid sleep 1001 & setsid sleep 1002 & wait")
    wait_until(lambda: len(procs(d)) == 3, "three processes")
    pids = procs(d)
    ocirt.ok("pause", cid)
    p = ocirt.ok("delete", "--force", cid, global_args=("--debug",))
    assert f"writing 1 to {d}/cgroup.kill" in p.stderr.decode()
    assert ocirt.ids() == [] and not os.path.exists(d)
    wait_until(lambda: all(gone(pid) for pid in pids), "every process to die")


def test_delete_removes_the_container_cgroup_and_the_parent_it_made(ocirt, bundle, cid):
    bundle.args("true")
    ocirt.ok("run", "--keep", "--bundle", str(bundle.path), cid)
    d = f"/sys/fs/cgroup/ocirt/{cid}"
    assert os.path.isdir(d)
    ocirt.ok("delete", cid)
    assert not os.path.exists(d)
    # /ocirt goes with its last container (unless another test's container lives there)
    assert not os.path.isdir("/sys/fs/cgroup/ocirt") or any(
        e.is_dir() for e in os.scandir("/sys/fs/cgroup/ocirt"))


def test_delete_removes_sub_cgroups_the_container_made(ocirt, bundle, cid):
    d = start(ocirt, bundle, cid)
    os.makedirs(os.path.join(d, "a", "b"))
    ocirt.ok("delete", "--force", cid)
    assert not os.path.exists(d)
