"""The cgroup v2 device filter (an eBPF program on the container's cgroup) on real
containers: what it lets through and what it refuses is checked from inside, and compared
with runc's filter for the same rules."""

from __future__ import annotations

import pytest

from ocirt.cgroups import bpf_devices

from v2lib import disk, modprobe, start, needs_pure_v2

pytestmark = needs_pure_v2

KMSG = {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}


def run_out(runtime, bundle, cid: str, script: str) -> list[str]:
    """Run `script` with CAP_MKNOD (nodes are made in the container's own /dev tmpfs) and no
    other capability that opening these devices would need: what is refused is refused by
    the device filter. Its output lines."""
    caps = bundle.config["process"]["capabilities"]
    for kind in ("bounding", "effective", "permitted"):
        if "CAP_MKNOD" not in caps[kind]:
            caps[kind].append("CAP_MKNOD")
    bundle.sh(script)
    p = runtime("run", "--bundle", str(bundle.path), cid)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode().splitlines()


@pytest.fixture
def fuse() -> None:
    """/dev/fuse (c 10:229) has a driver: it opens without any capability."""
    modprobe("fuse")


def test_one_filter_program_is_attached_to_the_container_cgroup(ocirt, bundle, cid):
    d = start(ocirt, bundle, cid)
    assert len(bpf_devices.attached(d)) == 1


def test_a_device_without_a_rule_cannot_be_opened_inside(ocirt, bundle, cid):
    bundle.config["linux"]["devices"] = [KMSG]
    out = run_out(ocirt, bundle, cid, "(exec 3>/dev/kmsg) && echo opened || echo refused")
    assert out == ["refused"]


def test_a_device_rule_lets_the_device_be_opened_inside(ocirt, bundle, cid):
    bundle.config["linux"]["devices"] = [KMSG]
    bundle.config["linux"]["resources"]["devices"].append(
        {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"})
    out = run_out(ocirt, bundle, cid, "(exec 3>/dev/kmsg) && echo opened || echo refused")
    assert out == ["opened"]


def test_access_is_granted_letter_by_letter(ocirt, bundle, cid, fuse):
    # /dev/fuse needs no capability to open: write granted, read not
    bundle.config["linux"]["resources"]["devices"].append(
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "w"})
    out = run_out(ocirt, bundle, cid,
                  "mknod /dev/f c 10 229; (exec 3>/dev/f) && echo w; (exec 3</dev/f) && echo r"
                  " || echo no-r")
    assert out == ["w", "no-r"]


def test_a_node_made_inside_of_a_denied_char_device_cannot_be_opened(ocirt, bundle, cid, fuse):
    # mknod itself is allowed for every device (runc's default rules); using it is not
    out = run_out(ocirt, bundle, cid,
                  "mknod /dev/f c 10 229 && echo made; (exec 3<>/dev/f) 2>/dev/null && "
                  "echo opened || echo refused")
    assert out == ["made", "refused"]


def test_a_node_made_inside_of_a_denied_block_device_cannot_be_read(ocirt, bundle, cid):
    ma, mi = disk()
    out = run_out(ocirt, bundle, cid,
                  f"mknod /dev/d b {ma} {mi} && echo made; head -c1 /dev/d >/dev/null 2>&1 "
                  "&& echo read || echo refused")
    assert out == ["made", "refused"]


def test_a_deny_rule_after_an_allow_all_takes_only_that_device_away(ocirt, bundle, cid, fuse):
    ma, mi = disk()
    bundle.config["linux"]["resources"]["devices"] = [
        {"allow": True, "access": "rwm"},
        {"allow": False, "type": "b", "major": ma, "minor": mi, "access": "r"}]
    out = run_out(ocirt, bundle, cid,
                  f"mknod /dev/d b {ma} {mi}; head -c1 /dev/d >/dev/null 2>&1 && echo disk "
                  "|| echo no-disk; mknod /dev/f c 10 229; (exec 3<>/dev/f) 2>/dev/null && "
                  "echo fuse || echo no-fuse")
    assert out == ["no-disk", "fuse"]


def _probe(disk_dev: tuple[int, int]) -> str:
    """For a few nodes: made or not, and whether they open for reading and for writing."""
    nodes = ["c 1 3", "c 1 11", "c 10 229", "c 10 200", "c 5 2", f"b {disk_dev[0]} "
             f"{disk_dev[1]}"]
    return ("for n in " + " ".join(f"'{n}'" for n in nodes) + "; do set -- $n; "
            "f=/dev/node-$2-$3; mknod $f $1 $2 $3 2>/dev/null || { echo \"$n nomknod\"; "
            "continue; }; r=-; w=-; (exec 3<$f) 2>/dev/null && r=r; (exec 3>$f) 2>/dev/null "
            "&& w=w; echo \"$n $r$w\"; done")


def test_the_filter_enforces_what_runcs_filter_enforces(ocirt, runc, bundle, cid, fuse):
    bundle.config["linux"]["resources"]["devices"] += [
        {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"},
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "w"},
        {"allow": True, "type": "b", "access": "r"}]
    ours = run_out(ocirt, bundle, cid, _probe(disk()))
    assert ours == run_out(runc, bundle, cid + "-runc", _probe(disk()))
    assert len(ours) == 6 and "c 10 229 -w" in ours and "c 1 11 -w" in ours
    assert "c 10 200 rw" in ours and "c 1 3 rw" in ours      # runc's default rules
