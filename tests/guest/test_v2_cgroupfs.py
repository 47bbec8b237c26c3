"""The container's /sys/fs/cgroup on a pure cgroup v2 host: its own cgroup and nothing above
it, with or without a cgroup namespace (runc's cgroups.bats "cgroupv2 mount inside
container"), and writable where the mount says rw, so that the container can nest cgroups."""

from __future__ import annotations

import os

from v2lib import read, start, needs_pure_v2

pytestmark = needs_pure_v2


def cgroupns(bundle, wanted: bool = True) -> None:
    """With or without a cgroup namespace (ocirt spec and runc spec add one on cgroup v2)."""
    ns = [n for n in bundle.config["linux"]["namespaces"] if n["type"] != "cgroup"]
    bundle.config["linux"]["namespaces"] = ns + ([{"type": "cgroup"}] if wanted else [])


def test_with_a_cgroup_namespace_the_container_sees_its_cgroup_as_the_root(ocirt, bundle, cid):
    cgroupns(bundle)
    d = start(ocirt, bundle, cid)
    out = ocirt.ok("exec", cid, "sh", "-c", "cat /proc/self/cgroup; find /sys/fs/cgroup -type d; "
                   "cat /sys/fs/cgroup/cgroup.controllers").stdout.decode().splitlines()
    assert out[:2] == ["0::/", "/sys/fs/cgroup"]
    assert out[2] == read(d, "cgroup.controllers")


def test_without_a_cgroup_namespace_only_the_container_cgroup_is_mounted(ocirt, bundle, cid):
    cgroupns(bundle, wanted=False)
    d = start(ocirt, bundle, cid)
    out = ocirt.ok("exec", cid, "sh", "-c", "find /sys/fs/cgroup -type d; "
                   "cat /sys/fs/cgroup/pids.max").stdout.decode().splitlines()
    assert out == ["/sys/fs/cgroup", read(d, "pids.max")]


def test_a_writable_cgroup_mount_lets_the_container_make_sub_cgroups(ocirt, bundle, cid):
    cgroupns(bundle)
    for m in bundle.config["mounts"]:
        if m["type"] == "cgroup":
            m["options"] = [o for o in m.get("options", []) if o != "ro"]
    d = start(ocirt, bundle, cid)
    ocirt.ok("exec", cid, "sh", "-c", "mkdir /sys/fs/cgroup/inner && "
             "echo $$ > /sys/fs/cgroup/inner/cgroup.procs")
    assert os.path.isdir(os.path.join(d, "inner"))
    ocirt.ok("delete", "--force", cid)
    assert not os.path.exists(d)
