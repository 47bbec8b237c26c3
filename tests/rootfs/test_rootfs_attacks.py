"""Breakout attempts through the rootfs (SECURITY.md: CVE-2021-30465, CVE-2024-45310,
CVE-2019-16884, CVE-2019-19921, CVE-2025-31133, CVE-2025-52881). Each must fail or land
inside the rootfs; nothing may be mounted or created outside it."""

from __future__ import annotations

import os
import signal
import tempfile

import pytest

import rootfs_harness as harness
from ocirt.errors import ConfigError
from ocirt.linux import procfs
from ocirt.linux import syscalls as sc
from ocirt.rootfs import setup


@pytest.fixture(params=["openat2", "walk"])
def resolver(request, monkeypatch):
    """Run a test with openat2(RESOLVE_IN_ROOT) and again with the O_NOFOLLOW-walk fallback."""
    if request.param == "walk":
        from ocirt.linux import pathrs
        monkeypatch.setattr(pathrs, "_openat2_works", False)
    return request.param


def inside(bundle, mounts: list[str]) -> bool:
    return all(m == bundle.rootfs or m.startswith(bundle.rootfs + "/") for m in mounts)


def minimal(mounts: list[dict], **linux) -> dict:
    return {"root": {"path": "rootfs"}, "mounts": mounts,
            "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"},
                                     {"type": "network"}], **linux}}


def test_absolute_symlink_destination_lands_in_rootfs(bundle, resolver):
    os.rmdir(bundle.at("/etc"))
    os.mkdir(bundle.at("/etc"))
    os.symlink("/etc", bundle.at("/mnt"))
    before = sorted(os.listdir("/etc"))
    cfg = minimal([{"destination": "/mnt", "type": "tmpfs", "source": "tmpfs"},
                   {"destination": "/mnt/sub/dir", "type": "tmpfs", "source": "tmpfs"}])
    res = harness.run(setup.plan(cfg, "rootfs", bundle.path), stop_after_prepare=True)
    assert res.error is None, res.error
    assert bundle.rootfs + "/etc" in res.new_mounts
    assert bundle.rootfs + "/etc/sub/dir" in res.new_mounts
    assert inside(bundle, res.new_mounts)
    assert sorted(os.listdir("/etc")) == before


def test_relative_dotdot_symlink_destination(bundle, resolver):
    host = tempfile.mkdtemp(prefix="ocirt-escape-")
    try:
        os.symlink("../../../../../../../../.." + host, bundle.at("/data"))
        cfg = minimal([{"destination": "/data/x", "type": "tmpfs", "source": "tmpfs"},
                       {"destination": "/data/f", "type": "bind", "source": "/etc/hostname",
                        "options": ["bind"]}])
        res = harness.run(setup.plan(cfg, "rootfs", bundle.path), stop_after_prepare=True)
        assert res.error is None, res.error
        assert bundle.rootfs + host + "/x" in res.new_mounts
        assert inside(bundle, res.new_mounts)
        assert os.listdir(host) == []
        assert os.path.isdir(bundle.at(host + "/x"))
    finally:
        os.rmdir(host)


@pytest.mark.parametrize("fstype,dest", [("proc", "/proc"), ("sysfs", "/sys")])
def test_proc_or_sys_symlink_refused(bundle, fstype, dest):
    os.rmdir(bundle.at(dest))
    os.mkdir(bundle.at("/bad"))
    os.symlink("/bad", bundle.at(dest))
    cfg = minimal([{"destination": dest, "type": fstype, "source": fstype}])
    res = harness.run(setup.plan(cfg, "rootfs", bundle.path), stop_after_prepare=True)
    assert res.error is not None
    assert res.error["type"] == "SecurityError"
    assert f'filesystem "{fstype}" must be mounted on ordinary directory' in res.error["msg"]
    assert res.new_mounts == []
    assert not any(m.endswith("/bad") for m in res.new_mounts)


