"""--systemd-cgroup on a pure cgroup v2 host with systemd as PID 1: each container is a
transient scope started over D-Bus (Delegate=yes, its resources as unit properties and in the
delegated cgroup), which every later verb finds through the saved state, and which delete stops.
Checked from outside with `systemctl show` and cgroupfs reads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ocirt_testlib import Runner, read_cgroup_file, unique_id, wait_until

CGROOT = "/sys/fs/cgroup"

pytestmark = pytest.mark.skipif(not os.path.isdir("/run/systemd/system"),
                                reason="needs systemd as PID 1")


class SystemdRunner(Runner):
    """`ocirt --systemd-cgroup ...`: the flag belongs to create/run; later verbs must not need
    it (the state says which driver)."""

    def cmd(self, *args: str, global_args: tuple[str, ...] = ()) -> list[str]:
        if args and args[0] in ("create", "run"):
            global_args = ("--systemd-cgroup", *global_args)
        return super().cmd(*args, global_args=global_args)


@pytest.fixture
def sd(ocirt) -> SystemdRunner:
    # ocirt's state root: its fixture deletes whatever a test left.
    return SystemdRunner(ocirt.root, ocirt.binary)


def show(unit: str, *props: str) -> dict[str, str]:
    out = subprocess.run(["systemctl", "show", unit, *(f"-p{p}" for p in props)],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def own_cgroup(pid: int) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    raise AssertionError(f"no cgroup v2 entry for {pid}")


def start_sleeper(sd, bundle, cid: str, cgroups_path: str | None = None,
                  resources: dict | None = None) -> int:
    if cgroups_path is not None:
        bundle.config["linux"]["cgroupsPath"] = cgroups_path
    if resources is not None:
        bundle.config["linux"]["resources"] = resources
    bundle.args("sleep", "1000")
    sd.ok("run", "-d", "--bundle", str(bundle.path), cid)
    return sd.state(cid)["pid"]


def test_container_runs_in_a_delegated_scope_of_the_default_slice(sd, bundle, cid):
    pid = start_sleeper(sd, bundle, cid)
    unit = f"ocirt-{cid}.scope"
    p = show(unit, "ActiveState", "Delegate", "Slice", "ControlGroup", "DefaultDependencies",
             "MemoryAccounting", "TasksAccounting", "Description")
    assert p["ActiveState"] == "active" and p["Delegate"] == "yes"
    assert p["Slice"] == "system.slice" and p["DefaultDependencies"] == "no"
    assert p["MemoryAccounting"] == p["TasksAccounting"] == "yes"
    assert cid in p["Description"]
    assert p["ControlGroup"] == f"/system.slice/{unit}" == own_cgroup(pid)


def test_cgroups_path_slice_prefix_name_names_the_scope_and_its_slice(sd, bundle, cid):
    pid = start_sleeper(sd, bundle, cid, f"machine.slice:ocirt-test:{cid}")
    unit = f"ocirt-test-{cid}.scope"
    assert show(unit, "Slice")["Slice"] == "machine.slice"
    assert own_cgroup(pid) == f"/machine.slice/{unit}"


def test_containerd_style_path_expands_the_pod_slice(sd, bundle, cid):
    slice_ = "kubepods-besteffort-podocirttest.slice"
    pid = start_sleeper(sd, bundle, cid, f"{slice_}:cri-containerd:{cid}")
    assert own_cgroup(pid) == ("/kubepods.slice/kubepods-besteffort.slice/"
                               f"{slice_}/cri-containerd-{cid}.scope")
    sd.ok("delete", "--force", cid)
    subprocess.run(["systemctl", "stop", slice_, "kubepods-besteffort.slice",
                    "kubepods.slice"], capture_output=True)


def test_resources_are_unit_properties_and_cgroupfs_values(sd, bundle, cid):
    pid = start_sleeper(sd, bundle, cid, resources={
        "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20},
        "cpu": {"shares": 1024, "quota": 25000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 42},
    })
    p = show(f"ocirt-{cid}.scope", "MemoryMax", "MemoryLow", "MemorySwapMax", "CPUWeight",
             "CPUQuotaPerSecUSec", "CPUQuotaPeriodUSec", "AllowedCPUs", "AllowedMemoryNodes",
             "TasksMax")
    assert p == {"MemoryMax": str(64 << 20), "MemoryLow": str(32 << 20),
                 "MemorySwapMax": str(32 << 20), "CPUWeight": "39",
                 "CPUQuotaPerSecUSec": "250ms", "CPUQuotaPeriodUSec": "100ms",
                 "AllowedCPUs": "0", "AllowedMemoryNodes": "0", "TasksMax": "42"}
    d = CGROOT + own_cgroup(pid)
    assert read_cgroup_file(d, "memory.max") == str(64 << 20)
    assert read_cgroup_file(d, "memory.low") == str(32 << 20)
    assert read_cgroup_file(d, "memory.swap.max") == str(32 << 20)
    assert read_cgroup_file(d, "cpu.weight") == "39"
    assert read_cgroup_file(d, "cpu.max") == "25000 100000"
    assert read_cgroup_file(d, "cpuset.cpus") == "0"
    assert read_cgroup_file(d, "pids.max") == "42"


def test_fractional_cpu_quota_is_exact_in_the_kernel(sd, bundle, cid):
    """systemd keeps whole percents (rounded up here); cgroupfs gets the exact quota."""
    pid = start_sleeper(sd, bundle, cid, resources={"cpu": {"quota": 12345,
                                                            "period": 100000}})
    assert show(f"ocirt-{cid}.scope", "CPUQuotaPerSecUSec")["CPUQuotaPerSecUSec"] == "130ms"
    assert read_cgroup_file(CGROOT + own_cgroup(pid), "cpu.max") == "12345 100000"


def test_unified_memory_keys_are_unit_properties(sd, bundle, cid):
    pid = start_sleeper(sd, bundle, cid, resources={
        "unified": {"memory.high": str(48 << 20), "memory.min": str(8 << 20)}})
    p = show(f"ocirt-{cid}.scope", "MemoryHigh", "MemoryMin")
    assert p == {"MemoryHigh": str(48 << 20), "MemoryMin": str(8 << 20)}
    assert read_cgroup_file(CGROOT + own_cgroup(pid), "memory.high") == str(48 << 20)


def test_device_filter_holds_in_the_scope_across_a_daemon_reload(sd, bundle, cid):
    """ocirt's own BPF device filter guards the delegated cgroup; systemd adds none (the unit
    has no DeviceAllow=) and leaves it attached when it re-applies the unit."""
    for kind in ("bounding", "effective", "permitted"):
        bundle.process["capabilities"][kind].append("CAP_MKNOD")
    start_sleeper(sd, bundle, cid)
    assert show(f"ocirt-{cid}.scope", "DevicePolicy")["DevicePolicy"] == "auto"
    subprocess.run(["systemctl", "daemon-reload"], check=True)
    # In the container's /dev (a tmpfs): a node left in /tmp would stay in the shared rootfs.
    p = sd("exec", cid, "sh", "-c", "mknod /dev/sda b 8 0 && head -c1 /dev/sda")
    assert p.returncode != 0 and b"Operation not permitted" in p.stderr + p.stdout
    assert sd("exec", cid, "sh", "-c", "echo x > /dev/null").returncode == 0


def test_update_changes_unit_properties_and_cgroupfs(sd, bundle, cid):
    pid = start_sleeper(sd, bundle, cid, resources={"memory": {"limit": 64 << 20},
                                                    "pids": {"limit": 42}})
    sd.ok("update", "--memory", str(80 << 20), "--pids-limit", "50", "--cpu-quota", "50000",
          "--cpu-period", "100000", cid)
    p = show(f"ocirt-{cid}.scope", "MemoryMax", "TasksMax", "CPUQuotaPerSecUSec")
    assert p == {"MemoryMax": str(80 << 20), "TasksMax": "50", "CPUQuotaPerSecUSec": "500ms"}
    d = CGROOT + own_cgroup(pid)
    assert read_cgroup_file(d, "memory.max") == str(80 << 20)
    assert read_cgroup_file(d, "pids.max") == "50"
    assert read_cgroup_file(d, "cpu.max") == "50000 100000"


def test_delete_stops_the_unit_and_removes_its_cgroup(sd, bundle, cid):
    pid = start_sleeper(sd, bundle, cid)
    d = CGROOT + own_cgroup(pid)
    sd.ok("delete", "--force", cid)
    assert show(f"ocirt-{cid}.scope", "ActiveState")["ActiveState"] == "inactive"
    assert not os.path.exists(d)


def test_run_in_the_foreground_leaves_no_unit(sd, bundle, cid):
    bundle.args("true")
    sd.ok("run", "--bundle", str(bundle.path), cid)
    assert cid not in sd.ids()
    assert show(f"ocirt-{cid}.scope", "ActiveState")["ActiveState"] == "inactive"
    assert not os.path.exists(f"{CGROOT}/system.slice/ocirt-{cid}.scope")


def test_pause_ps_events_and_resume_use_the_scope(sd, bundle, cid):
    pid = start_sleeper(sd, bundle, cid, resources={"memory": {"limit": 64 << 20}})
    d = CGROOT + own_cgroup(pid)
    assert json.loads(sd.ok("ps", "--format", "json", cid).stdout) == [pid]
    sd.ok("pause", cid)
    assert read_cgroup_file(d, "cgroup.freeze") == "1"
    assert sd.state(cid)["status"] == "paused"
    sd.ok("resume", cid)
    assert read_cgroup_file(d, "cgroup.freeze") == "0"
    stats = json.loads(sd.ok("events", "--stats", cid).stdout)
    assert stats["data"]["memory"]["usage"]["limit"] == 64 << 20
    assert stats["data"]["pids"]["current"] >= 1


def test_exec_cgroup_joins_a_sub_cgroup_of_the_scope(sd, bundle, cid):
    pid = start_sleeper(sd, bundle, cid)
    d = CGROOT + own_cgroup(pid)
    os.mkdir(f"{d}/sub")
    p = sd.ok("exec", "--cgroup", "sub", cid, "cat", "/proc/self/cgroup")
    assert p.stdout.decode() == "0::/sub\n"        # seen through its cgroup namespace
    sd.ok("delete", "--force", cid)
    assert not os.path.exists(d)


def test_kill_all_leaves_the_unit_to_be_removed_by_delete(sd, bundle, cid):
    start_sleeper(sd, bundle, cid)
    sd.ok("kill", cid, "KILL")
    wait_until(lambda: sd.state(cid)["status"] == "stopped", "the container to stop")
    sd.ok("delete", cid)
    assert show(f"ocirt-{cid}.scope", "ActiveState")["ActiveState"] == "inactive"


def test_unit_in_use_is_a_clear_error_and_leaves_nothing(sd, bundle, cid):
    path = f"machine.slice:ocirt-test:{cid}"
    pid = start_sleeper(sd, bundle, cid, path)
    other = unique_id()
    p = sd("run", "-d", "--bundle", str(bundle.path), other)
    err = p.stderr.decode().strip()
    assert p.returncode == 1, err
    assert f"systemd unit ocirt-test-{cid}.scope already exists" in err and "\n" not in err
    assert other not in sd.ids()
    assert sd.state(cid)["status"] == "running" and own_cgroup(pid).endswith(f"{cid}.scope")


def test_limit_the_kernel_refuses_stops_the_started_unit(sd, bundle, cid):
    """systemd takes AllowedCPUs it cannot apply; the cgroupfs write fails, and the failed
    create removes its unit, its cgroup and its state."""
    bundle.config["linux"]["resources"] = {"cpu": {"cpus": str(os.cpu_count() + 8)}}
    bundle.args("sleep", "1000")
    p = sd("run", "-d", "--bundle", str(bundle.path), cid)
    err = p.stderr.decode().strip()
    assert p.returncode == 1 and "cpuset.cpus" in err and "\n" not in err, err
    assert cid not in sd.ids()
    assert show(f"ocirt-{cid}.scope", "ActiveState")["ActiveState"] == "inactive"
    assert not os.path.exists(f"{CGROOT}/system.slice/ocirt-{cid}.scope")


@pytest.mark.parametrize("path", ["system.slice:only-two", "/absolute/path",
                                  "bad--name.slice:p:n"])
def test_invalid_cgroups_path_is_a_one_line_error(sd, bundle, cid, path):
    bundle.config["linux"]["cgroupsPath"] = path
    bundle.write()
    p = sd("create", "--bundle", str(bundle.path), cid)
    err = p.stderr.decode().strip()
    assert p.returncode == 1 and "linux.cgroupsPath" in err and "\n" not in err, err
    assert cid not in sd.ids()


def test_slice_name_makes_a_slice_unit(sd, bundle, cid):
    name = f"ocirttest-{cid.replace('-', '')}.slice"
    pid = start_sleeper(sd, bundle, cid, f"ocirttest.slice:ignored:{name}")
    assert own_cgroup(pid) == f"/ocirttest.slice/{name}"
    assert show(name, "ActiveState")["ActiveState"] == "active"
    sd.ok("delete", "--force", cid)
    assert show(name, "ActiveState")["ActiveState"] == "inactive"
    assert not os.path.exists(f"{CGROOT}/ocirttest.slice/{name}")
    subprocess.run(["systemctl", "stop", "ocirttest.slice"], capture_output=True)


@pytest.fixture
def runc_sd(runc) -> SystemdRunner:
    return SystemdRunner(runc.root, runc.binary)


def test_same_unit_properties_as_runc(sd, runc_sd, bundle, template, tmp_path, cid):
    resources = {"memory": {"limit": 64 << 20, "reservation": 16 << 20},
                 "cpu": {"shares": 512, "quota": 30000, "period": 50000, "cpus": "0"},
                 "pids": {"limit": 33}}
    props = ("Delegate", "Slice", "MemoryMax", "MemoryLow", "CPUWeight",
             "CPUQuotaPerSecUSec", "CPUQuotaPeriodUSec", "AllowedCPUs", "TasksMax",
             "DefaultDependencies", "CPUAccounting", "IOAccounting")
    start_sleeper(sd, bundle, cid, f"machine.slice:ocirt-cmp:{cid}", resources)
    ours = show(f"ocirt-cmp-{cid}.scope", *props)
    rb = tmp_path / "runc-bundle"
    shutil.copytree(bundle.path, rb)
    rid = unique_id()
    cfg = json.loads((rb / "config.json").read_text())
    cfg["linux"]["cgroupsPath"] = f"machine.slice:runc-cmp:{rid}"
    (rb / "config.json").write_text(json.dumps(cfg))
    runc_sd.ok("run", "-d", "--bundle", str(rb), rid)
    theirs = show(f"runc-cmp-{rid}.scope", *props)
    assert ours == theirs


def test_systemd_property_annotations_become_unit_properties(sd, bundle, cid):
    bundle.config["annotations"] = {"org.systemd.property.TimeoutStopSec": "uint64 17",
                                    "org.systemd.property.CollectMode": "'inactive-or-failed'"}
    start_sleeper(sd, bundle, cid)
    p = show(f"ocirt-{cid}.scope", "TimeoutStopUSec", "CollectMode")
    assert p == {"TimeoutStopUSec": "17s", "CollectMode": "inactive-or-failed"}


def test_unknown_systemd_property_is_a_clear_error_and_leaves_nothing(sd, bundle, cid):
    bundle.config["annotations"] = {"org.systemd.property.NoSuchProperty": "true"}
    bundle.args("sleep", "1000")
    p = sd("run", "-d", "--bundle", str(bundle.path), cid)
    err = p.stderr.decode().strip()
    assert p.returncode == 1 and f"ocirt-{cid}.scope" in err and "NoSuchProperty" in err, err
    assert "\n" not in err and cid not in sd.ids()
    assert show(f"ocirt-{cid}.scope", "ActiveState")["ActiveState"] == "inactive"
