"""Argument conditions: every operator, 64-bit values, AND across arguments and runc's OR for
several conditions on one argument. The filtered calls are made with raw syscall(2) from Python
in the forked child after the filter is loaded."""

import ctypes
import json
import os
import socket

import pytest

from procsec_helpers import run

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _nr(name):
    lib = ctypes.CDLL("libseccomp.so.2")
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    return lib.seccomp_syscall_resolve_name(name.encode())


NR_UMASK = _nr("umask")
NR_PERSONALITY = _nr("personality")
NR_SOCKET = _nr("socket")


def _raw(nr, *args):
    ctypes.set_errno(0)
    ret = _libc.syscall(ctypes.c_long(nr), *[ctypes.c_ulong(a) for a in args])
    return ctypes.get_errno() if ret < 0 else 0


def _blocked(rules, calls):
    """Load a profile (default allow, `rules` -> ERRNO 42) and return, for each call
    (nr, args...), whether it was blocked with errno 42."""
    prof = {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}}

    def fn():
        res = []
        for c in calls:
            e = _raw(*c)
            res.append(e == 42)    # sockets that were created close when the child exits
        os.write(1, json.dumps(res).encode())
        return 0
    r = run({}, prof, child_fn=fn)
    assert r.exitcode == 0, r
    return json.loads(r.out)


def _umask_rule(op, value, value_two=0):
    return [{"names": ["umask"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42,
             "args": [{"index": 0, "value": value, "valueTwo": value_two, "op": op}]}]


@pytest.mark.parametrize("op,expect", [
    ("SCMP_CMP_EQ", [False, True, False]),
    ("SCMP_CMP_NE", [True, False, True]),
    ("SCMP_CMP_LT", [True, False, False]),
    ("SCMP_CMP_LE", [True, True, False]),
    ("SCMP_CMP_GT", [False, False, True]),
    ("SCMP_CMP_GE", [False, True, True]),
])
def test_seccomp_arg_operator(op, expect):
    got = _blocked(_umask_rule(op, 0o100), [(NR_UMASK, 0o77), (NR_UMASK, 0o100),
                                            (NR_UMASK, 0o101)])
    assert got == expect


def test_seccomp_arg_masked_eq_on_umask():
    # (arg & 0o070) == 0o040
    got = _blocked(_umask_rule("SCMP_CMP_MASKED_EQ", 0o070, 0o040),
                   [(NR_UMASK, 0o040), (NR_UMASK, 0o747), (NR_UMASK, 0o050), (NR_UMASK, 0)])
    assert got == [True, True, False, False]


def test_seccomp_arg_masked_eq_socket_family_inet_vs_unix():
    rules = [{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42,
              "args": [{"index": 0, "value": 0xFF, "valueTwo": socket.AF_INET,
                        "op": "SCMP_CMP_MASKED_EQ"}]}]
    got = _blocked(rules, [(NR_SOCKET, socket.AF_INET, socket.SOCK_STREAM, 0),
                           (NR_SOCKET, socket.AF_UNIX, socket.SOCK_STREAM, 0)])
    assert got == [True, False]


def test_seccomp_arg_eq_personality_query_value_64bit_compare():
    # Docker's profile allows personality(0xffffffff) (a query); here it is the blocked value.
    rules = [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42,
              "args": [{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_EQ"}]}]
    got = _blocked(rules, [(NR_PERSONALITY, 0xFFFFFFFF), (NR_PERSONALITY, 0),
                           (NR_PERSONALITY, 0xFFFFFFFFFFFFFFFF)])
    assert got == [True, False, False]


def test_seccomp_arg_high_32_bits_are_compared():
    got = _blocked(_umask_rule("SCMP_CMP_EQ", (1 << 32) | 0o22),
                   [(NR_UMASK, 0o22), (NR_UMASK, (1 << 32) | 0o22)])
    assert got == [False, True]


def test_seccomp_args_on_different_indexes_are_anded():
    rules = [{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42,
              "args": [{"index": 0, "value": socket.AF_INET, "op": "SCMP_CMP_EQ"},
                       {"index": 1, "value": 0xF, "valueTwo": socket.SOCK_DGRAM,
                        "op": "SCMP_CMP_MASKED_EQ"}]}]
    got = _blocked(rules, [(NR_SOCKET, socket.AF_INET, socket.SOCK_DGRAM, 0),
                           (NR_SOCKET, socket.AF_INET, socket.SOCK_STREAM, 0),
                           (NR_SOCKET, socket.AF_UNIX, socket.SOCK_DGRAM, 0)])
    assert got == [True, False, False]


def test_seccomp_args_on_same_index_are_ored_like_runc():
    rules = [{"names": ["umask"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42,
              "args": [{"index": 0, "value": 0o11, "op": "SCMP_CMP_EQ"},
                       {"index": 0, "value": 0o33, "op": "SCMP_CMP_EQ"}]}]
    got = _blocked(rules, [(NR_UMASK, 0o11), (NR_UMASK, 0o22), (NR_UMASK, 0o33)])
    assert got == [True, False, True]
