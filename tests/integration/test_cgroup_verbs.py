"""pause/resume, events, ps, kill --all, delete --force and update errors, on real containers.

Cgroup directories are found from the init's /proc/<pid>/cgroup, as an outside observer would.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from ocirt_testlib import cgroup_dir, cgroup_dirs, pure_cgroup_v2, read_cgroup_file as read

MiB = 1 << 20


# --- helpers --------------------------------------------------------------------------------

def wait_for(cond, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def created(ocirt, bundle, cid: str, *argv: str, resources: dict | None = None) -> int:
    """Create (not start) a container; its init pid."""
    if argv:
        bundle.args(*argv)
    if resources is not None:
        bundle.config["linux"].setdefault("resources", {}).update(resources)
        bundle.write()
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    return ocirt.state(cid)["pid"]


def start(ocirt, bundle, cid: str, *argv: str, resources: dict | None = None) -> int:
    pid = created(ocirt, bundle, cid, *argv, resources=resources)
    ocirt.ok("start", cid)
    return pid


def procs(d: str) -> list[int]:
    return sorted(int(x) for x in read(d, "cgroup.procs").split())


def shared_dir(bundle, tmp_path) -> Path:
    d = tmp_path / "shared"
    d.mkdir()
    bundle.config["mounts"].append({"destination": "/shared", "type": "bind",
                                    "source": str(d), "options": ["rbind"]})
    bundle.write()
    return d


def proc_state(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("State:"):
            return line.split()[1]
    return ""


def err_line(p) -> str:
    return p.stderr.decode(errors="replace").strip()


# --- pause / resume -------------------------------------------------------------------------

def test_paused_container_stops_running_and_resumes(ocirt, bundle, cid, tmp_path):
    shared = shared_dir(bundle, tmp_path)
    counter = shared / "c"
    pid = start(ocirt, bundle, cid, "sh", "-c",
                "i=0; while :; do i=$((i+1)); echo $i > /shared/c.tmp; "
                "mv /shared/c.tmp /shared/c; usleep 5000; done")
    wait_for(lambda: counter.exists() and counter.read_text().strip(), what="counter")
    ocirt.ok("pause", cid)
    assert ocirt.state(cid)["status"] == "paused"
    if pure_cgroup_v2():
        d = cgroup_dir(pid, "freezer")
        assert read(d, "cgroup.freeze") == "1" and "frozen 1" in read(d, "cgroup.events")
    else:
        assert read(cgroup_dir(pid, "freezer"), "freezer.state") == "FROZEN"
    if not pure_cgroup_v2():
        # A v1-frozen task is neither running nor in an interruptible sleep (the v2 freezer
        # parks it in an interruptible one: the counter below tells).
        assert proc_state(pid) not in ("R", "S")
    before = counter.read_text()
    time.sleep(0.5)    # a hundred loop iterations if it were running
    assert counter.read_text() == before
    ocirt.ok("resume", cid)
    assert ocirt.state(cid)["status"] == "running"
    wait_for(lambda: counter.read_text() != before, what="the counter to advance")
    assert proc_state(pid) in ("R", "S")


def test_pause_of_created_container_reads_paused_and_resume_returns_to_created(
        ocirt, bundle, cid):
    # runc 1.1.5 pauses a created container too (libcontainer Pause: Running or Created).
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    ocirt.ok("pause", cid)
    assert ocirt.state(cid)["status"] == "paused"
    ocirt.ok("resume", cid)
    assert ocirt.state(cid)["status"] == "created"


def test_resume_of_running_container_is_container_not_paused(ocirt, bundle, cid):
    start(ocirt, bundle, cid, "sleep", "100")
    p = ocirt("resume", cid)
    assert p.returncode == 1
    assert "container not paused" in err_line(p)


def test_pause_of_stopped_container_is_container_not_running(ocirt, bundle, cid):
    bundle.args("true")
    ocirt.ok("run", "--keep", "--bundle", str(bundle.path), cid)
    p = ocirt("pause", cid)
    assert p.returncode == 1
    assert "container not running" in err_line(p)


def test_pause_twice_is_container_not_running(ocirt, bundle, cid):
    start(ocirt, bundle, cid, "sleep", "100")
    ocirt.ok("pause", cid)
    p = ocirt("pause", cid)
    assert p.returncode == 1 and "container not running" in err_line(p)


# --- kill --all / delete --force --------------------------------------------------------------

def test_kill_all_signals_every_process_not_only_init(ocirt, bundle, cid):
    # PID 1 without a handler ignores SIGTERM; its children do not. Once they are gone the
    # init becomes a sleep (same pid), so that "only the init is left" can be seen.
    pid = start(ocirt, bundle, cid, "sh", "-c", "sleep 100 & sleep 100 & wait; exec sleep 100")
    d = cgroup_dir(pid, "pids")
    wait_for(lambda: len(procs(d)) == 3, what="three processes")
    ocirt.ok("kill", "--all", cid, "TERM")
    assert wait_for(lambda: procs(d) == [pid], what="only the init left")
    assert ocirt.state(cid)["status"] == "running"


def test_kill_without_all_signals_only_init(ocirt, bundle, cid):
    pid = start(ocirt, bundle, cid, "sh", "-c", "sleep 100 & sleep 100 & wait")
    d = cgroup_dir(pid, "pids")
    wait_for(lambda: len(procs(d)) == 3, what="three processes")
    ocirt.ok("kill", cid, "TERM")
    time.sleep(0.3)
    assert len(procs(d)) == 3


def _host_pidns(bundle) -> None:
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"]
                                            if n["type"] != "pid"]
    bundle.write()


def test_kill_all_kill_reaches_processes_outside_the_init_pid_namespace(ocirt, bundle, cid):
    # Without a pid namespace, the init's death takes nobody with it: only the cgroup can.
    _host_pidns(bundle)
    pid = start(ocirt, bundle, cid, "sh", "-c", "setsid sleep 101 & setsid sleep 102 & wait")
    d = cgroup_dir(pid, "pids")
    pids = wait_for(lambda: len(procs(d)) == 3 and procs(d), what="three processes")
    ocirt.ok("kill", "--all", cid, "KILL")
    wait_for(lambda: procs(d) == [], what="an empty cgroup")
    for p in pids:
        assert not os.path.exists(f"/proc/{p}") or proc_state(p) == "Z"


def test_delete_force_kills_every_process_of_a_paused_container(ocirt, bundle, cid):
    _host_pidns(bundle)
    pid = start(ocirt, bundle, cid, "sh", "-c", "setsid sleep 101 & setsid sleep 102 & wait")
    dirs = cgroup_dirs(pid)
    d = cgroup_dir(pid, "pids")
    pids = wait_for(lambda: len(procs(d)) == 3 and procs(d), what="three processes")
    ocirt.ok("pause", cid)
    ocirt.ok("delete", "--force", cid)
    assert ocirt.ids() == []
    for p in pids:
        wait_for(lambda: not os.path.exists(f"/proc/{p}") or proc_state(p) == "Z",
                 what=f"pid {p} to die")
    assert not any(os.path.exists(d) for d in dirs.values())


def _delete_force_leaves_nothing(ocirt, bundle, cid) -> None:
    pid = start(ocirt, bundle, cid, "sh", "-c", "setsid sleep 101 & setsid sleep 102 & wait")
    dirs = cgroup_dirs(pid)
    d = cgroup_dir(pid, "pids")
    pids = wait_for(lambda: len(procs(d)) == 3 and procs(d), what="three processes")
    ocirt.ok("delete", "--force", cid)
    assert ocirt.ids() == []
    for p in pids:
        assert not os.path.exists(f"/proc/{p}") or proc_state(p) == "Z"
    assert not any(os.path.exists(d) for d in dirs.values())


def test_delete_force_of_a_running_container_with_its_own_pid_namespace_kills_every_process(
        ocirt, bundle, cid):
    # The init's death takes its whole pid namespace with it (no cgroup-wide kill needed).
    _delete_force_leaves_nothing(ocirt, bundle, cid)


def test_delete_force_of_a_running_container_in_the_host_pid_namespace_kills_every_process(
        ocirt, bundle, cid):
    _host_pidns(bundle)
    _delete_force_leaves_nothing(ocirt, bundle, cid)


def test_delete_removes_sub_cgroups_of_the_container(ocirt, bundle, cid):
    pid = start(ocirt, bundle, cid, "sleep", "100")
    d = cgroup_dir(pid, "pids")
    os.makedirs(os.path.join(d, "sub", "deeper"))
    ocirt.ok("delete", "--force", cid)
    assert not os.path.exists(d)


# --- ps ---------------------------------------------------------------------------------------

def test_ps_json_lists_the_host_pids_of_the_cgroup(ocirt, bundle, cid):
    pid = start(ocirt, bundle, cid, "sh", "-c", "sleep 100 & wait")
    d = cgroup_dir(pid, "pids")
    wait_for(lambda: len(procs(d)) == 2, what="two processes")
    got = json.loads(ocirt.ok("ps", "--format", "json", cid).stdout)
    assert sorted(got) == procs(d)
    assert pid in got


def test_ps_table_has_the_header_and_only_the_container_processes(ocirt, bundle, cid):
    pid = start(ocirt, bundle, cid, "sh", "-c", "sleep 4242 & wait")
    d = cgroup_dir(pid, "pids")
    wait_for(lambda: len(procs(d)) == 2, what="two processes")
    lines = ocirt.ok("ps", cid).stdout.decode().splitlines()
    assert lines[0].split()[:3] == ["UID", "PID", "PPID"]
    assert sorted(int(line.split()[1]) for line in lines[1:]) == procs(d)
    assert any("sleep 4242" in line for line in lines[1:])


def test_ps_passes_its_arguments_to_ps(ocirt, bundle, cid):
    pid = start(ocirt, bundle, cid, "sleep", "100")
    lines = ocirt.ok("ps", cid, "-o", "pid,comm").stdout.decode().splitlines()
    assert lines[0].split() == ["PID", "COMMAND"]
    assert [line.split() for line in lines[1:]] == [[str(pid), "sleep"]]


def test_ps_json_of_stopped_container_is_null(ocirt, bundle, cid):
    bundle.args("true")
    ocirt.ok("run", "--keep", "--bundle", str(bundle.path), cid)
    assert ocirt.ok("ps", "--format", "json", cid).stdout == b"null\n"


# --- events -----------------------------------------------------------------------------------

RUNC_STATS_KEYS = {"cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt",
                   "network_interfaces"}


def test_events_stats_prints_one_object_with_runc_field_names(ocirt, bundle, cid):
    start(ocirt, bundle, cid, "sleep", "100", resources={"pids": {"limit": 50},
                                                         "memory": {"limit": 64 * MiB}})
    out = ocirt.ok("events", "--stats", cid).stdout.decode()
    assert out.count("\n") == 1
    ev = json.loads(out)
    assert ev["type"] == "stats" and ev["id"] == cid
    data = ev["data"]
    assert set(data) == RUNC_STATS_KEYS
    assert set(data["cpu"]) == {"usage", "throttling"}
    assert data["cpu"]["usage"]["total"] > 0
    # cgroup v2 has no per-CPU usage: runc leaves the member out (omitempty)
    assert ("percpu" in data["cpu"]["usage"]) != pure_cgroup_v2()
    assert {"kernel", "user"} <= set(data["cpu"]["usage"])
    assert data["pids"] == {"current": 1, "limit": 50}
    assert data["memory"]["usage"]["limit"] == 64 * MiB
    assert {"limit", "usage", "max", "failcnt"} <= set(data["memory"]["usage"])
    assert {"swap", "kernel", "kernelTCP", "raw"} <= set(data["memory"])
    assert {"cpu_exclusive", "mem_hardwall", "sched_load_balance"} <= set(data["cpuset"])


def test_events_of_stopped_container_fails_as_runc(ocirt, bundle, cid):
    bundle.args("true")
    ocirt.ok("run", "--keep", "--bundle", str(bundle.path), cid)
    p = ocirt("events", "--stats", cid)
    assert p.returncode == 1
    assert f"container with id {cid} is not running" in err_line(p)


def test_events_rejects_a_zero_interval(ocirt, bundle, cid):
    start(ocirt, bundle, cid, "sleep", "100")
    p = ocirt("events", "--interval", "0s", cid)
    assert p.returncode == 1 and "interval must be greater than 0" in err_line(p)


def test_events_streams_stats_and_reports_an_oom_kill_then_exits(ocirt, bundle, cid, tmp_path):
    bundle.args("tail", "/dev/zero")       # buffers a line that never ends
    bundle.config["linux"]["resources"]["memory"] = {"limit": 16 * MiB, "swap": 16 * MiB}
    bundle.write()
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    out = tmp_path / "events.out"
    with open(out, "wb") as f:
        ev = subprocess.Popen(ocirt.cmd("events", "--interval", "100ms", cid), stdout=f,
                              stderr=subprocess.DEVNULL)
    try:
        # The first stats line means the OOM baseline has been read: now let it run.
        wait_for(lambda: b'"type":"stats"' in out.read_bytes(), what="a first stats line")
        ocirt.ok("start", cid)
        assert ev.wait(30) == 0        # the OOM kill stopped the container; events ended
    finally:
        if ev.poll() is None:
            ev.kill()
            ev.wait()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {"type": "oom", "id": cid} in lines
    stats = [e for e in lines if e["type"] == "stats"]
    assert stats and all(e["id"] == cid and set(e["data"]) == RUNC_STATS_KEYS for e in stats)
    assert ocirt.state(cid)["status"] == "stopped"


# --- resource behaviour ------------------------------------------------------------------------

def test_pids_limit_stops_a_fork_loop(ocirt, bundle, cid):
    pid = created(ocirt, bundle, cid, "sh", "-c",
                  "i=0; while [ $i -lt 40 ]; do sleep 100 & i=$((i+1)); done; wait",
                  resources={"pids": {"limit": 8}})
    d = cgroup_dir(pid, "pids")     # before start: the shell may end once a fork fails
    ocirt.ok("start", cid)
    wait_for(lambda: "max 0" not in read(d, "pids.events"), what="a refused fork")
    assert len(procs(d)) <= 8
    assert int(read(d, "pids.current")) <= 8


def test_cpu_quota_throttles_a_busy_loop(ocirt, bundle, cid):
    pid = start(ocirt, bundle, cid, "sh", "-c", "while :; do :; done",
                resources={"cpu": {"quota": 10000, "period": 100000}})
    d = cgroup_dir(pid, "cpu")

    def throttled() -> int:
        st = dict(line.split() for line in read(d, "cpu.stat").splitlines())
        return int(st["nr_throttled"])

    wait_for(lambda: throttled() > 2, what="nr_throttled to grow")


# --- update errors -----------------------------------------------------------------------------

def test_update_of_stopped_container_is_container_not_running(ocirt, bundle, cid):
    bundle.args("true")
    ocirt.ok("run", "--keep", "--bundle", str(bundle.path), cid)
    p = ocirt("update", "--memory", "100m", cid)
    assert p.returncode == 1 and "container not running" in err_line(p)


def test_update_with_invalid_memory_value_names_the_flag(ocirt, bundle, cid):
    start(ocirt, bundle, cid, "sleep", "100")
    p = ocirt("update", "--memory", "12zz", cid)
    assert p.returncode == 1
    assert len(err_line(p).splitlines()) == 1
    assert "invalid value for memory" in err_line(p)


def test_update_with_mistyped_resources_json_names_the_field(ocirt, bundle, cid):
    start(ocirt, bundle, cid, "sleep", "100")
    p = ocirt("update", "--resources", "-", cid, input=b'{"memory": {"limit": "100m"}}')
    assert p.returncode == 1
    assert "linux.resources.memory.limit" in err_line(p)


def test_update_with_intel_rdt_schema_is_refused(ocirt, bundle, cid):
    start(ocirt, bundle, cid, "sleep", "100")
    p = ocirt("update", "--mem-bw-schema", "MB:0=50", cid)
    assert p.returncode == 1 and "Intel RDT" in err_line(p)
