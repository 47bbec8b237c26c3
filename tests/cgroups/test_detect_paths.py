"""Mode detection and cgroupsPath resolution."""

from __future__ import annotations

import pytest

from ocirt.cgroups import detect, manager, paths
from ocirt.cgroups.detect import HYBRID, V1, V2, parse_mountinfo
from ocirt.errors import CgroupError, ConfigError

HYBRID_MI = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
"""
V2_MI = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
V1_MI = ("35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n"
         "36 31 0:33 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n")


def test_modes_from_mountinfo():
    h = parse_mountinfo(HYBRID_MI)
    assert h.mode == HYBRID
    assert set(h.v1) == {"cpu", "cpuacct", "memory", "name=systemd"}
    assert h.v1["cpu"] is h.v1["cpuacct"]
    assert h.unified.mountpoint == "/sys/fs/cgroup/unified"
    assert parse_mountinfo(V2_MI).mode == V2
    v1 = parse_mountinfo(V1_MI)
    assert v1.mode == V1 and v1.unified is None and v1.v1["memory"].root == "/docker/abc"


def test_this_host_routes_each_controller_to_its_hierarchy():
    h = detect.host()
    assert detect.host() is h          # cached
    if h.mode == V2:
        # pure v2: every controller the unified root offers is served there, none by v1
        assert not h.v1 or all(c.startswith("name=") for c in h.v1)
        assert {"cpu", "memory", "pids"} <= h.v2_controllers
        assert all(h.route(c) == 2 for c in h.v2_controllers)
        assert h.route("net_cls") is None and h.route("freezer") is None
        return
    if h.mode != HYBRID:
        pytest.skip("a pure cgroup v1 host: no cgroup2 hierarchy to route to")
    # the hybrid layout of the CI machines: hugetlb alone on cgroup2
    assert h.route("memory") == 1 and h.route("hugetlb") == 2 and h.route("rdma") is None


def test_own_cgroups_parse():
    own = detect.own_cgroups("4:memory:/a/b\n2:cpu,cpuacct:/\n0::/x\n1:name=systemd:/s\n")
    assert own == {"memory": "/a/b", "cpu": "/", "cpuacct": "/", "": "/x",
                   "name=systemd": "/s"}


def test_clean_never_escapes():
    assert paths.clean("/a/../../b") == "/b"
    assert paths.clean("../../etc/x") == "etc/x"
    assert paths.clean("a/./b/") == "a/b"
    assert paths.clean("//") == "/" and paths.clean("//x//y") == "/x/y"


def test_default_absolute_and_relative_paths():
    h = parse_mountinfo(HYBRID_MI)
    p = paths.resolve(h, "c1", None)
    assert p["memory"] == "/sys/fs/cgroup/memory/ocirt/c1"
    assert p[""] == "/sys/fs/cgroup/unified/ocirt/c1"
    p = paths.resolve(h, "c1", "/pod/c1")
    assert p["cpu"] == "/sys/fs/cgroup/cpu,cpuacct/pod/c1"
    # relative: under our own cgroup of each hierarchy; on cgroup2 under its parent
    real = detect.host()
    own = detect.own_cgroups()
    p = paths.resolve(real, "c1", "rel/c1")
    for ctrl, hier in real.v1.items():
        assert p[ctrl] == (hier.mountpoint + own[ctrl]).rstrip("/") + "/rel/c1"
    if real.unified is not None:
        import posixpath
        parent = posixpath.dirname(own[""]) if own[""] != "/" else ""
        assert p[""] == real.unified.mountpoint + parent.rstrip("/") + "/rel/c1"


def test_root_and_systemd_style_paths_refused():
    for root in ("/", "//", "/./", "///.", "/x/.."):
        with pytest.raises(ConfigError) as e:
            paths.inner_path("c", root)
        assert e.value.path == "linux.cgroupsPath"
    with pytest.raises(ConfigError):
        paths.inner_path("c", "system.slice:ocirt:c")


def test_systemd_flag_is_a_clear_error():
    if detect.systemd_running():
        pytest.skip("systemd runs here")
    with pytest.raises(CgroupError, match="systemd cgroup manager requested but systemd is not running"):
        manager.for_container("x", None, systemd=True)


def test_for_container_has_no_side_effects():
    import os
    m = manager.for_container("ocirt-no-side-effects", "/ocirt-no-side-effects/x")
    assert m.paths and not any(os.path.exists(d) for d in m.paths.values())
