"""Seccomp actions on the real kernel: the filter is loaded by apply_seccomp in a forked child,
then either busybox is exec'd or Python code runs under the filter and reports."""

import errno
import os
import signal

import pytest

from procsec_helpers import run


def _prof(action, names=("mkdir", "mkdirat"), **extra):
    rule = {"names": list(names), "action": action}
    rule.update(extra)
    return {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]}}


NOCORE = {"rlimits": [{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]}


def _mkdir_errno(path):
    def fn():
        try:
            os.mkdir(path)
        except OSError as e:
            os.write(1, b"%d" % e.errno)
            return 0
        os.write(1, b"0")
        return 0
    return fn


def test_seccomp_mode_2_and_one_filter_after_exec():
    r = run({}, _prof("SCMP_ACT_ERRNO"))
    assert r.exitcode == 0, r
    assert r.status_field("Seccomp") == "2"
    assert r.status_field("Seccomp_filters") == "1"


def test_seccomp_errno_ret_seen_by_busybox_mkdir(tmp_path):
    r = run({}, _prof("SCMP_ACT_ERRNO", errnoRet=42),
            argv=["busybox", "mkdir", str(tmp_path / "d")])
    assert r.exitcode == 1
    assert os.strerror(42) in r.err          # "No message of desired type"
    assert not (tmp_path / "d").exists()


def test_seccomp_errno_ret_seen_by_python_after_load(tmp_path):
    r = run({}, _prof("SCMP_ACT_ERRNO", errnoRet=42), child_fn=_mkdir_errno(str(tmp_path / "d")))
    assert r.exitcode == 0, r
    assert r.out == "42"


def test_seccomp_errno_without_errno_ret_is_eperm(tmp_path):
    r = run({}, _prof("SCMP_ACT_ERRNO"), child_fn=_mkdir_errno(str(tmp_path / "d")))
    assert r.out == str(errno.EPERM)


def test_seccomp_default_errno_ret_applies_to_unlisted_syscalls(tmp_path):
    # Allow what the interpreter needs to report and exit; rmdir falls to the default.
    basics = ["write", "close", "exit_group", "exit", "brk", "mmap", "munmap", "mremap",
              "madvise", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "futex", "getpid",
              "gettid", "newfstatat", "fstat", "lseek", "read", "ioctl", "getrandom",
              "capset"]   # capset: the deferred CAP_SYS_ADMIN drop right after loading
    prof = {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                                      "errnoRet": 42},
                                     {"names": basics, "action": "SCMP_ACT_ALLOW"}]}}

    def fn():
        out = []
        for call in (lambda: os.mkdir(str(tmp_path / "d")), lambda: os.rmdir(str(tmp_path))):
            try:
                call()
                out.append("0")
            except OSError as e:
                out.append(str(e.errno))
        os.write(1, " ".join(out).encode())
        os._exit(0)
    r = run({}, prof, child_fn=fn)
    assert r.out == "42 38", r
    assert tmp_path.is_dir()


def test_seccomp_kill_process_kills_with_sigsys(tmp_path):
    r = run(NOCORE, _prof("SCMP_ACT_KILL_PROCESS"), child_fn=_mkdir_errno(str(tmp_path / "d")))
    assert r.signal == signal.SIGSYS, r
    assert not (tmp_path / "d").exists()


def test_seccomp_kill_thread_kills_single_threaded_process_with_sigsys(tmp_path):
    r = run(NOCORE, _prof("SCMP_ACT_KILL"), child_fn=_mkdir_errno(str(tmp_path / "d")))
    assert r.signal == signal.SIGSYS, r


def test_seccomp_trap_delivers_sigsys_and_skips_the_syscall(tmp_path):
    def fn():
        got = []
        signal.signal(signal.SIGSYS, lambda s, f: got.append(s))
        try:
            os.mkdir(str(tmp_path / "d"))
        except OSError:
            pass
        os.write(1, b"%d" % len(got))
        return 0
    r = run(NOCORE, _prof("SCMP_ACT_TRAP"), child_fn=fn)
    assert r.exitcode == 0, r
    assert r.out == "1"
    assert not (tmp_path / "d").exists()


def test_seccomp_trap_default_disposition_terminates(tmp_path):
    r = run(NOCORE, _prof("SCMP_ACT_TRAP"), argv=["busybox", "mkdir", str(tmp_path / "d")])
    assert r.signal == signal.SIGSYS, r


def test_seccomp_log_allows_the_syscall(tmp_path):
    r = run({}, _prof("SCMP_ACT_LOG"), argv=["busybox", "mkdir", str(tmp_path / "d")])
    assert r.exitcode == 0, r
    assert (tmp_path / "d").is_dir()


def test_seccomp_trace_without_tracer_returns_enosys(tmp_path):
    r = run({}, _prof("SCMP_ACT_TRACE"), child_fn=_mkdir_errno(str(tmp_path / "d")))
    assert r.out == str(errno.ENOSYS)


def test_seccomp_default_kill_process_with_allow_list_runs_busybox_true():
    # A whitelist profile: what static busybox `true` needs, plus `close`, the only syscall the
    # test init makes between loading the filter and execve.
    names = ["execve", "exit_group", "exit", "brk", "arch_prctl", "set_tid_address",
             "set_robust_list", "rseq", "prlimit64", "mprotect", "getrandom", "readlink",
             "prctl", "getuid", "capset", "close"]
    prof = {"seccomp": {"defaultAction": "SCMP_ACT_KILL_PROCESS",
                        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]}}
    r = run(NOCORE, prof, argv=["busybox", "true"])
    assert r.exitcode == 0, r


@pytest.mark.parametrize("flag", ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                  "SECCOMP_FILTER_FLAG_SPEC_ALLOW"])
def test_seccomp_filter_flag_is_accepted_by_kernel(flag, tmp_path):
    prof = _prof("SCMP_ACT_ERRNO", errnoRet=42)
    prof["seccomp"]["flags"] = [flag]
    r = run({}, prof, child_fn=_mkdir_errno(str(tmp_path / "d")))
    assert r.out == "42", r


def test_seccomp_filter_not_inherited_by_parent(tmp_path):
    r = run({}, _prof("SCMP_ACT_ERRNO", errnoRet=42), child_fn=_mkdir_errno(str(tmp_path / "d")))
    assert r.out == "42"
    os.mkdir(tmp_path / "d2")      # the test process itself is unfiltered
