"""The systemd driver's unit names and properties (runc's rules), and its D-Bus client against a
real dbus-daemon (a private session bus): the handshake, and StartTransientUnit's properties
marshalled so that the daemon accepts the message."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pytest

from ocirt.cgroups.systemd import units
from ocirt.errors import CgroupError, ConfigError


@pytest.mark.parametrize("slice_,path", [
    ("system.slice", "/system.slice"),
    ("a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice"),
    ("kubepods-besteffort-pod1.slice",
     "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice"),
    ("-.slice", "/"),
])
def test_slice_names_expand_to_their_cgroup_path(slice_, path):
    assert units.expand_slice(slice_) == path


@pytest.mark.parametrize("bad", ["a--b.slice", "-a.slice", "a-.slice", ".slice", "a/b.slice",
                                 "a.scope"])
def test_invalid_slice_names_are_refused(bad):
    with pytest.raises(ValueError):
        units.expand_slice(bad)


def test_cgroups_path_names_a_scope_in_a_slice():
    u = units.parse("c1", "kubepods-pod1.slice:cri-containerd:abc")
    assert (u.name, u.slice) == ("cri-containerd-abc.scope", "kubepods-pod1.slice")
    assert u.cgroup == "/kubepods.slice/kubepods-pod1.slice/cri-containerd-abc.scope"


def test_empty_cgroups_path_gets_ocirts_default_unit():
    assert units.parse("c1", None).cgroup == "/system.slice/ocirt-c1.scope"
    assert units.parse("c1", "", user=True).cgroup == "/user.slice/ocirt-c1.scope"


def test_empty_slice_gets_the_default_slice():
    assert units.parse("c1", ":p:n").cgroup == "/system.slice/p-n.scope"


def test_a_name_ending_in_slice_is_a_slice_unit_placed_by_its_name():
    u = units.parse("c1", "system.slice:x:system-ctr.slice")
    assert u.is_slice and u.name == "system-ctr.slice"
    assert u.cgroup == "/system.slice/system-ctr.slice"


@pytest.mark.parametrize("bad,why", [
    ("/a/b", "slice:prefix:name"),
    ("a:b", "slice:prefix:name"),
    ("a:b:c:d", "slice:prefix:name"),
    ("bad--x.slice:p:n", "invalid slice name"),
    ("system.slice:p:", "empty unit name"),
    ("system.slice:p:a b", "not a valid systemd unit name"),
])
def test_invalid_cgroups_paths_are_config_errors_naming_the_field(bad, why):
    with pytest.raises(ConfigError, match=why) as e:
        units.parse("c1", bad)
    assert e.value.path == "linux.cgroupsPath" and "\n" not in str(e.value)


def test_cpu_and_node_lists_become_little_endian_bitmasks():
    assert units.list_to_mask("0") == b"\x01"
    assert units.list_to_mask("0-2,9") == b"\x07\x02"
    assert units.list_to_mask("") == b""


def test_resources_become_systemd_properties_as_in_runc():
    res = {"memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20},
           "cpu": {"shares": 1024, "quota": 25000, "period": 100000, "cpus": "0", "mems": "0"},
           "pids": {"limit": 42}, "blockIO": {"weight": 500}}
    props = dict(units.resource_properties(res, 252))
    assert props == {
        "MemoryMax": ("t", 64 << 20), "MemoryLow": ("t", 32 << 20),
        "MemorySwapMax": ("t", 32 << 20), "CPUWeight": ("t", 39),
        "CPUQuotaPeriodUSec": ("t", 100000), "CPUQuotaPerSecUSec": ("t", 250000),
        "AllowedCPUs": ("ay", b"\x01"), "AllowedMemoryNodes": ("ay", b"\x01"),
        "TasksMax": ("t", 42), "IOWeight": ("t", 4950),
    }


def test_unlimited_values_are_systemds_infinity():
    props = dict(units.resource_properties(
        {"memory": {"limit": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}}, 252))
    assert props["MemoryMax"] == props["TasksMax"] == props["CPUQuotaPerSecUSec"] \
        == ("t", units.U64_MAX)
    assert props["MemorySwapMax"] == ("t", units.U64_MAX)


def test_fractional_cpu_quota_rounds_up_to_whole_percent():
    props = dict(units.resource_properties({"cpu": {"quota": 12345, "period": 100000}},
                                           252))
    assert props["CPUQuotaPerSecUSec"] == ("t", 130000)


def test_unified_keys_systemd_knows_become_properties():
    props = dict(units.resource_properties(
        {"unified": {"memory.high": "1048576", "memory.min": "4096", "pids.max": "max",
                     "cpu.max": "50000 100000", "io.max": "ignored"}}, 252))
    assert props == {"MemoryHigh": ("t", 1048576), "MemoryMin": ("t", 4096),
                     "TasksMax": ("t", units.U64_MAX), "CPUQuotaPeriodUSec": ("t", 100000),
                     "CPUQuotaPerSecUSec": ("t", 500000)}


def test_start_properties_delegate_a_scope_holding_the_init():
    u = units.parse("c1", None)
    props = dict(units.start_properties(u, "c1", 1234, {}, 252))
    assert props["Slice"] == ("s", "system.slice") and props["Delegate"] == ("b", True)
    assert props["PIDs"] == ("au", [1234]) and props["DefaultDependencies"] == ("b", False)
    assert all(props[k] == ("b", True) for k in ("MemoryAccounting", "CPUAccounting",
                                                  "IOAccounting", "TasksAccounting"))


@pytest.fixture
def session_bus(tmp_path, monkeypatch):
    """A private dbus-daemon: a real bus, with no systemd behind it."""
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        pytest.skip("dbus-daemon is not installed (Debian's dbus-daemon)")
    sock = tmp_path / "bus"
    p = subprocess.Popen([daemon, "--session", "--nofork", "--nopidfile",
                          f"--address=unix:path={sock}", "--print-address"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        p.stdout.readline()                 # printed once it listens
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={sock}")
        yield sock
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait()


def test_client_authenticates_by_socket_credentials(session_bus):
    from ocirt.cgroups.systemd import bus
    with bus.Manager(user=True) as m:
        assert m.conn.unique_name.startswith(":")


def test_start_transient_unit_message_is_accepted_by_a_real_bus(session_bus):
    """No systemd listens here: the bus answers with an error about the missing service, which
    it can only do once it has parsed the whole message."""
    from ocirt.cgroups.systemd import bus
    u = units.parse("c1", None)
    res = {"memory": {"limit": 1 << 20}, "cpu": {"cpus": "0-1"}, "pids": {"limit": 5}}
    props = units.start_properties(u, "c1", os.getpid(), res, 252)
    with bus.Manager(user=True) as m:
        with pytest.raises(bus.BusError) as e:
            m.call("StartTransientUnit", "ssa(sv)a(sa(sv))", u.name, "replace", props, [])
    assert e.value.name.startswith("org.freedesktop.DBus.Error.")
    assert "InvalidArgs" not in e.value.name


def test_unreachable_bus_is_a_one_line_error(tmp_path, monkeypatch):
    from ocirt.cgroups.systemd import bus
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path}/none")
    with pytest.raises(CgroupError, match="cannot connect to systemd over the user's bus"):
        bus.Manager(user=True)


HYBRID_MOUNTINFO = """\
30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
"""


def test_driver_refuses_a_host_that_is_not_pure_cgroup_v2(monkeypatch):
    from ocirt.cgroups import detect
    from ocirt.cgroups.systemd import driver
    monkeypatch.setattr(detect, "_host", detect.parse_mountinfo(HYBRID_MOUNTINFO))
    with pytest.raises(CgroupError, match="needs a pure cgroup v2 host .this one is hybrid."):
        driver.for_container("c1", None)


def test_driver_state_names_the_unit_for_every_later_verb(monkeypatch):
    from ocirt.cgroups import detect, manager
    from ocirt.cgroups.systemd import driver
    monkeypatch.setattr(detect, "_host", detect.parse_mountinfo(
        "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"))
    m = driver.for_container("c1", "machine.slice:p:c1")
    assert m.paths == {"": "/sys/fs/cgroup/machine.slice/p-c1.scope"}
    again = manager.from_state(m.to_state())
    assert isinstance(again, driver.SystemdManager)
    assert (again.unit, again.slice, again.user, again.started) == \
        ("p-c1.scope", "machine.slice", False, False)


@pytest.mark.parametrize("text,parsed", [
    ("true", ("b", True)), ("uint64 5", ("t", 5)), ("7", ("i", 7)), ("1.5", ("d", 1.5)),
    ("'inactive-or-failed'", ("s", "inactive-or-failed")), ('"a\\"b"', ("s", 'a"b')),
    ("[uint32 1, 2]", ("au", [1, 2])), ("['a', 'b']", ("as", ["a", "b"])),
])
def test_annotation_values_parse_as_gvariant_text(text, parsed):
    from ocirt.cgroups.systemd import annotations
    assert annotations.parse(text) == parsed


def test_annotation_sec_properties_become_usec():
    from ocirt.cgroups.systemd import annotations
    props = annotations.properties({"org.systemd.property.TimeoutStopSec": "uint64 30",
                                    "org.systemd.property.RuntimeMaxSec": "1.5",
                                    "org.systemd.property.CollectMode": "'inactive-or-failed'",
                                    "other": "x"})
    assert props == [("CollectMode", ("s", "inactive-or-failed")),
                     ("RuntimeMaxUSec", ("t", 1_500_000)),
                     ("TimeoutStopUSec", ("t", 30_000_000))]


@pytest.mark.parametrize("key,value,why", [
    ("org.systemd.property.bad_name", "1", "not a systemd property name"),
    ("org.systemd.property.CollectMode", "'unterminated", "cannot parse"),
    ("org.systemd.property.TimeoutStopSec", "'ten'", "needs a number of seconds"),
    ("org.systemd.property.X", "uint32 -1", "cannot be negative"),
])
def test_bad_annotations_are_config_errors_naming_the_annotation(key, value, why):
    from ocirt.cgroups.systemd import annotations
    with pytest.raises(ConfigError, match=why) as e:
        annotations.properties({key: value})
    assert e.value.path == f"annotations[{key!r}]"
