"""rlimits, oom_score_adj, I/O priority, scheduler, personality and LSM labels, checked from the
exec'd busybox (real kernel, forked child)."""

import os

import pytest

from procsec_helpers import run

from ocirt.errors import SetupError
from ocirt.process import caps as capsmod
from ocirt.process import rlimits as rlmod
from ocirt.process import security
from ocirt.security import _procfs, lsm
from ocirt.linux import syscalls as sc

INF = (1 << 64) - 1


def _sh(cmd):
    return ["busybox", "sh", "-c", cmd]


def _limits_row(out, label):
    for line in out.splitlines():
        if line.startswith(label):
            return line[len(label):].split()[:2]
    raise KeyError(label)


def _have_cap(num):
    return bool(capsmod.capget()[0] >> num & 1)


def test_proc_rlimits_rows_in_proc_self_limits():
    cur_soft, cur_hard = rlmod.getrlimit(rlmod.RLIMITS["RLIMIT_NOFILE"])
    hard = min(cur_hard, 4096)
    nproc = min(rlmod.getrlimit(rlmod.RLIMITS["RLIMIT_NPROC"])[1], 100000)
    r = run({"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": hard},
                         {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
                         {"type": "RLIMIT_NPROC", "soft": nproc, "hard": nproc}]},
            argv=["busybox", "cat", "/proc/self/limits"])
    assert r.exitcode == 0, r
    assert _limits_row(r.out, "Max open files") == ["512", str(hard)]
    assert _limits_row(r.out, "Max core file size") == ["0", "0"]
    assert _limits_row(r.out, "Max processes") == [str(nproc)] * 2


def test_proc_rlimit_infinity_shows_unlimited():
    r = run({"rlimits": [{"type": "RLIMIT_CPU", "soft": INF, "hard": INF}]},
            argv=["busybox", "cat", "/proc/self/limits"])
    assert r.exitcode == 0, r
    assert _limits_row(r.out, "Max cpu time") == ["unlimited", "unlimited"]


def test_proc_rlimit_raising_hard_without_cap_sys_resource_fails():
    if _have_cap(24):
        pytest.skip("this host's root has CAP_SYS_RESOURCE")
    _soft, hard = rlmod.getrlimit(rlmod.RLIMITS["RLIMIT_NOFILE"])
    if hard == INF:
        pytest.skip("RLIMIT_NOFILE hard limit already unlimited")
    r = run({"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": hard + 1}]})
    assert r.exitcode == 121
    assert "SetupError" in r.err and "RLIMIT_NOFILE" in r.err and "CAP_SYS_RESOURCE" in r.err


def test_proc_oom_score_adj_written():
    with open("/proc/self/oom_score_adj") as f:
        cur = int(f.read())
    want = min(cur + 123, 1000)
    r = run({"oomScoreAdj": want}, argv=["busybox", "cat", "/proc/self/oom_score_adj"])
    assert r.exitcode == 0, r
    assert int(r.out) == want


def test_proc_oom_score_adj_untouched_when_absent():
    with open("/proc/self/oom_score_adj") as f:
        cur = int(f.read())
    r = run({}, argv=["busybox", "cat", "/proc/self/oom_score_adj"])
    assert int(r.out) == cur


