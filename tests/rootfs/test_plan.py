"""setup.plan(): validation and option parsing, no side effects."""

from __future__ import annotations

import os

import pytest

import rootfs_harness as harness
from ocirt.errors import ConfigError, SetupError
from ocirt.linux import syscalls as sc
from ocirt.rootfs import options, setup


def cfg(mounts=None, **linux) -> dict:
    c = harness.runc_spec_config()
    if mounts is not None:
        c["mounts"] = mounts
    c["linux"].update(linux)
    return c


def test_options_parse_like_runc():
    o = options.parse(["rbind", "ro", "nosuid", "rshared", "rro", "rnoatime", "size=1m",
                       "custom", "tmpcopyup", "rw", "suid"])
    assert o.bind and o.recursive and not o.readonly
    assert o.cleared & sc.MS_RDONLY and o.cleared & sc.MS_NOSUID
    assert o.propagation == (sc.MS_SHARED | sc.MS_REC,)
    assert o.rec_set == sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NOATIME
    assert o.rec_clr == sc.MOUNT_ATTR__ATIME
    assert o.data == ("size=1m", "custom") and o.tmpcopyup
    aset, aclr = o.bind_attrs()
    assert aclr == sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NOSUID and aset == 0
    fresh = options.parse(["nosuid", "strictatime", "ro"])
    assert fresh.fresh_attrs() == (sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_STRICTATIME
                                   | sc.MOUNT_ATTR_RDONLY)
    assert fresh.sb_flags() == ["ro"]


def test_plan_paths_and_defaults(bundle):
    os.symlink(bundle.rootfs, os.path.join(bundle.path, "rootlink"))
    c = cfg(mounts=[{"destination": "data", "source": "vol", "options": ["bind"]},
                    {"destination": "/a/../b//c/", "type": "tmpfs"}])
    c["linux"]["devices"] = [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3,
                              "fileMode": 0o600}]
    p = setup.plan(c, "rootlink", bundle.path)
    assert p.rootfs == bundle.rootfs  # canonical
    assert p.mounts[0].destination == "/data" and p.mounts[0].kind == "bind"
    assert p.mounts[0].source == os.path.join(bundle.path, "vol")
    assert p.mounts[1].destination == "/b/c"
    assert [d.path for d in p.devices] == ["/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                           "/dev/urandom", "/dev/tty"]
    assert p.devices[0].mode == 0o600 and p.setup_dev and p.propagation is None


@pytest.mark.parametrize("config,path", [
    (cfg(rootfsPropagation="sideways"), "linux.rootfsPropagation"),
    (cfg(mounts=[{"destination": "/x", "type": "tmpfs", "options": ["idmap"]}]),
     "mounts[0].options"),
    (cfg(mounts=[{"destination": "/x", "source": "/y", "options": ["bind"],
                  "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}]),
     "mounts[0].uidMappings"),
    (cfg(mounts=[{"type": "tmpfs"}]), "mounts[0].destination"),
    (cfg(mounts=[{"destination": "/x"}]), "mounts[0].type"),
    (cfg(mounts=[{"destination": "/x", "options": ["bind"]}]), "mounts[0].source"),
    (cfg(mounts=[{"destination": "/x", "type": "proc", "options": ["tmpcopyup"]}]),
     "mounts[0].options"),
    (cfg(devices=[{"path": "dev/x", "type": "c", "major": 1, "minor": 1}]),
     "linux.devices[0].path"),
    (cfg(devices=[{"path": "/dev/x", "type": "q", "major": 1, "minor": 1}]),
     "linux.devices[0].type"),
    (cfg(devices=[{"path": "/dev/x", "type": "c"}]), "linux.devices[0]"),
    (cfg(maskedPaths=["proc/kcore"]), "linux.maskedPaths[0]"),
    (cfg(sysctl={"net.ipv4.ip_forward": 1}), 'linux.sysctl["net.ipv4.ip_forward"]'),
])
def test_plan_rejects_with_json_path(bundle, config, path):
    with pytest.raises(ConfigError) as e:
        setup.plan(config, "rootfs", bundle.path)
    assert e.value.path == path


def test_missing_rootfs(bundle):
    with pytest.raises(ConfigError) as e:
        setup.plan(cfg(), "nope", bundle.path)
    assert e.value.path == "root.path"


def test_prepare_refuses_the_runtimes_own_mount_namespace(bundle):
    p = setup.plan(cfg(), "rootfs", bundle.path)
    with pytest.raises(SetupError, match="new mount namespace"):
        setup.prepare(p)


def test_unknown_option_goes_to_the_filesystem(bundle):
    c = cfg(mounts=[{"destination": "/proc", "type": "proc", "source": "proc"},
                    {"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                     "options": ["size=1m", "nr_inodes=77"]},
                    {"destination": "/u", "type": "tmpfs", "source": "tmpfs",
                     "options": ["bogus_option"]}])
    res = harness.run(setup.plan(c, "rootfs", bundle.path), stop_after_prepare=True)
    assert res.error["type"] == "SetupError"
    assert res.error["msg"].startswith("mounts[2]: mounting 'tmpfs' to rootfs at '/u'")
    assert "bogus_option" in res.error["msg"]  # the kernel's own explanation
    c["mounts"].pop()
    res = harness.run(setup.plan(c, "rootfs", bundle.path),
                      script="grep ' /t ' /proc/self/mountinfo")
    assert res.error is None and "size=1024k,nr_inodes=77" in res.output


def test_devices_bound_from_host_when_mknod_is_not_allowed(bundle):
    p = setup.plan(cfg(), "rootfs", bundle.path)
    p.userns = True  # devices are bound, not made
    res = harness.run(p, script="stat -c '%n %t:%T' /dev/null /dev/tty; "
                                "grep -c ' /dev/[a-z]* ' /proc/self/mountinfo")
    assert res.error is None, res.error
    assert "/dev/null 1:3" in res.output and "/dev/tty 5:0" in res.output
    assert int(res.output.split()[-1]) >= 6 + 3  # six bound nodes + pts, shm, mqueue
