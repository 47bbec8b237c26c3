"""process.execCPUAffinity: `initial` for the process that enters the container until its
cgroup move, `final` for the user's process of `exec`; not for the container's init (spec)."""

from __future__ import annotations

import json
import os

import pytest

from ocirt.config.semantic import format_id_list, id_set

with open("/sys/devices/system/cpu/online") as _f:
    ONLINE = sorted(id_set(_f.read()))

pytestmark = pytest.mark.skipif(len(ONLINE) < 2, reason="needs two online CPUs")
FIRST, LAST = str(ONLINE[0]), str(ONLINE[-1])
GREP = ["/bin/grep", "Cpus_allowed_list", "/proc/self/status"]


def _cpus_allowed(status: str) -> str:
    return next(line.split("\t")[1] for line in status.splitlines()
                if line.startswith("Cpus_allowed_list:"))


def _pid_cpus(pid: int) -> str:
    with open(f"/proc/{pid}/status") as f:
        return _cpus_allowed(f.read())


@pytest.fixture
def running(ocirt, bundle, cid):
    bundle.config["process"]["execCPUAffinity"] = {"initial": LAST, "final": FIRST}
    bundle.args("sleep", "100")
    ocirt.ok("run", "-d", "--bundle", str(bundle.path), cid)
    return cid


def test_exec_process_runs_on_the_final_cpus(ocirt, running):
    p = ocirt.ok("exec", running, *GREP)
    assert _cpus_allowed(p.stdout.decode()) == FIRST


def test_entering_process_runs_on_the_initial_cpus(ocirt, running):
    p = ocirt.ok("exec", running, "true", global_args=("--debug",))
    line = next(l for l in p.stderr.decode().splitlines() if "initial CPU affinity of" in l)
    assert line.rstrip('"').endswith(f": {LAST}")


def test_process_json_affinity_replaces_the_configs(ocirt, running, tmp_path):
    proc = tmp_path / "process.json"
    proc.write_text(json.dumps({"args": GREP, "cwd": "/",
                                "execCPUAffinity": {"initial": FIRST, "final": LAST}}))
    p = ocirt.ok("exec", "--process", str(proc), running)
    assert _cpus_allowed(p.stdout.decode()) == LAST


def test_without_final_the_kernel_decides_after_the_cgroup_move(ocirt, running, tmp_path):
    proc = tmp_path / "process.json"
    proc.write_text(json.dumps({"args": GREP, "cwd": "/", "execCPUAffinity": {"initial": LAST}}))
    p = ocirt.ok("exec", "--process", str(proc), running)
    assert _cpus_allowed(p.stdout.decode()) == _pid_cpus(ocirt.state(running)["pid"])


def test_container_init_is_not_affected(ocirt, bundle, cid):
    bundle.config["process"]["execCPUAffinity"] = {"initial": LAST, "final": LAST}
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    pid = ocirt.state(cid)["pid"]
    assert _pid_cpus(pid) == format_id_list(os.sched_getaffinity(pid)) != LAST
    ocirt.ok("start", cid)
    assert _pid_cpus(pid) != LAST


def test_cpu_not_online_fails_create_naming_the_field(ocirt, bundle, cid):
    bundle.config["process"]["execCPUAffinity"] = {"final": str(ONLINE[-1] + 1)}
    bundle.args("true")
    p = ocirt("create", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    assert b"process.execCPUAffinity.final: CPU(s)" in p.stderr and b"not online" in p.stderr
    assert ocirt.ids() == []


def test_cpu_not_online_fails_exec(ocirt, running, tmp_path):
    proc = tmp_path / "process.json"
    proc.write_text(json.dumps({"args": ["true"], "cwd": "/",
                                "execCPUAffinity": {"initial": str(ONLINE[-1] + 1)}}))
    p = ocirt("exec", "--process", str(proc), running)
    assert p.returncode != 0
    assert b"process.execCPUAffinity.initial" in p.stderr
