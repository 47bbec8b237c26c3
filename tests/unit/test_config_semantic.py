"""Semantic rules (after the schema passed): each rejects with the expected path and reason."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import pytest

from ocirt.cgroups.controllers.unified import key_problem
from ocirt.config import semantic
from ocirt.config.semantic import config_warnings, parse_id_list, sysctl_path
from ocirt.config.validate import validate_config
from ocirt.errors import ConfigError

GOOD = Path(__file__).parent / "fixtures" / "config" / "good"


def load(name: str) -> dict[str, Any]:
    return json.loads((GOOD / f"{name}.json").read_text())


def error_of(mut: Callable[[dict[str, Any]], object], base: str = "default") -> str:
    d = load(base)
    mut(d)
    with pytest.raises(ConfigError) as ei:
        validate_config(d)
    return str(ei.value)


def passes(mut: Callable[[dict[str, Any]], object], base: str = "default") -> None:
    d = load(base)
    mut(d)
    validate_config(d)


def set_ns(d: dict[str, Any], *entries: dict[str, str]) -> None:
    d["linux"]["namespaces"] = list(entries)


# -- mounts -------------------------------------------------------------------------------

def test_relative_mount_destination_is_accepted_as_relative_to_root() -> None:
    passes(lambda d: d["mounts"].append({"destination": "data", "type": "tmpfs", "source": "tmpfs"}))


def test_empty_mount_destination_rejected() -> None:
    msg = error_of(lambda d: d["mounts"][0].__setitem__("destination", ""))
    assert msg == "config.json: mounts[0].destination: must not be empty"


def test_mount_option_with_nul_rejected() -> None:
    msg = error_of(lambda d: d["mounts"][1]["options"].append("mode=1\x00"))
    assert msg == "config.json: mounts[1].options[4]: contains a NUL byte"


def test_mount_uid_mappings_without_gid_mappings_rejected() -> None:
    msg = error_of(lambda d: d["mounts"][-1].pop("gidMappings"), "full")
    assert msg == ("config.json: mounts[7].gidMappings: is required when uidMappings is set "
                   "(id-mapped mount)")


def test_mount_mapping_of_size_zero_rejected() -> None:
    msg = error_of(lambda d: d["mounts"][-1]["uidMappings"][0].__setitem__("size", 0), "full")
    assert msg == "config.json: mounts[7].uidMappings[0].size: must be at least 1"


# -- process ------------------------------------------------------------------------------

def test_relative_cwd_rejected() -> None:
    msg = error_of(lambda d: d["process"].__setitem__("cwd", "home"))
    assert msg == "config.json: process.cwd: 'home' is not an absolute path"


def test_process_may_be_absent_at_create() -> None:
    passes(lambda d: d.pop("process"))


def test_empty_program_name_rejected() -> None:
    msg = error_of(lambda d: d["process"].__setitem__("args", [""]))
    assert msg == "config.json: process.args[0]: must not be empty: it names the program to run"


def test_env_entry_without_equals_rejected() -> None:
    msg = error_of(lambda d: d["process"]["env"].append("FOO"))
    assert msg == "config.json: process.env[2]: 'FOO' is not of the form NAME=value"


def test_env_entry_with_empty_name_rejected() -> None:
    msg = error_of(lambda d: d["process"]["env"].append("=x"))
    assert msg == "config.json: process.env[2]: '=x' has an empty variable name"


def test_unknown_rlimit_type_rejected() -> None:
    msg = error_of(lambda d: d["process"]["rlimits"].append({"type": "RLIMIT_FOO", "soft": 1, "hard": 1}))
    assert msg == "config.json: process.rlimits[1].type: unknown rlimit type 'RLIMIT_FOO'"


def test_duplicate_rlimit_type_rejected() -> None:
    msg = error_of(lambda d: d["process"]["rlimits"].append({"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}))
    assert msg == ("config.json: process.rlimits[1].type: duplicate rlimit type 'RLIMIT_NOFILE' "
                   "(first at process.rlimits[0])")


def test_rlimit_soft_above_hard_rejected() -> None:
    msg = error_of(lambda d: d["process"]["rlimits"][0].__setitem__("soft", 2048))
    assert msg == "config.json: process.rlimits[0]: soft limit 2048 is greater than hard limit 1024"


@pytest.mark.parametrize("name", sorted(semantic.RLIMITS))
def test_every_known_rlimit_accepted(name: str) -> None:
    passes(lambda d: d["process"].__setitem__("rlimits", [{"type": name, "soft": 1, "hard": 2}]))


def test_unknown_capability_is_a_warning_not_an_error() -> None:
    d = load("default")
    d["process"]["capabilities"]["bounding"].append("CAP_FROM_THE_FUTURE")
    validate_config(d)
    assert config_warnings(d) == [
        "process.capabilities.bounding[3]: unknown capability 'CAP_FROM_THE_FUTURE' ignored"]


def test_known_capabilities_give_no_warning() -> None:
    d = load("default")
    d["process"]["capabilities"]["bounding"] = list(semantic.CAPABILITIES)
    assert config_warnings(d) == []
    assert semantic.CAPABILITIES[40] == "CAP_CHECKPOINT_RESTORE"


def test_scheduler_nice_out_of_range_for_sched_other() -> None:
    msg = error_of(lambda d: d["process"].__setitem__("scheduler", {"policy": "SCHED_OTHER", "nice": 20}))
    assert msg == "config.json: process.scheduler.nice: 20 is outside -20..19 for SCHED_OTHER"


def test_scheduler_priority_only_for_realtime_policies() -> None:
    msg = error_of(lambda d: d["process"].__setitem__("scheduler", {"policy": "SCHED_BATCH", "priority": 5}))
    assert msg == "config.json: process.scheduler.priority: can only be set for SCHED_FIFO or SCHED_RR"


def test_scheduler_realtime_policy_needs_priority() -> None:
    msg = error_of(lambda d: d["process"].__setitem__("scheduler", {"policy": "SCHED_RR"}))
    assert msg == "config.json: process.scheduler.priority: SCHED_RR needs a priority in 1..99"


def test_scheduler_deadline_fields_only_for_sched_deadline() -> None:
    msg = error_of(lambda d: d["process"].__setitem__("scheduler", {"policy": "SCHED_OTHER", "runtime": 10}))
    assert msg == "config.json: process.scheduler.runtime: can only be set for SCHED_DEADLINE"


def test_exec_cpu_affinity_inverted_range_rejected() -> None:
    msg = error_of(lambda d: d["process"]["execCPUAffinity"].__setitem__("initial", "3-1"), "full")
    assert msg == "config.json: process.execCPUAffinity.initial: '3-1' is not a CPU list such as '0-3,7'"


# -- hooks, annotations, root -----------------------------------------------------------

def test_relative_hook_path_rejected() -> None:
    msg = error_of(lambda d: d["hooks"]["startContainer"][0].__setitem__("path", "hook"), "full")
    assert msg == "config.json: hooks.startContainer[0].path: 'hook' is not an absolute path"


def test_empty_annotation_key_rejected() -> None:
    msg = error_of(lambda d: d.__setitem__("annotations", {"": "x"}))
    assert msg == "config.json: annotations: keys must not be empty"


def test_empty_root_path_rejected() -> None:
    assert error_of(lambda d: d["root"].__setitem__("path", "")) == "config.json: root.path: must not be empty"


# -- namespaces and id mappings ---------------------------------------------------------------

def test_duplicate_namespace_type_rejected() -> None:
    msg = error_of(lambda d: d["linux"]["namespaces"].append({"type": "pid"}))
    assert msg == ("config.json: linux.namespaces[6].type: duplicate namespace type 'pid' "
                   "(first at linux.namespaces[0])")


def test_relative_namespace_path_rejected() -> None:
    msg = error_of(lambda d: d["linux"]["namespaces"][1].__setitem__("path", "proc/1/ns/net"))
    assert msg == "config.json: linux.namespaces[1].path: 'proc/1/ns/net' is not an absolute path"


def test_new_user_namespace_needs_uid_mappings() -> None:
    msg = error_of(lambda d: d["linux"]["namespaces"].append({"type": "user"}))
    assert msg == "config.json: linux.uidMappings: is required (non-empty) with a new user namespace"


def test_new_user_namespace_needs_gid_mappings() -> None:
    msg = error_of(lambda d: d["linux"].pop("gidMappings"), "full")
    assert msg == "config.json: linux.gidMappings: is required (non-empty) with a new user namespace"


def test_joined_user_namespace_needs_no_mappings() -> None:
    passes(lambda d: d["linux"]["namespaces"].append({"type": "user", "path": "/proc/1/ns/user"}))


def test_mappings_without_user_namespace_rejected() -> None:
    msg = error_of(lambda d: d["linux"].__setitem__("uidMappings", [{"containerID": 0, "hostID": 1000, "size": 1}]))
    assert msg == "config.json: linux.uidMappings: is set but there is no user namespace in linux.namespaces"


def test_mapping_overflowing_id_space_rejected() -> None:
    msg = error_of(lambda d: d["linux"]["uidMappings"][0].__setitem__("hostID", 4294967295), "full")
    assert msg == "config.json: linux.uidMappings[0]: hostID + size exceeds the 32-bit id space"


def test_time_offsets_need_time_namespace() -> None:
    msg = error_of(lambda d: d["linux"]["namespaces"].pop(), "full")
    assert msg == "config.json: linux.timeOffsets: needs a new time namespace in linux.namespaces"


def test_time_offsets_refused_with_joined_time_namespace() -> None:
    msg = error_of(lambda d: d["linux"]["namespaces"][-1].__setitem__("path", "/proc/1/ns/time"), "full")
    assert msg == "config.json: linux.timeOffsets: cannot be set when joining a time namespace by path"


def test_time_offsets_nanosecs_below_one_second() -> None:
    msg = error_of(lambda d: d["linux"]["timeOffsets"]["monotonic"].__setitem__("nanosecs", 10**9), "full")
    assert msg == "config.json: linux.timeOffsets.monotonic.nanosecs: must be less than 1000000000"


def test_hostname_needs_uts_namespace() -> None:
    msg = error_of(lambda d: set_ns(d, {"type": "mount"}, {"type": "pid"}))
    assert msg == "config.json: hostname: needs a uts namespace in linux.namespaces"


def test_domainname_needs_uts_namespace() -> None:
    def mut(d: dict[str, Any]) -> None:
        d.pop("hostname")
        d["domainname"] = "example.org"
        set_ns(d, {"type": "mount"})
    assert error_of(mut) == "config.json: domainname: needs a uts namespace in linux.namespaces"


def test_hostname_with_joined_uts_namespace_is_allowed() -> None:
    # Pod containers join the sandbox's uts namespace by path and still set the hostname.
    passes(lambda d: d["linux"]["namespaces"][3].__setitem__("path", "/proc/1/ns/uts"))


def test_masked_paths_must_be_absolute() -> None:
    msg = error_of(lambda d: d["linux"]["maskedPaths"].append("proc/kcore"))
    assert msg == "config.json: linux.maskedPaths[10]: 'proc/kcore' is not an absolute path"


def test_readonly_paths_need_a_mount_namespace() -> None:
    def mut(d: dict[str, Any]) -> None:
        d["linux"]["maskedPaths"] = []
        d["linux"]["namespaces"] = [n for n in d["linux"]["namespaces"] if n["type"] != "mount"]
    assert error_of(mut) == "config.json: linux.readonlyPaths: needs a mount namespace in linux.namespaces"


def _no_mount_ns(d: dict[str, Any]) -> None:
    d["linux"]["maskedPaths"] = []
    d["linux"]["readonlyPaths"] = []
    d["linux"]["namespaces"] = [n for n in d["linux"]["namespaces"] if n["type"] != "mount"]


def test_readonly_root_needs_a_mount_namespace() -> None:
    def mut(d: dict[str, Any]) -> None:
        _no_mount_ns(d)
        d["root"]["readonly"] = True
    assert error_of(mut) == "config.json: root.readonly: needs a mount namespace in linux.namespaces"


def test_rootfs_propagation_needs_a_mount_namespace() -> None:
    def mut(d: dict[str, Any]) -> None:
        _no_mount_ns(d)
        d["root"]["readonly"] = False
        d["linux"]["rootfsPropagation"] = "private"
    assert error_of(mut) == ("config.json: linux.rootfsPropagation: needs a mount namespace in "
                             "linux.namespaces")


def test_no_mount_namespace_is_valid_otherwise() -> None:
    def mut(d: dict[str, Any]) -> None:
        _no_mount_ns(d)
        d["root"]["readonly"] = False
    passes(mut)


# -- sysctl -------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["kernel.msgmax", "kernel.sem", "kernel.shm_rmid_forced", "fs.mqueue.msg_max",
                                 "kernel/shmmax"])
def test_ipc_sysctls_allowed_with_ipc_namespace(key: str) -> None:
    passes(lambda d: d["linux"].__setitem__("sysctl", {key: "1"}))


def test_ipc_sysctl_rejected_in_host_ipc_namespace() -> None:
    def mut(d: dict[str, Any]) -> None:
        d["linux"]["sysctl"] = {"kernel.shmmax": "1"}
        d["linux"]["namespaces"] = [n for n in d["linux"]["namespaces"] if n["type"] != "ipc"]
    msg = error_of(mut)
    assert msg == ('config.json: linux.sysctl["kernel.shmmax"]: sysctl \'kernel.shmmax\' is not allowed '
                   "in the host's ipc namespace")


def test_net_sysctl_allowed_with_new_network_namespace() -> None:
    passes(lambda d: d["linux"].__setitem__("sysctl", {"net.ipv4.ip_forward": "1",
                                                       "net/ipv4/conf/eth0.100/rp_filter": "0"}))


def test_net_sysctl_rejected_in_host_network_namespace() -> None:
    def mut(d: dict[str, Any]) -> None:
        d["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
        d["linux"]["namespaces"] = [n for n in d["linux"]["namespaces"] if n["type"] != "network"]
    assert "not allowed in the host's network namespace" in error_of(mut)


def test_net_sysctl_rejected_when_joining_the_host_network_namespace_by_path() -> None:
    def mut(d: dict[str, Any]) -> None:
        d["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
        d["linux"]["namespaces"][1]["path"] = "/proc/self/ns/net"
    assert "not allowed in the host's network namespace" in error_of(mut)


def test_net_sysctl_with_missing_network_namespace_path_names_the_path() -> None:
    def mut(d: dict[str, Any]) -> None:
        d["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
        d["linux"]["namespaces"][1]["path"] = "/nonexistent/netns"
    assert error_of(mut).startswith("config.json: linux.namespaces[1].path: cannot check network namespace")


def test_kernel_domainname_sysctl_needs_uts_namespace() -> None:
    passes(lambda d: d["linux"].__setitem__("sysctl", {"kernel.domainname": "x"}))

    def mut(d: dict[str, Any]) -> None:
        d.pop("hostname")
        d["linux"]["sysctl"] = {"kernel.domainname": "x"}
        d["linux"]["namespaces"] = [n for n in d["linux"]["namespaces"] if n["type"] != "uts"]
    assert "not allowed in the host's uts namespace" in error_of(mut)


def test_kernel_hostname_sysctl_points_to_hostname_field() -> None:
    msg = error_of(lambda d: d["linux"].__setitem__("sysctl", {"kernel.hostname": "x"}))
    assert msg == ('config.json: linux.sysctl["kernel.hostname"]: sysctl \'kernel.hostname\' is not allowed: '
                   "set the 'hostname' field instead")


def test_user_sysctl_needs_user_namespace() -> None:
    msg = error_of(lambda d: d["linux"].__setitem__("sysctl", {"user.max_user_namespaces": "0"}))
    assert msg.endswith("sysctl 'user.max_user_namespaces' is not allowed without a user namespace")
    passes(lambda d: d["linux"]["sysctl"].__setitem__("user.max_user_namespaces", "0"), "full")


@pytest.mark.parametrize("key", ["kernel.core_pattern", "vm.overcommit_memory", "fs.file-max", "kernel.modprobe"])
def test_non_namespaced_sysctl_rejected_naming_the_key(key: str) -> None:
    msg = error_of(lambda d: d["linux"].__setitem__("sysctl", {key: "1"}))
    assert msg.endswith(f"sysctl {key!r} is not in a separate kernel namespace")


@pytest.mark.parametrize("key", ["net/ipv4/../../kernel/core_pattern", "net.ipv4.//.//.kernel.core_pattern",
                                 "net..ipv4", "net.", "/net/ipv4", "net/./ipv4"])
def test_sysctl_path_traversal_rejected(key: str) -> None:
    msg = error_of(lambda d: d["linux"].__setitem__("sysctl", {key: "1"}))
    assert "has an empty, '.' or '..' component" in msg


def test_sysctl_path_maps_both_notations() -> None:
    assert sysctl_path("net.ipv4.ip_forward") == "net/ipv4/ip_forward"
    assert sysctl_path("net/ipv4/conf/eth0.100/rp_filter") == "net/ipv4/conf/eth0.100/rp_filter"
    assert sysctl_path("net.ipv4.conf.eth0/100.rp_filter") == "net/ipv4/conf/eth0.100/rp_filter"


# -- devices, netDevices, cgroups -------------------------------------------------------------

def test_device_path_must_be_absolute() -> None:
    msg = error_of(lambda d: d["linux"]["devices"][0].__setitem__("path", "dev/fuse"), "full")
    assert msg == "config.json: linux.devices[0].path: 'dev/fuse' must be an absolute path without '..' components"


def test_device_path_must_not_climb() -> None:
    msg = error_of(lambda d: d["linux"]["devices"][0].__setitem__("path", "/dev/../etc/x"), "full")
    assert msg.startswith("config.json: linux.devices[0].path: '/dev/../etc/x' must be an absolute path")


def test_char_device_needs_major_and_minor() -> None:
    msg = error_of(lambda d: d["linux"]["devices"][0].pop("minor"), "full")
    assert msg == "config.json: linux.devices[0].minor: is required for a device of type 'c'"


def test_fifo_device_needs_no_numbers() -> None:
    passes(lambda d: d["linux"].__setitem__("devices", [{"type": "p", "path": "/dev/f"}]))


def test_net_device_invalid_name_rejected() -> None:
    msg = error_of(lambda d: d["linux"]["netDevices"].__setitem__("eth0", {"name": "a/b"}), "full")
    assert msg == "config.json: linux.netDevices.eth0.name: 'a/b' is not a valid network device name"


def test_net_device_name_too_long_rejected() -> None:
    msg = error_of(lambda d: d["linux"]["netDevices"].__setitem__("x" * 16, {}), "full")
    assert msg == f"config.json: linux.netDevices.{'x' * 16}: {'x' * 16!r} is not a valid network device name"


def test_net_devices_need_network_namespace() -> None:
    def mut(d: dict[str, Any]) -> None:
        d["linux"]["netDevices"] = {"eth1": {}}
        d["linux"]["namespaces"] = [n for n in d["linux"]["namespaces"] if n["type"] != "network"]
    assert error_of(mut) == "config.json: linux.netDevices: needs a network namespace in linux.namespaces"


def test_cgroups_path_must_not_climb() -> None:
    msg = error_of(lambda d: d["linux"].__setitem__("cgroupsPath", "/a/../../b"))
    assert msg == "config.json: linux.cgroupsPath: '/a/../../b' must not contain '..' components"


def test_systemd_style_cgroups_path_accepted() -> None:
    passes(lambda d: d["linux"].__setitem__("cgroupsPath", "system.slice:ocirt:abc"))


def test_weight_device_needs_a_weight() -> None:
    msg = error_of(lambda d: d["linux"]["resources"]["blockIO"]["weightDevice"][0].pop("weight"), "full")
    assert msg == "config.json: linux.resources.blockIO.weightDevice[0]: needs weight or leafWeight"


def test_rdma_entry_needs_a_limit() -> None:
    msg = error_of(lambda d: d["linux"]["resources"]["rdma"].__setitem__("mlx5_0", {}), "full")
    assert msg == "config.json: linux.resources.rdma.mlx5_0: needs hcaHandles or hcaObjects"


def test_unified_key_must_be_a_file_name() -> None:
    msg = error_of(lambda d: d["linux"]["resources"]["unified"].__setitem__("../memory.max", "1"), "full")
    assert msg == 'config.json: linux.resources.unified["../memory.max"]: \'../memory.max\' is not a cgroup file name'


def test_unified_key_must_not_be_a_core_file_other_than_the_subtree_limits() -> None:
    for key in ("cgroup.procs", "cgroup.threads", "cgroup.subtree_control", "cgroup.kill"):
        msg = error_of(lambda d: d["linux"]["resources"]["unified"].__setitem__(key, "1"), "full")
        assert msg.startswith(f'config.json: linux.resources.unified["{key}"]: invalid configuration: ')
    for key in ("cgroup.max.depth", "cgroup.max.descendants"):
        assert key_problem(key) is None


# -- seccomp ----------------------------------------------------------------------------------

def test_errno_ret_on_allow_action_rejected() -> None:
    msg = error_of(lambda d: d["linux"]["seccomp"]["syscalls"][0].__setitem__("errnoRet", 1), "full")
    assert msg == "config.json: linux.seccomp.syscalls[0].errnoRet: is not allowed with action SCMP_ACT_ALLOW"


def test_errno_ret_on_trace_action_accepted() -> None:
    passes(lambda d: d["linux"]["seccomp"]["syscalls"].append(
        {"names": ["uname"], "action": "SCMP_ACT_TRACE", "errnoRet": 5}), "full")


def test_default_errno_ret_needs_errno_default_action() -> None:
    msg = error_of(lambda d: d["linux"]["seccomp"].__setitem__("defaultAction", "SCMP_ACT_KILL"), "full")
    assert msg == "config.json: linux.seccomp.defaultErrnoRet: is not allowed with defaultAction SCMP_ACT_KILL"


def test_listener_metadata_without_listener_path_rejected() -> None:
    def mut(d: dict[str, Any]) -> None:
        s = d["linux"]["seccomp"]
        s.pop("listenerPath")
        s["syscalls"] = [r for r in s["syscalls"] if r["action"] != "SCMP_ACT_NOTIFY"]
    assert error_of(mut, "full") == ("config.json: linux.seccomp.listenerMetadata: "
                                     "must not be set without listenerPath")


def test_notify_action_needs_listener_path() -> None:
    def mut(d: dict[str, Any]) -> None:
        d["linux"]["seccomp"].pop("listenerPath")
        d["linux"]["seccomp"].pop("listenerMetadata")
    assert error_of(mut, "full") == ("config.json: linux.seccomp.syscalls[3].action: "
                                     "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath")


def test_notify_cannot_be_default_action() -> None:
    def mut(d: dict[str, Any]) -> None:
        d["linux"]["seccomp"]["defaultAction"] = "SCMP_ACT_NOTIFY"
        d["linux"]["seccomp"].pop("defaultErrnoRet")
    assert error_of(mut, "full") == ("config.json: linux.seccomp.defaultAction: "
                                     "SCMP_ACT_NOTIFY cannot be the default action")


def test_notify_on_write_rejected() -> None:
    msg = error_of(lambda d: d["linux"]["seccomp"]["syscalls"][3]["names"].append("write"), "full")
    assert msg == ("config.json: linux.seccomp.syscalls[3].names: "
                   "SCMP_ACT_NOTIFY cannot be used for the write syscall")


def test_syscall_arg_index_beyond_six_rejected() -> None:
    msg = error_of(lambda d: d["linux"]["seccomp"]["syscalls"][1]["args"][0].__setitem__("index", 6), "full")
    assert msg == ("config.json: linux.seccomp.syscalls[1].args[0].index: "
                   "6 is out of range: syscalls have 6 arguments (0..5)")


# -- intelRdt, memoryPolicy ----------------------------------------------------------------------

@pytest.mark.parametrize("clos", ["..", "a/b", ""])
def test_invalid_clos_id_rejected(clos: str) -> None:
    msg = error_of(lambda d: d["linux"]["intelRdt"].__setitem__("closID", clos), "full")
    assert msg == f"config.json: linux.intelRdt.closID: {clos!r} is not a valid resctrl group name"


def test_root_clos_id_accepted() -> None:
    passes(lambda d: d["linux"]["intelRdt"].__setitem__("closID", "/"), "full")


def test_schemata_line_with_newline_rejected() -> None:
    msg = error_of(lambda d: d["linux"]["intelRdt"]["schemata"].append("L3:0=f\nMB:0=1"), "full")
    assert msg == "config.json: linux.intelRdt.schemata[1]: must not contain newlines"


def test_memory_policy_bind_needs_nodes() -> None:
    msg = error_of(lambda d: d["linux"].__setitem__("memoryPolicy", {"mode": "MPOL_BIND"}))
    assert msg == "config.json: linux.memoryPolicy.nodes: MPOL_BIND needs at least one node"


def test_memory_policy_default_takes_no_nodes() -> None:
    msg = error_of(lambda d: d["linux"].__setitem__("memoryPolicy", {"mode": "MPOL_DEFAULT", "nodes": "0"}))
    assert msg == "config.json: linux.memoryPolicy.nodes: must be empty for MPOL_DEFAULT"


def test_memory_policy_empty_nodes_allowed_for_preferred() -> None:
    passes(lambda d: d["linux"].__setitem__("memoryPolicy", {"mode": "MPOL_PREFERRED", "nodes": ""}))


def test_memory_policy_malformed_nodes_rejected() -> None:
    msg = error_of(lambda d: d["linux"]["memoryPolicy"].__setitem__("nodes", "0-"), "full")
    assert msg == "config.json: linux.memoryPolicy.nodes: '0-' is not a node list such as '0-3,7'"


def test_memory_policy_static_and_relative_exclusive() -> None:
    msg = error_of(lambda d: d["linux"]["memoryPolicy"]["flags"].append("MPOL_F_RELATIVE_NODES"), "full")
    assert msg == ("config.json: linux.memoryPolicy.flags: "
                   "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other")


def test_parse_id_list() -> None:
    assert parse_id_list("") == []
    assert parse_id_list("0-3, 7") == [(0, 3), (7, 7)]
    assert parse_id_list("1,,2") is None
    assert parse_id_list("٣") is None  # non-ASCII digits
    assert parse_id_list("5-2") is None


def test_semantic_checks_do_not_touch_the_host_without_net_sysctls(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_stat(*a: object, **k: object) -> None:
        raise AssertionError("stat called")
    monkeypatch.setattr(os, "stat", no_stat)
    validate_config(load("big-seccomp"))


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, path + (i,))
    return out


@pytest.mark.parametrize("base", ["full", "default"])
def test_broken_documents_only_ever_raise_config_error(base: str) -> None:
    # Semantic rules trust the schema; every document either passes or raises ConfigError,
    # never KeyError/TypeError, whatever single field is removed or replaced.
    values: list[Any] = [None, 0, -1, 2**64, "", "x", "/", [], {}, [""], {"": ""}, True]
    text = (GOOD / f"{base}.json").read_text()
    for path in _paths(json.loads(text))[1:]:
        for v in values + ["del"]:
            d = json.loads(text)
            parent = d
            for p in path[:-1]:
                parent = parent[p]
            if v == "del":
                if isinstance(parent, list):
                    continue
                del parent[path[-1]]
            else:
                parent[path[-1]] = v
            try:
                validate_config(d)
            except ConfigError:
                pass
