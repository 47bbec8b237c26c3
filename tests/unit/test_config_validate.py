"""Schema rules of validate_config / validate_process: each rejects with the JSON path."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from ocirt.config.validate import format_path, validate_config, validate_process
from ocirt.errors import ConfigError

GOOD = Path(__file__).parent / "fixtures" / "config" / "good"


def load(name: str) -> dict[str, Any]:
    return json.loads((GOOD / f"{name}.json").read_text())


def error_of(doc: object, fn: Callable[..., None] = validate_config) -> str:
    with pytest.raises(ConfigError) as ei:
        fn(doc)
    return str(ei.value)


def mutated(mut: Callable[[dict[str, Any]], object], base: str = "default") -> dict[str, Any]:
    d = load(base)
    mut(d)
    return d


@pytest.mark.parametrize("name", ["default", "full", "big-seccomp"])
def test_good_fixture_configs_pass(name: str) -> None:
    validate_config(load(name))


def test_minimal_config_passes() -> None:
    validate_config({"ociVersion": "1.3.0"})


def test_top_level_must_be_an_object() -> None:
    assert error_of([]) == "config.json: [] is not of type 'object'"


def test_missing_oci_version_names_the_field() -> None:
    assert error_of({}) == "config.json: ociVersion: is a required property"


def test_empty_args_is_too_short() -> None:
    msg = error_of(mutated(lambda d: d["process"].__setitem__("args", [])))
    assert msg == "config.json: process.args: [] is too short"


def test_mount_destination_type_error_names_the_index() -> None:
    msg = error_of(mutated(lambda d: d["mounts"][2].__setitem__("destination", 5)))
    assert msg == "config.json: mounts[2].destination: 5 is not of type 'string'"


def test_unknown_namespace_type_lists_the_valid_ones() -> None:
    msg = error_of(mutated(lambda d: d["linux"]["namespaces"][1].__setitem__("type", "foo")))
    assert msg.startswith("config.json: linux.namespaces[1].type: 'foo' is not one of ['cgroup', 'ipc', ")


def test_process_cwd_is_required() -> None:
    msg = error_of(mutated(lambda d: d["process"].pop("cwd")))
    assert msg == "config.json: process.cwd: is a required property"


def test_root_path_is_required() -> None:
    assert error_of(mutated(lambda d: d["root"].pop("path"))) == "config.json: root.path: is a required property"


def test_integer_field_rejects_float() -> None:
    msg = error_of(mutated(lambda d: d["process"]["rlimits"][0].__setitem__("soft", 1024.0)))
    assert msg == "config.json: process.rlimits[0].soft: 1024.0 is not of type 'integer'"


def test_integer_field_rejects_bool() -> None:
    msg = error_of(mutated(lambda d: d["process"]["user"].__setitem__("uid", True)))
    assert msg == "config.json: process.user.uid: True is not of type 'integer'"


def test_uint32_upper_bound() -> None:
    msg = error_of(mutated(lambda d: d["process"]["user"].__setitem__("gid", 1 << 32)))
    assert msg == "config.json: process.user.gid: 4294967296 is greater than the maximum of 4294967295"


def test_uint64_lower_bound() -> None:
    msg = error_of(mutated(lambda d: d["process"]["rlimits"][0].__setitem__("hard", -1)))
    assert msg == "config.json: process.rlimits[0].hard: -1 is less than the minimum of 0"


def test_rlimit_type_pattern() -> None:
    msg = error_of(mutated(lambda d: d["process"]["rlimits"][0].__setitem__("type", "nofile")))
    assert msg == "config.json: process.rlimits[0].type: 'nofile' does not match '^RLIMIT_[A-Z]+$'"


def test_hook_timeout_must_be_positive() -> None:
    msg = error_of(mutated(lambda d: d["hooks"]["poststop"][0].__setitem__("timeout", 0), "full"))
    assert msg == "config.json: hooks.poststop[0].timeout: 0 is less than the minimum of 1"


def test_hook_path_is_required() -> None:
    msg = error_of(mutated(lambda d: d["hooks"]["createRuntime"][0].pop("path"), "full"))
    assert msg == "config.json: hooks.createRuntime[0].path: is a required property"


def test_annotation_values_must_be_strings_and_odd_keys_are_quoted() -> None:
    msg = error_of(mutated(lambda d: d.__setitem__("annotations", {"org.example/k": 1})))
    assert msg == 'config.json: annotations["org.example/k"]: 1 is not of type \'string\''


def test_seccomp_names_must_not_be_empty() -> None:
    msg = error_of(mutated(lambda d: d["linux"]["seccomp"]["syscalls"][3].__setitem__("names", []), "full"))
    assert msg == "config.json: linux.seccomp.syscalls[3].names: [] is too short"


def test_seccomp_unknown_action() -> None:
    msg = error_of(mutated(lambda d: d["linux"]["seccomp"].__setitem__("defaultAction", "SCMP_ACT_NOPE"), "full"))
    assert msg.startswith("config.json: linux.seccomp.defaultAction: 'SCMP_ACT_NOPE' is not one of ['SCMP_ACT_KILL'")


def test_seccomp_unknown_operator() -> None:
    msg = error_of(mutated(lambda d: d["linux"]["seccomp"]["syscalls"][1]["args"][0].__setitem__("op", "EQ"), "full"))
    assert msg.startswith("config.json: linux.seccomp.syscalls[1].args[0].op: 'EQ' is not one of")


def test_seccomp_unknown_flag() -> None:
    msg = error_of(mutated(lambda d: d["linux"]["seccomp"]["flags"].append("SECCOMP_FILTER_FLAG_X"), "full"))
    assert msg.startswith("config.json: linux.seccomp.flags[1]: 'SECCOMP_FILTER_FLAG_X' is not one of")


def test_seccomp_default_action_required() -> None:
    msg = error_of(mutated(lambda d: d["linux"]["seccomp"].pop("defaultAction"), "full"))
    assert msg == "config.json: linux.seccomp.defaultAction: is a required property"


def test_hugepage_size_format() -> None:
    msg = error_of(mutated(lambda d: d["linux"]["resources"]["hugepageLimits"][0].__setitem__("pageSize", "64kB"),
                           "full"))
    assert msg.startswith("config.json: linux.resources.hugepageLimits[0].pageSize: '64kB' does not match")


def test_netdevice_name_type_uses_the_map_key_in_the_path() -> None:
    msg = error_of(mutated(lambda d: d["linux"]["netDevices"]["eth1"].__setitem__("name", 23), "full"))
    assert msg == "config.json: linux.netDevices.eth1.name: 23 is not of type 'string'"


def test_rdma_limit_type() -> None:
    msg = error_of(mutated(lambda d: d["linux"]["resources"]["rdma"]["mlx5_1"].__setitem__("hcaHandles", "3"),
                           "full"))
    assert msg == "config.json: linux.resources.rdma.mlx5_1.hcaHandles: '3' is not of type 'integer'"


def test_unified_values_must_be_strings() -> None:
    msg = error_of(mutated(lambda d: d["linux"]["resources"]["unified"].__setitem__("pids.max", 10), "full"))
    assert msg == 'config.json: linux.resources.unified["pids.max"]: 10 is not of type \'string\''


def test_device_type_enum() -> None:
    msg = error_of(mutated(lambda d: d["linux"]["devices"][0].__setitem__("type", "x"), "full"))
    assert msg == "config.json: linux.devices[0].type: 'x' is not one of ['c', 'b', 'u', 'p']"


def test_device_cgroup_access_is_any_string() -> None:
    # Upstream's schema has no pattern: letters other than r, w, m are dropped with a warning
    # when the rules are applied, as runc does (its own tests write "rwa").
    validate_config(mutated(lambda d: d["linux"]["resources"]["devices"][1].__setitem__("access", "rwa"), "full"))
    msg = error_of(mutated(lambda d: d["linux"]["resources"]["devices"][1].__setitem__("access", 7), "full"))
    assert msg == "config.json: linux.resources.devices[1].access: 7 is not of type 'string'"


def test_io_priority_range() -> None:
    msg = error_of(mutated(lambda d: d["process"]["ioPriority"].__setitem__("priority", 8), "full"))
    assert msg == "config.json: process.ioPriority.priority: 8 is greater than the maximum of 7"


def test_scheduler_policy_enum() -> None:
    msg = error_of(mutated(lambda d: d["process"]["scheduler"].__setitem__("policy", "SCHED_X"), "full"))
    assert msg.startswith("config.json: process.scheduler.policy: 'SCHED_X' is not one of ['SCHED_OTHER'")


def test_exec_cpu_affinity_pattern() -> None:
    msg = error_of(mutated(lambda d: d["process"]["execCPUAffinity"].__setitem__("final", "all"), "full"))
    assert msg == "config.json: process.execCPUAffinity.final: 'all' does not match '^[0-9, -]*$'"


def test_console_size_needs_both_dimensions() -> None:
    msg = error_of(mutated(lambda d: d["process"]["consoleSize"].pop("width"), "full"))
    assert msg == "config.json: process.consoleSize.width: is a required property"


def test_mount_idmapping_fields_required() -> None:
    msg = error_of(mutated(lambda d: d["mounts"][-1]["uidMappings"][0].pop("hostID"), "full"))
    assert msg == "config.json: mounts[7].uidMappings[0].hostID: is a required property"


def test_time_offsets_nanosecs_type() -> None:
    msg = error_of(mutated(lambda d: d["linux"]["timeOffsets"]["boottime"].__setitem__("nanosecs", -1), "full"))
    assert msg == "config.json: linux.timeOffsets.boottime.nanosecs: -1 is less than the minimum of 0"


def test_intel_rdt_mem_bw_schema_prefix() -> None:
    msg = error_of(mutated(lambda d: d["linux"]["intelRdt"].__setitem__("memBwSchema", "L3:0=1"), "full"))
    assert msg == "config.json: linux.intelRdt.memBwSchema: 'L3:0=1' does not match '^MB:[^\\\\n]*$'"


def test_memory_policy_mode_required() -> None:
    msg = error_of(mutated(lambda d: d["linux"]["memoryPolicy"].pop("mode"), "full"))
    assert msg == "config.json: linux.memoryPolicy.mode: is a required property"


def test_personality_domain_enum() -> None:
    msg = error_of(mutated(lambda d: d["linux"]["personality"].__setitem__("domain", "BSD"), "full"))
    assert msg == "config.json: linux.personality.domain: 'BSD' is not one of ['LINUX', 'LINUX32']"


def test_rootfs_propagation_accepts_recursive_forms_and_rejects_others() -> None:
    validate_config(mutated(lambda d: d["linux"].__setitem__("rootfsPropagation", "rshared")))
    msg = error_of(mutated(lambda d: d["linux"].__setitem__("rootfsPropagation", "both")))
    assert msg.startswith("config.json: linux.rootfsPropagation: 'both' is not one of ['private'")


def test_pids_limit_zero_is_valid() -> None:
    validate_config(mutated(lambda d: d["linux"]["resources"].__setitem__("pids", {"limit": 0})))


def test_null_for_a_known_field_is_rejected() -> None:
    msg = error_of(mutated(lambda d: d.__setitem__("hostname", None)))
    assert msg == "config.json: hostname: None is not of type 'string'"


def test_long_values_are_shortened_in_messages() -> None:
    msg = error_of(mutated(lambda d: d.__setitem__("hostname", ["x" * 50] * 10)))
    assert len(msg) < 200 and msg.endswith("... is not of type 'string'")


def test_unknown_properties_are_tolerated_everywhere() -> None:
    def add(d: dict[str, Any]) -> None:
        d["vendorExtension"] = {"anything": [1, 2]}
        d["process"]["futureField"] = 1
        d["linux"]["futureField"] = "x"
        d["linux"]["namespaces"][0]["futureField"] = True
        d["linux"]["seccomp"]["syscalls"][0]["comment"] = "docker style"
        d["mounts"][0]["futureField"] = None
        d["hooks"]["futureHookKind"] = [{"x": 1}]
        d["windows"] = {"layerFolders": 5}
    validate_config(mutated(add, "full"))


def test_first_error_is_deterministic_in_schema_order() -> None:
    # Two errors: root.path missing and a bad mount. `root` comes first in the schema.
    def two(d: dict[str, Any]) -> None:
        d["mounts"][0]["destination"] = 1
        d["root"].pop("path")
    assert error_of(mutated(two)) == "config.json: root.path: is a required property"


def test_required_is_checked_before_properties_of_the_same_object() -> None:
    def two(d: dict[str, Any]) -> None:
        d["process"]["args"] = []
        d["process"].pop("cwd")
    assert error_of(mutated(two)) == "config.json: process.cwd: is a required property"


def test_source_name_appears_in_the_message() -> None:
    with pytest.raises(ConfigError) as ei:
        validate_config({}, source="/b/config.json")
    assert str(ei.value) == "/b/config.json: ociVersion: is a required property"
    assert ei.value.path == "ociVersion"


def test_format_path() -> None:
    assert format_path([]) == ""
    assert format_path(["linux", "sysctl", "net.ipv4.ip_forward"]) == 'linux.sysctl["net.ipv4.ip_forward"]'
    assert format_path(["mounts", 2, "options", 0]) == "mounts[2].options[0]"
    assert format_path([0, "a"]) == "[0].a"
    assert format_path(["annotations", 'we"ird']) == 'annotations["we\\"ird"]'


def test_process_document_passes() -> None:
    validate_process(copy.deepcopy(load("full")["process"]))


def test_process_document_needs_args() -> None:
    proc = load("default")["process"]
    proc.pop("args")
    assert error_of(proc, validate_process) == "process.json: args: is a required property"


def test_process_document_schema_error_has_no_prefix() -> None:
    proc = load("default")["process"]
    proc["terminal"] = "yes"
    assert error_of(proc, validate_process) == "process.json: terminal: 'yes' is not of type 'boolean'"


def test_process_document_semantic_error_has_no_prefix() -> None:
    proc = load("default")["process"]
    proc["cwd"] = "relative"
    assert error_of(proc, validate_process) == "process.json: cwd: 'relative' is not an absolute path"
