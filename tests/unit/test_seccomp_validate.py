"""linux.seccomp validation and compilation (no filter is loaded here)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ocirt.errors import ConfigError  # noqa: E402
from ocirt.security import seccomp  # noqa: E402


def _err(prof):
    with pytest.raises(ConfigError) as ei:
        seccomp.compile(prof)
    return ei.value


def test_seccomp_default_action_required():
    assert _err({"syscalls": []}).path == "linux.seccomp.defaultAction"


def test_seccomp_unknown_action_is_config_error():
    e = _err({"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOPE"}]})
    assert e.path == "linux.seccomp.syscalls[0].action"


def test_seccomp_errno_ret_on_non_errno_action_is_config_error():
    e = _err({"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]})
    assert e.path == "linux.seccomp.syscalls[0].errnoRet"


def test_seccomp_default_errno_ret_on_allow_is_config_error():
    e = _err({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1})
    assert e.path == "linux.seccomp.defaultErrnoRet"


def test_seccomp_unknown_operator_is_config_error():
    e = _err({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["umask"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]})
    assert e.path == "linux.seccomp.syscalls[0].args[0].op"


def test_seccomp_arg_index_above_5_is_config_error():
    e = _err({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["umask"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]})
    assert e.path == "linux.seccomp.syscalls[0].args[0].index"


def test_seccomp_empty_names_is_config_error():
    e = _err({"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]})
    assert e.path == "linux.seccomp.syscalls[0].names"


def test_seccomp_unknown_arch_is_config_error():
    e = _err({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "Z80"]})
    assert e.path == "linux.seccomp.architectures[1]"


def test_seccomp_unknown_flag_is_config_error():
    e = _err({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]})
    assert e.path == "linux.seccomp.flags[0]"


def test_seccomp_notify_requires_listener_path():
    e = _err({"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})
    assert e.path == "linux.seccomp.listenerPath"


def test_seccomp_notify_as_default_action_is_config_error():
    assert _err({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}).path == \
        "linux.seccomp.defaultAction"


def test_seccomp_notify_on_write_is_config_error():
    e = _err({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
              "syscalls": [{"names": ["mkdir", "write"], "action": "SCMP_ACT_NOTIFY"}]})
    assert e.path == "linux.seccomp.syscalls[0].names[1]"


def test_seccomp_unknown_syscall_name_is_skipped_like_runc():
    f = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "no_such_syscall_xyz"], "action": "SCMP_ACT_ERRNO"}]})
    assert f.skipped == ["no_such_syscall_xyz"]
    assert len(f.bpf) % 8 == 0 and len(f.bpf) > 0


def test_seccomp_flags_map_to_kernel_bits():
    f = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW", "flags": [
        "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]})
    assert f.flags == 1 | 2 | 4
    assert not f.notify


def test_seccomp_wait_killable_recv_dropped_without_listener():
    f = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW",
                         "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]})
    assert f.flags == 0


def test_seccomp_notify_adds_new_listener_and_tsync_esrch():
    f = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
                         "listenerMetadata": "meta",
                         "flags": ["SECCOMP_FILTER_FLAG_TSYNC",
                                   "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                         "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})
    assert f.notify and f.listener_path == "/run/agent.sock" and f.listener_metadata == "meta"
    assert f.flags == 1 | 8 | 16 | 32


def test_seccomp_rule_equal_to_default_action_is_skipped():
    base = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW"})
    same = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW",
                            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ALLOW"}]})
    assert base.bpf == same.bpf


def test_seccomp_errno_default_is_eperm():
    a = seccomp.compile({"defaultAction": "SCMP_ACT_ERRNO"})
    b = seccomp.compile({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1})
    assert a.bpf == b.bpf
