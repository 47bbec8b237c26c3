"""The -ENOSYS stub (runc's patchbpf): under a non-permissive default action, a syscall numbered
above every syscall the profile names fails with ENOSYS instead of the default action, so libc
falls back to older syscalls; syscalls within the named range keep the default action.

Kernel-level tests load the compiled filter in a forked child (procsec_helpers.run); the
container tests run a static C program in a real container, with ocirt and with runc 1.1.5."""

import ctypes
import errno
import os
import platform
import shutil
import subprocess

import pytest

from docker_profile import allowed_names, docker_like_profile
from procsec_helpers import run

from ocirt.security import enosys, seccomp

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

X86_64 = platform.machine() == "x86_64"
NR_STATMOUNT = 457          # x86_64: Linux 6.8, newer than libseccomp 2.5.4's table
NR_UNSHARE = 272            # x86_64
FAKE_NR = 1000

NOCORE = {"rlimits": [{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]}

# What the forked child needs between loading the filter and reporting (Python's os.write,
# _exit), plus capset (the deferred CAP_SYS_ADMIN drop right after loading).
BASICS = ["write", "close", "exit_group", "exit", "brk", "mmap", "munmap", "mremap", "madvise",
          "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "futex", "getpid", "gettid",
          "newfstatat", "fstat", "lseek", "read", "ioctl", "getrandom", "capset"]


def _raw_errno(nr: int, *args: int) -> int:
    """errno of a raw syscall (0 if it succeeded)."""
    ctypes.set_errno(0)
    rc = _libc.syscall(ctypes.c_long(nr), *(ctypes.c_long(a) for a in args))
    return ctypes.get_errno() if rc == -1 else 0


def _report(*calls):
    def fn():
        os.write(1, " ".join(str(_raw_errno(*c)) for c in calls).encode())
        return 0
    return fn


def _allow_list(default: str, names=BASICS, **extra) -> dict:
    prof = {"defaultAction": default,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": list(names), "action": "SCMP_ACT_ALLOW"}]}
    prof.update(extra)
    return {"seccomp": prof}


needs_x86_64 = pytest.mark.skipif(not X86_64, reason="syscall numbers are x86_64's")


def _kernel_knows_statmount() -> bool:
    return _raw_errno(NR_STATMOUNT, 0, 0, 0, 0) != errno.ENOSYS


@needs_x86_64
def test_enosys_for_syscall_above_every_named_one_under_default_errno():
    r = run({}, _allow_list("SCMP_ACT_ERRNO"), child_fn=_report((FAKE_NR,)))
    assert r.exitcode == 0, r
    assert r.out == str(errno.ENOSYS)


@needs_x86_64
def test_unlisted_syscall_below_the_largest_named_keeps_the_default_errno():
    # unshare (272) is below getrandom (318), the largest name listed.
    r = run({}, _allow_list("SCMP_ACT_ERRNO", defaultErrnoRet=errno.ENXIO),
            child_fn=_report((NR_UNSHARE, 0)))
    assert r.out == str(errno.ENXIO), r


@needs_x86_64
def test_enosys_instead_of_kill_for_a_newer_syscall():
    r = run(NOCORE, _allow_list("SCMP_ACT_KILL_PROCESS"), child_fn=_report((FAKE_NR,)))
    assert r.signal is None, r
    assert r.out == str(errno.ENOSYS)


@needs_x86_64
def test_syscall_kernel_knows_but_libseccomp_does_not_gets_enosys():
    if not _kernel_knows_statmount():
        pytest.skip("this kernel has no statmount(2)")
    # The docker-like profile names statmount; libseccomp 2.5.4 cannot resolve it.
    r = run({}, {"seccomp": docker_like_profile()}, child_fn=_report((NR_STATMOUNT, 0, 0, 0, 0)))
    assert r.exitcode == 0, r
    assert r.out == str(errno.ENOSYS)


@needs_x86_64
def test_permissive_default_action_gets_no_stub():
    if not _kernel_knows_statmount():
        pytest.skip("this kernel has no statmount(2)")
    prof = {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}}
    # statmount(NULL, ...) runs and faults on its arguments instead of returning ENOSYS.
    r = run({}, prof, child_fn=_report((NR_STATMOUNT, 0, 0, 0, 0)))
    assert r.out not in ("", str(errno.ENOSYS)), r


@needs_x86_64
def test_no_architectures_listed_means_no_stub():
    prof = _allow_list("SCMP_ACT_ERRNO", defaultErrnoRet=errno.ENXIO)
    del prof["seccomp"]["architectures"]
    r = run({}, prof, child_fn=_report((FAKE_NR,)))
    assert r.out == str(errno.ENXIO), r


def test_cached_filter_keeps_the_stub(tmp_path):
    prof = _allow_list("SCMP_ACT_ERRNO")["seccomp"]
    cache = str(tmp_path / "cache")
    first = seccomp.compile(prof, cache_dir=cache)
    again = seccomp.compile(prof, cache_dir=cache)
    assert not first.cached and again.cached
    assert again.bpf == first.bpf
    assert len(first.bpf) > len(seccomp.compile(dict(prof, architectures=[])).bpf)


X86_64_TOKEN, X86_TOKEN, X32_TOKEN = 0xC000003E, 0x40000003, 0x4000003E


def _fake_resolve(arch, name):
    table = {"socket": {X86_64_TOKEN: 41, X86_TOKEN: -101, X32_TOKEN: 0x40000029},
             "clone": {X86_64_TOKEN: 56, X86_TOKEN: 120, X32_TOKEN: 0x40000038}}
    return table.get(name, {}).get(arch, -1)


def test_largest_syscalls_per_arch_with_x32_under_the_x86_64_audit_arch():
    got = enosys.largest_syscalls([X86_64_TOKEN, X86_TOKEN, X32_TOKEN],
                                  ["socket", "clone", "no_such_call"], _fake_resolve)
    assert got == {X86_64_TOKEN: {X86_64_TOKEN: 56, X32_TOKEN: 0x40000038},
                   X86_TOKEN: {X86_TOKEN: 120}}


def test_pseudo_syscall_numbers_and_unknown_names_are_ignored():
    # socket is a socketcall pseudo number (negative) on x86: the arch has nothing named.
    assert enosys.largest_syscalls([X86_TOKEN], ["socket", "nope"], _fake_resolve) == {}
    assert enosys.stub({}) == b""


# --- in a container ------------------------------------------------------------------------

PROGRAM = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>

static int err_of(long rc) { return rc < 0 ? errno : 0; }
static void *thread_main(void *arg) { return arg; }

int main(void)
{
    pthread_t t;
    void *ret = NULL;
    int rc = pthread_create(&t, NULL, thread_main, (void *)42);
    if (rc == 0)
        pthread_join(t, &ret);
    printf("fake=%d unshare=%d clone3=%d thread=%d:%ld\n",
           err_of(syscall(1000, 0, 0, 0)), err_of(syscall(SYS_unshare, 0)),
           err_of(syscall(SYS_clone3, NULL, 0)), rc, (long)ret);
    return 0;
}
"""

NR_CLONE3 = 435


def _older_than_clone3() -> list[str]:
    """The docker-like allow list as a profile written before Linux 5.3 would have it."""
    lib = ctypes.CDLL("libseccomp.so.2")
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    return [n for n in allowed_names()
            if 0 <= lib.seccomp_syscall_resolve_name(n.encode()) < NR_CLONE3]


@pytest.fixture(scope="module")
def enosys_program(tmp_path_factory):
    if not X86_64:
        pytest.skip("syscall numbers are x86_64's")
    if not shutil.which("gcc") or not os.path.exists("/usr/lib/x86_64-linux-gnu/libc.a"):
        pytest.skip("needs gcc and a static glibc (libc6-dev)")
    d = tmp_path_factory.mktemp("enosys")
    (d / "t.c").write_text(PROGRAM)
    subprocess.run(["gcc", "-static", "-pthread", "-o", str(d / "enosys-test"), str(d / "t.c")],
                   check=True, capture_output=True)
    return d / "enosys-test"


def _container_bundle(bundle, rootfs_template, program):
    rootfs = bundle.own_rootfs(rootfs_template)
    shutil.copy2(program, rootfs / "enosys-test")
    bundle.config["linux"]["seccomp"] = _allow_list("SCMP_ACT_ERRNO",
                                                    _older_than_clone3())["seccomp"]
    bundle.process["noNewPrivileges"] = True
    return bundle.args("/enosys-test")


EXPECTED = f"fake={errno.ENOSYS} unshare={errno.EPERM} clone3={errno.ENOSYS} thread=0:42"


def test_container_newer_syscalls_get_enosys_and_glibc_falls_back_to_clone(
        ocirt, bundle, cid, rootfs_template, enosys_program):
    _container_bundle(bundle, rootfs_template, enosys_program)
    p = ocirt("run", "--bundle", str(bundle.path), cid)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().strip() == EXPECTED


@pytest.mark.skipif(not shutil.which("runc"), reason="runc is not installed")
def test_container_enosys_handling_matches_runc(bundle, rootfs_template, enosys_program,
                                                tmp_path, cid):
    _container_bundle(bundle, rootfs_template, enosys_program)
    root = str(tmp_path / "runc-root")
    try:
        p = subprocess.run(["runc", "--root", root, "run", "--bundle", str(bundle.path), cid],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    finally:
        subprocess.run(["runc", "--root", root, "delete", "-f", cid], capture_output=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().strip() == EXPECTED

