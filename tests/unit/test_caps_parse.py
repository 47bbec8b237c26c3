"""process.capabilities / rlimits / user parsing: pure functions, no kernel calls."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ocirt.errors import ConfigError  # noqa: E402
from ocirt.process import caps, rlimits, user  # noqa: E402
from ocirt.process import security  # noqa: E402


def test_caps_names_map_to_kernel_bit_numbers():
    m = caps.parse({"bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_CHECKPOINT_RESTORE"]},
                   kernel_last=40)
    assert m["bounding"] == (1 << 0) | (1 << 5) | (1 << 40)


def test_caps_absent_sets_are_empty():
    m = caps.parse({"bounding": ["CAP_KILL"]}, kernel_last=40)
    assert m == {"bounding": 1 << 5, "effective": 0, "inheritable": 0, "permitted": 0,
                 "ambient": 0}


def test_caps_absent_object_means_no_capabilities_like_runc():
    assert caps.parse(None) == {s: 0 for s in caps.SETS}


def test_caps_unknown_name_is_left_out():
    got = caps.parse({"bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NOPE"]}, kernel_last=40)
    assert got["bounding"] == (1 << 0) | (1 << 5)


def test_caps_name_that_is_not_a_string_is_config_error():
    with pytest.raises(ConfigError) as ei:
        caps.parse({"effective": [21]}, kernel_last=40)
    assert ei.value.path == "process.capabilities.effective[0]"


def test_caps_unknown_to_this_kernel_warns_and_is_skipped():
    warnings = []
    m = caps.parse({"permitted": ["CAP_CHOWN", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]},
                   kernel_last=38, warnings=warnings)
    assert m["permitted"] == 1
    assert len(warnings) == 1
    assert "CAP_BPF" in warnings[0] and "CAP_CHECKPOINT_RESTORE" in warnings[0]


def test_caps_prepare_reports_kernel_warnings_not_errors():
    p = security.prepare({"capabilities": {"bounding": ["CAP_CHOWN"]}}, {})
    assert p.warnings == []
    assert p.caps["bounding"] == 1


def test_caps_prepare_config_error_names_source():
    with pytest.raises(ConfigError) as ei:
        security.prepare({"capabilities": {"ambient": [1]}}, {}, source="process.json")
    assert ei.value.path == "process.capabilities.ambient[0]"
    assert str(ei.value).startswith("process.json: ")


def test_caps_table_matches_linux_uapi_numbers():
    assert caps.CAP_NUMBERS["CAP_SYS_ADMIN"] == 21
    assert caps.CAP_NUMBERS["CAP_SYS_RESOURCE"] == 24
    assert caps.CAP_NUMBERS["CAP_AUDIT_READ"] == 37
    assert caps.CAP_NUMBERS["CAP_CHECKPOINT_RESTORE"] == 40


def test_proc_rlimit_unknown_type_is_config_error():
    with pytest.raises(ConfigError) as ei:
        rlimits.parse([{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
                       {"type": "RLIMIT_FOO", "soft": 1, "hard": 1}])
    assert ei.value.path == "process.rlimits[1].type"


def test_proc_rlimit_duplicate_type_is_config_error():
    with pytest.raises(ConfigError) as ei:
        rlimits.parse([{"type": "RLIMIT_CORE", "soft": 1, "hard": 1},
                       {"type": "RLIMIT_CORE", "soft": 2, "hard": 2}])
    assert ei.value.path == "process.rlimits[1].type"


def test_proc_rlimit_soft_above_hard_is_config_error():
    with pytest.raises(ConfigError) as ei:
        rlimits.parse([{"type": "RLIMIT_CORE", "soft": 2, "hard": 1}])
    assert ei.value.path == "process.rlimits[0]"


def test_proc_rlimit_value_must_be_uint64():
    with pytest.raises(ConfigError) as ei:
        rlimits.parse([{"type": "RLIMIT_CORE", "soft": -1, "hard": 1}])
    assert ei.value.path == "process.rlimits[0].soft"


def test_proc_rlimit_infinity_is_kept_exact():
    inf = (1 << 64) - 1
    assert rlimits.parse([{"type": "RLIMIT_CORE", "soft": inf, "hard": inf}]) == \
        [("RLIMIT_CORE", 4, inf, inf)]


def test_proc_user_additional_gid_out_of_range_is_config_error():
    with pytest.raises(ConfigError) as ei:
        user.parse({"uid": 1, "gid": 1, "additionalGids": [5, 1 << 32]})
    assert ei.value.path == "process.user.additionalGids[1]"


@pytest.mark.parametrize("field,value,path", [
    ("oomScoreAdj", 1001, "process.oomScoreAdj"),
    ("ioPriority", {"class": "IOPRIO_CLASS_XX", "priority": 1}, "process.ioPriority.class"),
    ("ioPriority", {"class": "IOPRIO_CLASS_BE", "priority": 8}, "process.ioPriority.priority"),
    ("scheduler", {"policy": "SCHED_NOPE"}, "process.scheduler.policy"),
    ("scheduler", {"policy": "SCHED_OTHER", "priority": 5}, "process.scheduler.priority"),
    ("scheduler", {"policy": "SCHED_OTHER", "nice": 20}, "process.scheduler.nice"),
    ("scheduler", {"policy": "SCHED_FIFO", "priority": 1, "runtime": 5},
     "process.scheduler.runtime"),
    ("scheduler", {"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_X"]},
     "process.scheduler.flags[0]"),
    ("scheduler", {"policy": "SCHED_ISO"}, "process.scheduler.policy"),
    ("noNewPrivileges", "yes", "process.noNewPrivileges"),
])
def test_proc_invalid_process_values_are_config_errors(field, value, path):
    with pytest.raises(ConfigError) as ei:
        security.prepare({field: value}, {})
    assert ei.value.path == path


def test_proc_personality_flags_unsupported():
    with pytest.raises(ConfigError) as ei:
        security.prepare({}, {"personality": {"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}})
    assert ei.value.path == "linux.personality.flags"


def test_proc_prepared_is_picklable():
    import pickle
    p = security.prepare({"capabilities": {"bounding": ["CAP_KILL"]},
                          "rlimits": [{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]},
                         {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}})
    q = pickle.loads(pickle.dumps(p))
    assert q.caps == p.caps and q.rlimits == p.rlimits and q.seccomp.bpf == p.seccomp.bpf


def test_proc_prepare_accepts_the_good_config_fixtures():
    import glob
    import json
    from ocirt.security import lsm
    here = os.path.dirname(os.path.abspath(__file__))
    files = sorted(glob.glob(os.path.join(here, "fixtures", "config", "good", "*.json")))
    if not files:
        pytest.skip("no fixtures")
    for f in files:
        with open(f) as fh:
            cfg = json.load(fh)
        proc = dict(cfg.get("process") or {})
        # Host-dependent: labels need the LSM (tested in tests/security/test_proc_limits.py).
        if not lsm.apparmor_enabled():
            proc.pop("apparmorProfile", None)
        if not lsm.selinux_enabled():
            proc.pop("selinuxLabel", None)
        # Host-dependent too: NUMA nodes and CPUs must be online (tested in
        # tests/integration/test_memory_policy.py and test_exec_cpu_affinity.py).
        proc.pop("execCPUAffinity", None)
        linux = {k: v for k, v in (cfg.get("linux") or {}).items() if k != "memoryPolicy"}
        p = security.prepare(proc, linux)
        assert p.caps is not None, f