@pytest.mark.parametrize("mount,where", [
    ({"destination": "/proc", "type": "tmpfs", "source": "tmpfs"}, "not of type proc"),
    ({"destination": "/proc/self", "type": "tmpfs", "source": "tmpfs"}, "inside /proc"),
    ({"destination": "/proc/self", "source": "/tmp", "options": ["bind"]}, "inside /proc"),
    ({"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs"}, "inside /proc"),
    ({"destination": "/proc/../proc/self/attr", "type": "tmpfs"}, "inside /proc"),
])
def test_mounts_over_proc_refused_by_plan(bundle, mount, where):
    cfg = minimal([{"destination": "/proc", "type": "proc", "source": "proc"}, mount])
    with pytest.raises(ConfigError) as e:
        setup.plan(cfg, "rootfs", bundle.path)
    assert e.value.path == "mounts[1].destination" and where in str(e.value)


def test_lxcfs_style_bind_below_proc_allowed(bundle):
    fake = os.path.join(bundle.path, "meminfo")
    with open(fake, "w") as f:
        f.write("MemTotal: 1 kB\n")
    cfg = minimal([{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/proc/meminfo", "source": fake, "options": ["bind"]}])
    res = harness.run(setup.plan(cfg, "rootfs", bundle.path), script="cat /proc/meminfo")
    assert res.error is None, res.error
    assert res.output == "MemTotal: 1 kB\n"


def test_symlink_into_proc_refused_at_prepare(bundle, resolver):
    os.symlink("/proc/self", bundle.at("/innocent"))
    cfg = minimal([{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/innocent", "type": "tmpfs", "source": "tmpfs"}])
    res = harness.run(setup.plan(cfg, "rootfs", bundle.path), stop_after_prepare=True)
    assert res.error is not None and res.error["type"] == "SecurityError"
    assert "inside /proc" in res.error["msg"]


def test_bind_of_non_procfs_onto_proc_refused(bundle):
    fake = os.path.join(bundle.path, "fakeproc")
    os.makedirs(fake + "/self/attr")
    cfg = minimal([{"destination": "/proc", "source": fake, "options": ["rbind"]}])
    res = harness.run(setup.plan(cfg, "rootfs", bundle.path), stop_after_prepare=True)
    assert res.error is not None and res.error["type"] == "SecurityError"
    assert "not of type proc" in res.error["msg"]


@pytest.mark.parametrize("kind", ["symlink", "regular file"])
def test_fake_dev_null_refused_without_dev_tmpfs(bundle, kind):
    if kind == "symlink":
        os.symlink("/proc/sys/kernel/core_pattern", bundle.at("/dev/null"))
    else:
        open(bundle.at("/dev/null"), "w").close()
    cfg = harness.runc_spec_config()
    cfg["mounts"] = [m for m in cfg["mounts"] if not m["destination"].startswith("/dev")]
    cfg["linux"]["maskedPaths"] = ["/proc/kcore", "/proc/keys"]
    res = harness.run(setup.plan(cfg, "rootfs", bundle.path), script="true")
    assert res.error is not None and res.error["type"] == "SecurityError"
    assert "/dev/null is invalid" in res.error["msg"]
    # the error came before any masking: nothing could have been bound over a procfs file
    assert res.msg("prepared") is None


def test_masking_refuses_dev_null_swapped_after_prepare(bundle):
    """The race variant: /dev/null turns into a symlink between device creation and masking."""
    cfg = harness.runc_spec_config()
    cfg["linux"]["maskedPaths"] = ["/proc/keys"]

    def hook(plan):
        os.unlink(bundle.at("/dev/null"))
        os.symlink("/proc/sys/kernel/core_pattern", bundle.at("/dev/null"))

    res = harness.run(setup.plan(cfg, "rootfs", bundle.path), hook=hook, script="true")
    assert res.error is not None and res.error["type"] == "SecurityError"
    assert "/dev/null is invalid" in res.error["msg"]


def test_sysctl_keys_validated():
    from ocirt.rootfs import sysctl
    ns = frozenset({"network", "ipc", "uts"})
    for key in ("net/ipv4/../../kernel/core_pattern", "net.ipv4..ip_forward",
                "kernel.core_pattern", "kernel.hostname", "vm.overcommit_memory"):
        with pytest.raises(ConfigError) as e:
            sysctl.validate({key: "1"}, ns, frozenset(), {})
        assert e.value.path == f'linux.sysctl["{key}"]'
    with pytest.raises(ConfigError):
        sysctl.validate({"net.ipv4.ip_forward": "1"}, frozenset({"ipc"}), frozenset(), {})
    assert sysctl.validate({"net/ipv4/conf/eth0.100/forwarding": "1"}, ns, frozenset(), {}) \
        == [("net/ipv4/conf/eth0.100/forwarding", "net/ipv4/conf/eth0.100/forwarding", "1")]


def test_sysctl_file_is_the_one_the_config_checks_validated():
    # sysctl.d(5): the first separator decides; in dotted notation a slash stands for a dot
    # inside a name (eth0.100), so the file written is the one the rules looked at.
    from ocirt.rootfs import sysctl
    ns = frozenset({"network"})
    assert sysctl.validate({"net.ipv4.conf.eth0/100.forwarding": "1"}, ns, frozenset(), {}) \
        == [("net.ipv4.conf.eth0/100.forwarding", "net/ipv4/conf/eth0.100/forwarding", "1")]


def test_sysctl_in_a_joined_host_network_namespace_is_refused():
    from ocirt.rootfs import sysctl
    linux = {"namespaces": [{"type": "network", "path": "/proc/self/ns/net"}]}
    with pytest.raises(ConfigError, match="host's network namespace"):
        sysctl.validate({"net.ipv4.ip_forward": "1"}, frozenset(), frozenset({"network"}), linux)


def test_sysctl_through_tmpfs_over_proc_sys_lands_in_real_procfs(bundle):
    """A tmpfs over /proc/sys (put there by a racing mount; plan() refuses it in config)
    must not receive the write: the value reaches the container's real net namespace."""
    cfg = harness.runc_spec_config()
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    cfg["linux"]["readonlyPaths"] = []
    with pytest.raises(ConfigError):
        bad = harness.runc_spec_config()
        bad["mounts"].append({"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs"})
        setup.plan(bad, "rootfs", bundle.path)
    host_before = open("/proc/sys/net/ipv4/ip_forward").read()

    def hook(plan):
        target = bundle.rootfs + "/proc/sys"
        sc.mount("tmpfs", target, "tmpfs", 0)
        os.makedirs(target + "/net/ipv4")
        with open(target + "/net/ipv4/ip_forward", "w") as f:
            f.write("0\n")

    def probe():
        with open("/proc/sys/net/ipv4/ip_forward") as f:
            fake = f.read()
        return {"fake": fake, "real": procfs.read_file("sys/net/ipv4/ip_forward").decode()}

    res = harness.run(setup.plan(cfg, "rootfs", bundle.path), hook=hook, probe=probe)
    assert res.error is None, res.error
    assert res.value == {"fake": "0\n", "real": "1\n"}
    assert open("/proc/sys/net/ipv4/ip_forward").read() == host_before


def _swapper(vol: str) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            fd = os.open(vol, os.O_PATH | os.O_DIRECTORY)
            while True:
                sc.renameat2(fd, "a", fd, "b", sc.RENAME_EXCHANGE)
        finally:
            os._exit(0)
    return pid


def test_mountpoint_race_never_escapes(bundle, resolver):
    """CVE-2021-30465 / CVE-2024-45310: `a` is swapped with a symlink to a host directory
    (renameat2 RENAME_EXCHANGE, as fast as possible) while 100 containers mount at /vol/a/m."""
    host = tempfile.mkdtemp(prefix="ocirt-race-")
    vol = bundle.at("/vol")
    os.makedirs(vol + "/a")
    os.symlink(host, vol + "/b")
    cfg = minimal([{"destination": "/vol/a/m/n", "type": "tmpfs", "source": "tmpfs"},
                   {"destination": "/vol/a/f", "source": "/etc/hostname", "options": ["bind"]}])
    plan = setup.plan(cfg, "rootfs", bundle.path)
    pid = _swapper(vol)
    places: dict[str, int] = {}
    errors = 0
    try:
        for _ in range(100):
            res = harness.run(plan, stop_after_prepare=True)
            if res.error:
                errors += 1
                assert res.error["type"] in ("SetupError", "SecurityError"), res.error
            assert inside(bundle, res.new_mounts), res.new_mounts
            for m in res.new_mounts:
                if m != bundle.rootfs:
                    places[m] = places.get(m, 0) + 1
            assert os.listdir(host) == []
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.rmdir(host)
    assert places, "no container got its mounts"
    print(f"mount places: {places}; errors: {errors}")
