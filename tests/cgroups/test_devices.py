"""devices: the rule emulator, v1 devices.allow/deny, and the v2 eBPF filter enforced for real."""

from __future__ import annotations

import os
import subprocess

import pytest

from ocirt.cgroups import bpf_devices
from ocirt.cgroups.controllers import devices
from ocirt.errors import ConfigError

from cghelpers import read, v2_host

DENY_ALL = {"allow": False, "access": "rwm"}
NULL = {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
ZERO_R = {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"}
ANY_MKNOD = {"allow": True, "type": "c", "access": "m"}

PROBE = ("for spec in '</dev/null' '>/dev/null' '</dev/zero' '>/dev/zero' '</dev/full'; do "
         "if (eval \"exec 9$spec\") 2>&-; then echo \"$spec ok\"; else echo \"$spec no\"; fi; "
         "done; mknod /tmp/.ocirt-probe-$$ c 1 7 2>&- && echo mknod ok && "
         "rm -f /tmp/.ocirt-probe-$$ || echo mknod no")


def probe(m, spawn) -> dict[str, bool]:
    p = spawn(m, ["sh", "-c", PROBE], stdout=subprocess.PIPE)
    out, _ = p.communicate(timeout=30)
    res = {}
    for line in out.decode().splitlines():
        k, _, v = line.rpartition(" ")
        res[k] = v == "ok"
    return res


def test_emulator_keeps_the_listed_order_and_resets():
    rs = devices.parse([DENY_ALL, NULL, ZERO_R, ANY_MKNOD])
    assert not rs.default_allow
    assert rs.rules() == [("c", 1, 3, "rwm"), ("c", 1, 5, "r"), ("c", -1, -1, "m")]
    rs = devices.parse([DENY_ALL, NULL, {"allow": False, "type": "c", "major": 1, "minor": 3,
                                         "access": "w"}])
    assert rs.rules() == [("c", 1, 3, "rm")]
    rs = devices.parse([NULL, {"allow": True, "access": "rwm"}])     # "a" resets to allow
    assert rs.default_allow and rs.rules() == []
    # a partial "a" rule is expanded, never written as "a" (the kernel would allow all)
    rs = devices.parse([{"allow": True, "type": "a", "access": "r"}])
    assert sorted(rs.rules()) == [("b", -1, -1, "r"), ("c", -1, -1, "r")]


def test_emulator_refuses_hole_punching():
    with pytest.raises(ConfigError) as e:
        devices.parse([DENY_ALL, ANY_MKNOD, {"allow": False, "type": "c", "major": 1,
                                             "minor": 3, "access": "m"}])
    assert e.value.path == "linux.resources.devices[2]"


def _rules_in_force(m) -> list[str] | int:
    """v1: the devices.list lines; cgroup v2: how many filter programs are attached."""
    if "devices" in m.paths:
        return read(m.paths["devices"], "devices.list").splitlines()
    return len(bpf_devices.attached(m.paths[""]))


def test_host_devices_controller_files_and_enforcement(make, spawn):
    # The host's own device controller: v1 devices.allow/deny, or on a pure v2 host the
    # eBPF filter (where the same rules are enforced; the files are the v1 fact).
    m = make()
    v1 = "devices" in m.paths
    m.create({"devices": [DENY_ALL, NULL, ZERO_R]})
    assert _rules_in_force(m) == (["c 1:3 rwm", "c 1:5 r"] if v1 else 1)
    got = probe(m, spawn)
    assert got["</dev/null"] and got[">/dev/null"] and got["</dev/zero"]
    assert not got[">/dev/zero"] and not got["</dev/full"] and not got["mknod"]
    # update: /dev/full in, /dev/zero out, /dev/null untouched
    m.update({"devices": [DENY_ALL, NULL, {"allow": True, "type": "c", "major": 1,
                                           "minor": 7, "access": "rwm"}]})
    assert _rules_in_force(m) == (["c 1:3 rwm", "c 1:7 rwm"] if v1 else 1)
    got = probe(m, spawn)
    assert got["</dev/null"] and got["</dev/full"] and not got["</dev/zero"]
    m.update({"devices": [{"allow": True, "access": "rwm"}]})
    assert _rules_in_force(m) == (["a *:* rwm"] if v1 else 1)
    if not v1:
        got = probe(m, spawn)
        assert all(got.values()), got


@pytest.fixture
def v2m(make):
    return make("/{prefix}-v2/{id}", host=v2_host())


def test_v2_bpf_filter_enforced_and_replaced(v2m, spawn):
    m = v2m
    assert set(m.paths) == {""}
    m.create({"devices": [DENY_ALL, NULL, ZERO_R, ANY_MKNOD]})
    ids = bpf_devices.attached(m.paths[""])
    assert len(ids) == 1
    got = probe(m, spawn)
    assert got["</dev/null"] and got[">/dev/null"] and got["</dev/zero"]
    assert not got[">/dev/zero"] and not got["</dev/full"]
    # mknod of a char device: allowed by "c *:* m" in the filter (v1 devices of this host
    # would still apply on top, and allow everything for our test process's v1 cgroup)
    assert got["mknod"]
    m.update({"devices": [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 7,
                                     "access": "rw"}]})
    ids2 = bpf_devices.attached(m.paths[""])
    assert len(ids2) == 1 and ids2 != ids, "update replaces the program"
    got = probe(m, spawn)
    assert got["</dev/full"] and not got["</dev/null"] and not got["mknod"]
    # default allow with a deny exception: deny matches on any shared access bit
    m.update({"devices": [{"allow": True, "access": "rwm"},
                          {"allow": False, "type": "c", "major": 1, "minor": 5,
                           "access": "w"}]})
    got = probe(m, spawn)
    assert got["</dev/null"] and got["</dev/zero"] and not got[">/dev/zero"]
    d = m.paths[""]
    m.destroy()
    assert not os.path.exists(d)


def test_bpf_program_layout():
    prog = bpf_devices.assemble(False, [("c", 1, 3, "rwm"), ("b", -1, -1, "m")])
    assert len(prog) % 8 == 0
    # prologue 6, rule1: type+major+minor+2, rule2: type+access(3)+2, epilogue 2
    assert len(prog) // 8 == 6 + 5 + 6 + 2
    assert prog[-16:] == bpf_devices.mov64_imm(0, 0) + bpf_devices.exit_()
