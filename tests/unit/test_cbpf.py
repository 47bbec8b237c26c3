"""ocirt.security.cbpf answers for a compiled filter what the kernel would, or not at all."""

from __future__ import annotations

import copy
import ctypes
import json
import os

import pytest

from ocirt.init.waiter import HANDOVER_SYSCALLS
from ocirt.security import cbpf, seccomp

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64",
                                reason="the system call numbers are x86-64's")

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "config", "good",
                       "big-seccomp.json")
SYS_WRITE, SYS_GETPID, SYS_MKDIRAT, SYS_PERSONALITY = 1, 39, 258, 135
EPERM, EACCES, EINVAL = 1, 13, 22
RET_ERRNO = 0x00050000


def docker_like() -> dict:
    with open(FIXTURE) as f:
        return json.load(f)["linux"]["seccomp"]


def bpf(profile: dict) -> bytes:
    return seccomp.compile(profile).bpf


def allow_but(*rules: dict) -> dict:
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": list(rules)}


def errno_rule(name: str, errno: int, *args: dict) -> dict:
    rule = {"names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": errno}
    if args:
        rule["args"] = list(args)
    return rule


def test_a_docker_like_profile_allows_every_system_call_of_the_handover():
    assert cbpf.allows(bpf(docker_like()), HANDOVER_SYSCALLS)


def test_an_allowlist_without_execveat_does_not_allow_the_handover():
    prof = copy.deepcopy(docker_like())
    for rule in prof["syscalls"]:
        rule["names"] = [n for n in rule["names"] if n != "execveat"]
    assert not cbpf.allows(bpf(prof), HANDOVER_SYSCALLS)


def test_a_refused_system_call_is_answered_with_its_errno():
    prog = bpf(allow_but(errno_rule("mkdirat", EACCES)))
    assert cbpf.verdict(prog, SYS_MKDIRAT, (0, 0, 0)) == RET_ERRNO | EACCES
    assert cbpf.verdict(prog, SYS_GETPID, ()) == cbpf.RET_ALLOW


def test_a_rule_on_an_argument_not_given_leaves_the_answer_open():
    prog = bpf(allow_but(errno_rule("write", EPERM, {"index": 0, "value": 5, "op": "SCMP_CMP_EQ"})))
    assert cbpf.verdict(prog, SYS_WRITE, (None, None, None)) is None
    assert cbpf.verdict(prog, SYS_WRITE, (1, None, None)) == cbpf.RET_ALLOW
    assert cbpf.verdict(prog, SYS_WRITE, (5, None, None)) == RET_ERRNO | EPERM
    assert not cbpf.allows(prog, [(SYS_WRITE, (None, None, None))])


def test_another_architecture_gets_the_default_action():
    prog = bpf({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]})
    assert cbpf.verdict(prog, SYS_GETPID, ()) == cbpf.RET_ALLOW
    assert cbpf.verdict(prog, SYS_GETPID, (), arch=0x40000003) & 0xFFFF0000 != cbpf.RET_ALLOW


def test_the_answers_are_the_kernels():
    """The same filter loaded in a child process: each call fails with the errno predicted."""
    persona_query = {"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_EQ"}
    f = seccomp.compile(allow_but(errno_rule("mkdirat", EACCES),
                                  errno_rule("personality", EINVAL, persona_query)))
    calls = [(SYS_MKDIRAT, (-100 & 0xFFFFFFFFFFFFFFFF, 0, 0)), (SYS_PERSONALITY, (0xFFFFFFFF,)),
             (SYS_PERSONALITY, (0,)), (SYS_GETPID, ())]
    predicted = []
    for nr, args in calls:
        ret = cbpf.verdict(f.bpf, nr, args)
        predicted.append(ret & 0xFFFF if ret & 0xFFFF0000 == RET_ERRNO else 0)
    assert predicted == [EACCES, EINVAL, 0, 0]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(38, 1, 0, 0, 0)                      # PR_SET_NO_NEW_PRIVS
            seccomp.load(f)
            got = []
            path = ctypes.c_char_p(b"/nonexistent-ocirt-test/x")
            for nr, args in calls:
                cargs = [path if nr == SYS_MKDIRAT and i == 1 else ctypes.c_ulong(a)
                         for i, a in enumerate(args)]
                ctypes.set_errno(0)
                ret = libc.syscall(ctypes.c_long(nr), *cargs)
                err = ctypes.get_errno() if ret == -1 else 0
                # Unfiltered, this mkdirat fails too, with ENOENT: only the filter's errno counts.
                got.append(err if err != 2 else 0)
            os.write(w, json.dumps(got).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f_out:
        got = json.loads(f_out.read())
    os.waitpid(pid, 0)
    assert got == predicted
