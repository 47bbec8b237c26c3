"""linux.memoryPolicy: set_mempolicy(2) on the container's process, every mode and flag."""

from __future__ import annotations

import json

import pytest

from ocirt_testlib import run_out


def _online_nodes() -> str:
    try:
        with open("/sys/devices/system/node/online") as f:
            return f.read().strip()
    except OSError:
        return ""


pytestmark = pytest.mark.skipif(not _online_nodes(), reason="this kernel has no NUMA support")

# mode, nodes, flags -> the policy as /proc/PID/numa_maps shows it for a mapping
CASES = [
    ("MPOL_DEFAULT", "", [], "default"),
    ("MPOL_PREFERRED", "0", [], "prefer:0"),
    ("MPOL_BIND", "0", [], "bind:0"),
    ("MPOL_INTERLEAVE", "0", [], "interleave:0"),
    ("MPOL_LOCAL", "", [], "local"),
    ("MPOL_PREFERRED_MANY", "0", [], "prefer (many):0"),
    ("MPOL_WEIGHTED_INTERLEAVE", "0", [], "weighted interleave:0"),
    ("MPOL_BIND", "0", ["MPOL_F_STATIC_NODES"], "bind=static:0"),
    ("MPOL_BIND", "0", ["MPOL_F_RELATIVE_NODES"], "bind=relative:0"),
    ("MPOL_BIND", "0", ["MPOL_F_NUMA_BALANCING"], "bind=balancing:0"),
]


def _policy(bundle, mode: str, nodes: str, flags: list[str]) -> None:
    bundle.config["linux"]["memoryPolicy"] = {"mode": mode, "nodes": nodes}
    if flags:
        bundle.config["linux"]["memoryPolicy"]["flags"] = flags


def _numa_policy(first_line: str) -> str:
    # The first mapping is the program's file: "00400000 bind=static:0 file=/bin/busybox ..."
    # -> "bind=static:0" (the policy itself may contain a blank: "prefer (many):0").
    return first_line.split(" ", 1)[1].split(" file=")[0]


@pytest.mark.parametrize("mode,nodes,flags,shown", CASES,
                         ids=[f"{m}-{'+'.join(f) or 'noflags'}" for m, _, f, _ in CASES])
def test_container_process_runs_under_the_memory_policy(ocirt, bundle, cid, mode, nodes, flags,
                                                         shown):
    _policy(bundle, mode, nodes, flags)
    out = run_out(ocirt, bundle, cid, "head -1 /proc/self/numa_maps")
    assert _numa_policy(out.strip()) == shown


def test_waiting_init_already_has_the_policy(ocirt, bundle, cid):
    _policy(bundle, "MPOL_INTERLEAVE", "0", [])
    bundle.args("true")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    pid = ocirt.state(cid)["pid"]
    with open(f"/proc/{pid}/numa_maps") as f:
        assert _numa_policy(f.readline().strip()) == "interleave:0"


def test_exec_process_gets_the_memory_policy(ocirt, bundle, cid):
    _policy(bundle, "MPOL_PREFERRED", "0", [])
    bundle.args("sleep", "60")
    ocirt.ok("run", "-d", "--bundle", str(bundle.path), cid)
    p = ocirt.ok("exec", cid, "head", "-1", "/proc/self/numa_maps")
    assert _numa_policy(p.stdout.decode().strip()) == "prefer:0"


def test_node_that_is_not_online_fails_create_naming_the_field(ocirt, bundle, cid):
    missing = max(int(n) for n in _online_nodes().replace("-", ",").split(",")) + 1
    _policy(bundle, "MPOL_BIND", str(missing), [])
    bundle.args("true")
    p = ocirt("create", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    assert f"linux.memoryPolicy.nodes: node(s) {missing} not online".encode() in p.stderr
    assert ocirt.ids() == []


def test_validate_host_reports_a_node_that_is_not_online(ocirt, bundle):
    missing = max(int(n) for n in _online_nodes().replace("-", ",").split(",")) + 1
    _policy(bundle, "MPOL_BIND", f"0,{missing}", [])
    bundle.write()
    p = ocirt("validate", "--bundle", str(bundle.path), "--host", "--format", "json")
    assert p.returncode == 1
    assert [e["path"] for e in json.loads(p.stdout)] == ["linux.memoryPolicy.nodes"]
