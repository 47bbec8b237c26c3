"""A Docker-default-like profile (tests/security/docker_profile.py): an ordinary busybox
workload runs under it, privileged syscalls get EPERM, and compiling it stays cheap."""

import os
import time

from docker_profile import docker_like_profile, allowed_names
from procsec_helpers import DEFAULT_CAPS, mask, run

from ocirt.process import security
from ocirt.security import seccomp


def _cfg(**extra):
    proc = {"capabilities": {"bounding": DEFAULT_CAPS, "effective": DEFAULT_CAPS,
                             "permitted": DEFAULT_CAPS}}
    proc.update(extra)
    return proc, {"seccomp": docker_like_profile()}


def test_seccomp_docker_profile_has_docker_shape():
    prof = docker_like_profile()
    assert prof["defaultAction"] == "SCMP_ACT_ERRNO" and prof["defaultErrnoRet"] == 1
    assert len(allowed_names()) >= 330
    ops = {a["op"] for s in prof["syscalls"] for a in s.get("args", [])}
    assert ops == {"SCMP_CMP_EQ", "SCMP_CMP_MASKED_EQ"}
    if os.uname().machine == "x86_64":
        assert prof["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


def test_seccomp_docker_profile_runs_busybox_shell():
    proc, linux = _cfg()
    r = run(proc, linux, argv=["busybox", "sh", "-c", "ls /; echo ok"])
    assert r.exitcode == 0, r
    assert r.out.splitlines()[-1] == "ok"
    assert "proc" in r.out.split()


def test_seccomp_docker_profile_caps_exact_and_filter_on():
    proc, linux = _cfg()
    r = run(proc, linux)
    assert r.exitcode == 0, r
    m = mask(DEFAULT_CAPS)
    assert (r.cap("CapBnd"), r.cap("CapEff"), r.cap("CapPrm")) == (m, m, m)
    assert r.cap("CapInh") == 0 and r.cap("CapAmb") == 0
    assert r.status_field("Seccomp") == "2"


def test_seccomp_docker_profile_blocks_syslog_with_eperm():
    proc, linux = _cfg()
    r = run(proc, linux, argv=["busybox", "dmesg"])
    assert r.exitcode != 0
    assert "Operation not permitted" in r.err


def test_seccomp_docker_profile_personality_allowed_values_only():
    proc, linux = _cfg()
    r = run(proc, linux, argv=["busybox", "sh", "-c", "linux32 uname -m; echo rc=$?"])
    assert r.exitcode == 0, r
    assert "rc=0" in r.out


def test_seccomp_docker_profile_clone_with_namespace_flag_is_eperm():
    proc, linux = _cfg()
    r = run(proc, linux, argv=["busybox", "unshare", "-n", "true"])
    assert r.exitcode != 0
    assert "Operation not permitted" in r.err


def test_seccomp_docker_profile_compile_cost(capsys):
    prof = docker_like_profile()
    seccomp.compile(prof)                      # warm: library load, first-call costs
    n = 20
    t = time.perf_counter()
    for _ in range(n):
        f = seccomp.compile(prof)
    per = (time.perf_counter() - t) / n
    with capsys.disabled():
        print(f"\n[seccomp] docker-like profile: {len(f.bpf) // 8} BPF instructions, "
              f"compile {per * 1000:.2f} ms (mean of {n}), {len(f.skipped)} names unknown to "
              "this libseccomp")
    assert per < 0.25


def test_seccomp_prepare_without_seccomp_does_not_load_libseccomp():
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from ocirt.process import security\n"
            "security.prepare({'capabilities': {'bounding': ['CAP_KILL']}}, {})\n"
            "print(any('libseccomp' in l for l in open('/proc/self/maps')))" % root)
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"


def test_seccomp_compile_cache_hit_gives_identical_program(tmp_path, capsys):
    prof = docker_like_profile()
    cache = str(tmp_path / "cache")
    first = seccomp.compile(prof, cache_dir=cache)
    assert not first.cached
    assert os.stat(cache).st_mode & 0o777 == 0o700
    n = 20
    t = time.perf_counter()
    for _ in range(n):
        hit = seccomp.compile(prof, cache_dir=cache)
    per = (time.perf_counter() - t) / n
    assert hit.cached and hit.bpf == first.bpf
    with capsys.disabled():
        print(f"\n[seccomp] docker-like profile from the compile cache: {per * 1000:.2f} ms")


def test_seccomp_compile_cache_key_covers_rules(tmp_path):
    prof = docker_like_profile()
    cache = str(tmp_path / "cache")
    a = seccomp.compile(prof, cache_dir=cache)
    prof2 = dict(prof, defaultErrnoRet=38)
    b = seccomp.compile(prof2, cache_dir=cache)
    assert not b.cached and b.bpf != a.bpf


def test_seccomp_compile_cache_ignores_group_writable_dir(tmp_path):
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    cache = tmp_path / "cache"
    seccomp.compile(prof, cache_dir=str(cache))
    os.chmod(cache, 0o777)
    assert not seccomp.compile(prof, cache_dir=str(cache)).cached


def test_seccomp_compile_cache_ignores_tampered_entry(tmp_path):
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    cache = tmp_path / "cache"
    good = seccomp.compile(prof, cache_dir=str(cache))
    (entry,) = list(cache.iterdir())
    # An attacker-provided "allow everything" program under the right name but wrong header.
    allow_all = (0x06).to_bytes(2, "little") + b"\0\0" + (0x7FFF0000).to_bytes(4, "little")
    entry.write_bytes(b"not-ocirt " + allow_all)
    again = seccomp.compile(prof, cache_dir=str(cache))
    assert not again.cached and again.bpf == good.bpf


def test_seccomp_compile_cache_ignores_symlinked_entry(tmp_path):
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    cache = tmp_path / "cache"
    seccomp.compile(prof, cache_dir=str(cache))
    (entry,) = list(cache.iterdir())
    target = tmp_path / "elsewhere"
    target.write_bytes(entry.read_bytes())
    entry.unlink()
    entry.symlink_to(target)
    assert not seccomp.compile(prof, cache_dir=str(cache)).cached


def test_seccomp_prepare_uses_compile_cache(tmp_path):
    cache = str(tmp_path / "cache")
    linux = {"seccomp": docker_like_profile()}
    security.prepare({}, linux, seccomp_cache=cache)
    p = security.prepare({}, linux, seccomp_cache=cache)
    assert p.seccomp.cached