def test_proc_io_priority_idle_class():
    r = run({"ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}},
            argv=_sh("ionice -p $$"))
    assert r.exitcode == 0, r
    assert r.out.strip().startswith("idle"), r.out


def test_proc_io_priority_best_effort_level():
    r = run({"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 6}},
            argv=_sh("ionice -p $$"))
    assert r.exitcode == 0, r
    assert r.out.strip() == "best-effort: prio 6"


def _stat_fields(out):
    # /proc/self/stat: comm may contain spaces; fields after ')' start at field 3
    rest = out[out.rindex(")") + 2:].split()
    return {"nice": int(rest[19 - 3]), "rt_priority": int(rest[40 - 3]),
            "policy": int(rest[41 - 3])}


def test_proc_scheduler_batch_with_nice():
    r = run({"scheduler": {"policy": "SCHED_BATCH", "nice": 7}},
            argv=["busybox", "cat", "/proc/self/stat"])
    assert r.exitcode == 0, r
    f = _stat_fields(r.out)
    assert (f["policy"], f["nice"]) == (3, 7)


def test_proc_scheduler_idle_policy():
    r = run({"scheduler": {"policy": "SCHED_IDLE"}}, argv=["busybox", "cat", "/proc/self/stat"])
    assert r.exitcode == 0, r
    assert _stat_fields(r.out)["policy"] == 5


def test_proc_scheduler_fifo_priority():
    r = run({"scheduler": {"policy": "SCHED_FIFO", "priority": 10}},
            argv=["busybox", "cat", "/proc/self/stat"])
    if r.exitcode == 121 and "setting scheduler attributes" in r.err:
        pytest.skip("real-time scheduling refused on this host: " + r.err.strip())
    assert r.exitcode == 0, r
    f = _stat_fields(r.out)
    assert (f["policy"], f["rt_priority"]) == (1, 10)


def test_proc_personality_linux32():
    r = run({}, {"personality": {"domain": "LINUX32"}},
            argv=_sh("cat /proc/self/personality; uname -m"))
    assert r.exitcode == 0, r
    lines = r.out.split()
    assert lines[0] == "00000008"
    if os.uname().machine == "x86_64":
        assert lines[1] == "i686"


def test_proc_apparmor_profile_without_apparmor_is_an_error():
    if lsm.apparmor_enabled():
        pytest.skip("AppArmor is enabled here")
    with pytest.raises(SetupError, match="AppArmor is not enabled"):
        security.prepare({"apparmorProfile": "docker-default"}, {})


def test_proc_selinux_label_without_selinux_is_an_error():
    if lsm.selinux_enabled():
        pytest.skip("SELinux is enabled here")
    with pytest.raises(SetupError, match="SELinux is not enabled"):
        security.prepare({"selinuxLabel": "system_u:system_r:container_t:s0"}, {})


def test_proc_procfs_handle_is_private_instance_and_verified():
    with _procfs.ProcRoot() as proc:
        assert proc.private, "fsopen('proc') should work for root on Linux 5.2+"
        fd = proc.open("self/oom_score_adj", os.O_RDONLY)
        try:
            assert _procfs.fs_magic(fd) == sc.PROC_SUPER_MAGIC
        finally:
            os.close(fd)


def test_proc_procfs_handle_refuses_symlink_last_component():
    with _procfs.ProcRoot() as proc:
        with pytest.raises(OSError):
            proc.open("self/cwd", os.O_RDONLY)    # a magic link: O_NOFOLLOW refuses it


def test_proc_fs_magic_distinguishes_tmpfs_from_proc(tmp_path):
    fd = os.open("/dev/shm", os.O_PATH)
    try:
        assert _procfs.fs_magic(fd) != sc.PROC_SUPER_MAGIC
    finally:
        os.close(fd)


def test_proc_apply_steps_import_nothing_after_prepare():
    # Everything at once, with imports blocked after prepare() (as after pivot_root).
    names = ["CAP_KILL", "CAP_CHOWN"]
    proc = {"user": {"uid": 1000, "gid": 1000, "additionalGids": [5], "umask": 0o077},
            "capabilities": {s: names for s in ("bounding", "effective", "permitted",
                                                 "inheritable", "ambient")},
            "rlimits": [{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}],
            "oomScoreAdj": 1000, "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
            "scheduler": {"policy": "SCHED_BATCH", "nice": 1}}
    linux = {"personality": {"domain": "LINUX"},
             "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                         "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}}
    r = run(proc, linux, block_imports=True)
    assert r.exitcode == 0, r
    assert r.status_field("Seccomp") == "2"


def test_proc_import_blocker_in_helper_really_blocks():
    import sys
    if "colorsys" in sys.modules:
        pytest.skip("colorsys already imported")

    def fn():
        import colorsys  # noqa: F401
        return 0
    r = run({}, child_fn=fn, block_imports=True)
    assert r.exitcode == 121 and "after prepare" in r.err
