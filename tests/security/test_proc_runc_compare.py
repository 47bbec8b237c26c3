"""Same config through runc (1.1.5 here) and through ocirt's process-security facade: the
exec'd process must see the same capabilities, no_new_privs, seccomp mode and errno.
runc runs the process in a container (busybox bundle in a temp dir); ocirt's side runs in a
forked child of pytest. Known, intended differences are tested in test_caps_* / docs."""

import os
import shutil

import pytest

from docker_profile import docker_like_profile
from procsec_helpers import DEFAULT_CAPS, caps_all, have_runc, make_bundle, run, runc_run

pytestmark = pytest.mark.skipif(not have_runc() or os.geteuid() != 0,
                                reason="needs runc and root")

STATUS_KEYS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")
GREP = "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status"


def _lines(out):
    return {line.split(":")[0]: line.split(":", 1)[1].strip() for line in out.splitlines()
            if line.split(":")[0] in STATUS_KEYS}


def _both(tmp_path, process, linux=None, shell=GREP):
    bundle = str(tmp_path / "bundle")
    os.mkdir(bundle)
    make_bundle(bundle, dict(process, args=["sh", "-c", shell]), linux)
    rr = runc_run(bundle, "ocirt-cmp-" + os.path.basename(str(tmp_path))[-20:])
    ours = run(process, linux, argv=["busybox", "sh", "-c", shell])
    shutil.rmtree(bundle, ignore_errors=True)
    return rr, ours


def test_caps_match_runc_root_default_set(tmp_path):
    c = {"bounding": DEFAULT_CAPS, "effective": DEFAULT_CAPS, "permitted": DEFAULT_CAPS}
    rr, ours = _both(tmp_path, {"capabilities": c})
    assert rr.returncode == 0, rr.stderr
    assert ours.exitcode == 0, ours
    assert _lines(ours.out) == _lines(rr.stdout.decode())


def test_caps_match_runc_nonroot_with_ambient_and_nnp(tmp_path):
    names = ["CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_CHOWN"]
    proc = {"user": {"uid": 1000, "gid": 1000}, "noNewPrivileges": True,
            "capabilities": caps_all(names)}
    rr, ours = _both(tmp_path, proc)
    assert rr.returncode == 0, rr.stderr
    assert _lines(ours.out) == _lines(rr.stdout.decode())


def test_caps_match_runc_root_effective_smaller_than_bounding(tmp_path):
    # For uid 0 the kernel grants the bounding set again at execve: both runtimes show that.
    c = {"bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"],
         "permitted": ["CAP_KILL", "CAP_CHOWN"]}
    rr, ours = _both(tmp_path, {"capabilities": c})
    assert rr.returncode == 0, rr.stderr
    assert _lines(ours.out) == _lines(rr.stdout.decode())


def test_seccomp_errno_matches_runc(tmp_path):
    linux = {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}]}}
    target = str(tmp_path / "made")
    rr, ours = _both(tmp_path, {}, linux, shell=f"{GREP}; mkdir {target}")
    assert _lines(ours.out) == _lines(rr.stdout.decode())
    msg = os.strerror(42)
    assert msg in rr.stderr.decode() and msg in ours.err
    assert not os.path.exists(target)


def test_seccomp_docker_profile_matches_runc(tmp_path):
    c = {"bounding": DEFAULT_CAPS, "effective": DEFAULT_CAPS, "permitted": DEFAULT_CAPS}
    rr, ours = _both(tmp_path, {"capabilities": c}, {"seccomp": docker_like_profile()},
                     shell=f"{GREP}; ls / >/dev/null && echo ok; dmesg >/dev/null || echo denied")
    assert rr.returncode == 0, rr.stderr
    assert ours.exitcode == 0, ours
    assert _lines(ours.out) == _lines(rr.stdout.decode())
    assert rr.stdout.decode().split()[-2:] == ["ok", "denied"]
    assert ours.out.split()[-2:] == ["ok", "denied"]
