"""linux.netDevices: a host interface moved into the container's network namespace and back.

The "host" here is a network namespace the test makes (ocirt runs inside it through nsenter),
holding one end of a veth pair: the machine's own interfaces are never touched.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest

from ocirt_testlib import Runner

pytestmark = pytest.mark.skipif(shutil.which("ip") is None or shutil.which("nsenter") is None,
                                reason="needs iproute2's ip and util-linux's nsenter")
ADDRESS = "10.213.7.1/24"


class NetnsRunner(Runner):
    """ocirt run inside the test's network namespace."""

    def __init__(self, root, netns: str) -> None:
        super().__init__(root)
        self.netns = netns

    def cmd(self, *args: str, global_args: tuple[str, ...] = ()) -> list[str]:
        return ["nsenter", f"--net=/var/run/netns/{self.netns}",
                *super().cmd(*args, global_args=global_args)]


class Host:
    def __init__(self, netns: str, dev: str) -> None:
        self.netns = netns
        self.dev = dev          # the end of the veth pair the containers get

    def ip(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "-n", self.netns, *args], capture_output=True, text=True)


@pytest.fixture
def host(ocirt):
    tag = uuid.uuid4().hex[:6]
    netns, dev = f"ocirt-nd-{tag}", f"nd{tag}"
    if subprocess.run(["ip", "netns", "add", netns], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace")
    h = Host(netns, dev)
    try:
        if h.ip("link", "add", dev, "type", "veth", "peer", "name", f"pe{tag}").returncode:
            pytest.skip("no veth support in this kernel")
        assert h.ip("addr", "add", ADDRESS, "dev", dev).returncode == 0
        assert h.ip("link", "set", dev, "up").returncode == 0
        yield h
    finally:
        runner = NetnsRunner(ocirt.root, netns)
        for cid in ocirt.ids():      # inside the namespace: devices go back there, not here
            runner("delete", "--force", cid)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)


@pytest.fixture
def inside(ocirt, host) -> NetnsRunner:
    return NetnsRunner(ocirt.root, host.netns)


def _start(inside, bundle, cid, devices: dict) -> None:
    bundle.config["linux"]["netDevices"] = devices
    bundle.args("sleep", "100")
    inside.ok("run", "--detach", "--bundle", str(bundle.path), cid)


def test_device_is_moved_in_renamed_with_its_address_and_up(inside, bundle, cid, host):
    _start(inside, bundle, cid, {host.dev: {"name": "eth7"}})
    out = inside.ok("exec", cid, "ip", "-o", "addr", "show", "dev", "eth7").stdout.decode()
    assert f"inet {ADDRESS}" in out
    link = inside.ok("exec", cid, "ip", "-o", "link", "show", "dev", "eth7").stdout.decode()
    assert ",UP" in link


def test_device_is_gone_from_the_host_while_the_container_lives(inside, bundle, cid, host):
    _start(inside, bundle, cid, {host.dev: {"name": "eth7"}})
    assert host.ip("link", "show", "dev", host.dev).returncode != 0


def test_device_keeps_its_name_when_no_name_is_given(inside, bundle, cid, host):
    _start(inside, bundle, cid, {host.dev: {}})
    inside.ok("exec", cid, "ip", "link", "show", "dev", host.dev)


def test_delete_brings_the_device_back_under_its_own_name(inside, bundle, cid, host):
    _start(inside, bundle, cid, {host.dev: {"name": "eth7"}})
    inside.ok("delete", "--force", cid)
    out = host.ip("-o", "addr", "show", "dev", host.dev).stdout
    assert f"inet {ADDRESS}" in out
    assert ",UP" in host.ip("-o", "link", "show", "dev", host.dev).stdout


def test_device_destroyed_with_the_container_is_not_an_error(inside, bundle, cid, host):
    bundle.config["linux"]["netDevices"] = {host.dev: {"name": "eth7"}}
    bundle.sh("exit 0")
    inside.ok("run", "--bundle", str(bundle.path), cid)   # run deletes it when it exits
    assert inside.ids() == []
    # the namespace died with its last process: the kernel destroyed the veth pair
    assert host.ip("link", "show", "dev", host.dev).returncode != 0


def _refused(inside, bundle, cid, devices: dict) -> bytes:
    bundle.config["linux"]["netDevices"] = devices
    bundle.args("true")
    p = inside("create", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    assert inside.ids() == []
    return p.stderr


def test_missing_device_fails_create_and_leaves_the_others(inside, bundle, cid, host):
    err = _refused(inside, bundle, cid, {host.dev: {}, "nosuch0": {}})
    assert b"linux.netDevices.nosuch0: no network device 'nosuch0'" in err
    assert f"inet {ADDRESS}" in host.ip("-o", "addr", "show", "dev", host.dev).stdout


def test_name_clash_fails_create(inside, bundle, cid, host):
    peer = "pe" + host.dev[2:]
    err = _refused(inside, bundle, cid, {host.dev: {"name": "eth7"}, peer: {"name": "eth7"}})
    assert b"linux.netDevices." in err and b"already given" in err
    assert host.ip("link", "show", "dev", host.dev).returncode == 0


def test_joined_network_namespace_is_refused(inside, bundle, cid, host):
    for ns in bundle.config["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = f"/var/run/netns/{host.netns}"
    err = _refused(inside, bundle, cid, {host.dev: {}})
    assert b"linux.netDevices: needs a new network namespace" in err
    assert host.ip("link", "show", "dev", host.dev).returncode == 0


def test_failed_create_puts_the_device_back(inside, bundle, cid, host):
    bundle.config["linux"]["netDevices"] = {host.dev: {"name": "eth7"}}
    bundle.args("/no/such/program")
    p = inside("create", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1 and b"no/such/program" in p.stderr
    assert inside.ids() == []
    assert f"inet {ADDRESS}" in host.ip("-o", "addr", "show", "dev", host.dev).stdout


def test_features_report_net_devices(ocirt):
    import json
    assert json.loads(ocirt.ok("features").stdout)["linux"]["netDevices"] == {"enabled": True}
