"""Process security of real containers (`ocirt run` / `create`): what the container's process
reads back from /proc/self about the configured capabilities, no_new_privs, seccomp, rlimits
and oom_score_adj; config errors at create; and the same configs side by side with runc.

Intended differences from runc 1.1.5: none for unknown capability names (both log
a warning and run the container); readonlyPaths are also nosuid, nodev,
noexec here."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from docker_profile import docker_like_profile  # noqa: E402
from ocirt_testlib import cgroup_dirs_named, pids_with_cmdline, run_out  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

# ocirt spec's default set: CAP_AUDIT_WRITE (29), CAP_KILL (5), CAP_NET_BIND_SERVICE (10).
DEFAULT_MASK = (1 << 29) | (1 << 5) | (1 << 10)
CAP_KEYS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
STATUS = "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status"
LIMIT_ROWS = {"RLIMIT_NOFILE": "Max open files", "RLIMIT_NPROC": "Max processes",
              "RLIMIT_CORE": "Max core file size", "RLIMIT_STACK": "Max stack size",
              "RLIMIT_MEMLOCK": "Max locked memory"}


def status(out: str) -> dict[str, str]:
    d = {}
    for line in out.splitlines():
        k, sep, v = line.partition(":")
        if sep and (k.startswith("Cap") or k in ("NoNewPrivs", "Seccomp")):
            d[k] = v.strip()
    return d


def caps(d: dict[str, str]) -> dict[str, int]:
    return {k: int(d[k], 16) for k in CAP_KEYS}


def limit_rows(out: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in out.splitlines():
        for name, row in LIMIT_ROWS.items():
            if line.startswith(row):
                soft, hard = line[len(row):].split()[:2]
                rows[name] = (soft, hard)
    return rows


def all_sets(names: list[str]) -> dict[str, list[str]]:
    return {s: list(names) for s in ("bounding", "effective", "permitted", "inheritable",
                                     "ambient")}


# --- values read back from inside ----------------------------------------------------------

def test_default_spec_caps_are_exactly_the_three_default_caps(ocirt, bundle, cid):
    d = status(run_out(ocirt, bundle, cid, STATUS))
    assert caps(d) == {"CapInh": 0, "CapPrm": DEFAULT_MASK, "CapEff": DEFAULT_MASK,
                       "CapBnd": DEFAULT_MASK, "CapAmb": 0}
    assert d["NoNewPrivs"] == "1"
    assert d["Seccomp"] == "0"


def test_non_root_user_keeps_ambient_caps_across_execve(ocirt, bundle, cid):
    names = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    want = (1 << 5) | (1 << 10)
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.config["process"]["capabilities"] = all_sets(names)
    d = status(run_out(ocirt, bundle, cid, "id -u; " + STATUS))
    assert caps(d) == {k: want for k in CAP_KEYS}


def test_non_root_user_without_ambient_loses_caps_at_execve(ocirt, bundle, cid):
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    d = status(run_out(ocirt, bundle, cid, STATUS))
    assert caps(d) == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": DEFAULT_MASK,
                       "CapAmb": 0}


def test_empty_capability_sets_give_no_caps_at_all(ocirt, bundle, cid):
    bundle.config["process"]["capabilities"] = all_sets([])
    d = status(run_out(ocirt, bundle, cid, STATUS))
    assert caps(d) == {k: 0 for k in CAP_KEYS}


def test_no_new_privileges_false_reads_0(ocirt, bundle, cid):
    bundle.config["process"]["noNewPrivileges"] = False
    assert status(run_out(ocirt, bundle, cid, STATUS))["NoNewPrivs"] == "0"


def errno_profile(errno: int = 42) -> dict:
    return {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": errno}]}


def test_seccomp_profile_sets_mode_2(ocirt, bundle, cid):
    bundle.config["linux"]["seccomp"] = errno_profile()
    assert status(run_out(ocirt, bundle, cid, STATUS))["Seccomp"] == "2"


@pytest.mark.parametrize("nnp", [True, False])
def test_seccomp_errno_ret_is_what_the_blocked_syscall_returns(ocirt, bundle, cid, nnp):
    bundle.config["process"]["noNewPrivileges"] = nnp
    bundle.config["linux"]["seccomp"] = errno_profile(42)
    bundle.sh("mkdir /tmp/blocked; echo rc=$?; ls -d /tmp; " + STATUS)
    p = ocirt("run", "--bundle", str(bundle.path), cid)
    assert p.returncode == 0, p.stderr
    out, err = p.stdout.decode(), p.stderr.decode()
    assert "rc=1" in out
    assert os.strerror(42) in err     # ENOMSG: "No message of desired type"
    assert "/tmp\n" in out
    d = status(out)
    assert d["Seccomp"] == "2"
    # Without no_new_privs the init kept CAP_SYS_ADMIN only until the filter was loaded.
    assert caps(d)["CapEff"] == DEFAULT_MASK


def test_docker_like_default_profile_runs_a_normal_workload(ocirt, bundle, cid):
    bundle.config["linux"]["seccomp"] = docker_like_profile()
    out = run_out(ocirt, bundle, cid, "ls /; cat /etc/passwd; echo ok; " + STATUS)
    assert "root:x:0:0" in out and "bin\n" in out and "ok\n" in out
    assert status(out)["Seccomp"] == "2"


def test_docker_like_default_profile_blocks_privileged_syscalls(ocirt, bundle, cid):
    bundle.config["linux"]["seccomp"] = docker_like_profile()
    bundle.config["process"]["capabilities"] = all_sets(["CAP_SYS_ADMIN"])
    bundle.sh("mount -t tmpfs none /tmp; echo mount=$?; unshare -n true 2>&1; echo unshare=$?;"
              "grep -c ' /tmp ' /proc/self/mountinfo")
    p = ocirt("run", "--bundle", str(bundle.path), cid)
    out = p.stdout.decode()
    # Both fail with the profile's default EPERM although CAP_SYS_ADMIN is held (busybox
    # mount words EPERM as "permission denied").
    assert "mount=1" in out and "unshare=1" in out, out
    assert "unshare(0x40000000): Operation not permitted" in out
    assert out.endswith("\n0\n")


RLIMITS = [{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512},
           {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
           {"type": "RLIMIT_CORE", "soft": 4096, "hard": 8192},
           {"type": "RLIMIT_MEMLOCK", "soft": 65536, "hard": 131072}]


def test_configured_rlimits_read_back_in_proc_self_limits(ocirt, bundle, cid):
    bundle.config["process"]["rlimits"] = RLIMITS
    rows = limit_rows(run_out(ocirt, bundle, cid, "cat /proc/self/limits"))
    assert rows["RLIMIT_NOFILE"] == ("256", "512")
    assert rows["RLIMIT_NPROC"] == ("300", "400")
    assert rows["RLIMIT_CORE"] == ("4096", "8192")
    assert rows["RLIMIT_MEMLOCK"] == ("65536", "131072")


def test_rlimits_apply_to_processes_joining_with_exec(ocirt, bundle, cid):
    bundle.config["process"]["rlimits"] = RLIMITS
    bundle.args("sleep", "60")
    ocirt.ok("run", "-d", "--bundle", str(bundle.path), cid)
    rows = limit_rows(ocirt.ok("exec", cid, "cat", "/proc/self/limits").stdout.decode())
    assert rows["RLIMIT_NOFILE"] == ("256", "512")
    assert rows["RLIMIT_CORE"] == ("4096", "8192")


@pytest.mark.parametrize("adj", [500, 1000])
def test_oom_score_adj_reads_back(ocirt, bundle, cid, adj):
    bundle.config["process"]["oomScoreAdj"] = adj
    assert run_out(ocirt, bundle, cid, "cat /proc/self/oom_score_adj") == f"{adj}\n"


# --- config errors at create -----------------------------------------------------------------

def assert_nothing_left(ocirt, cid):
    assert ocirt.ids() == []
    assert cgroup_dirs_named(cid) == []
    assert pids_with_cmdline(cid) == []


def test_unknown_rlimit_type_fails_create_naming_the_field(ocirt, bundle, cid):
    bundle.config["process"]["rlimits"].append({"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1})
    bundle.write()
    p = ocirt("create", "--bundle", str(bundle.path), cid)
    err = p.stderr.decode()
    assert p.returncode != 0
    assert "process.rlimits[1].type" in err and "RLIMIT_BOGUS" in err, err
    assert_nothing_left(ocirt, cid)


def test_unknown_capability_is_a_warning_and_the_rest_are_granted(ocirt, bundle, cid):
    bundle.config["process"]["capabilities"]["effective"].append("CAP_BOGUS")
    bundle.sh("grep CapEff /proc/self/status")
    p = ocirt("run", "--bundle", str(bundle.path), cid)
    err = p.stderr.decode()
    assert p.returncode == 0, err
    assert "level=warning" in err and "process.capabilities.effective[3]" in err, err
    assert "CAP_BOGUS" in err
    assert p.stdout.decode().split() == ["CapEff:", "0000000020000420"]


# --- side by side with runc -------------------------------------------------------------------

def _no_runc():
    return shutil.which("runc") is None


CONFIGS = {
    "default": lambda c: None,
    "nonroot-ambient": lambda c: c["process"].update(
        user={"uid": 1000, "gid": 1000},
        capabilities=all_sets(["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"])),
    "empty-caps": lambda c: c["process"].update(capabilities=all_sets([])),
    "nnp-off-seccomp-rlimits-oom": lambda c: (
        c["process"].update(noNewPrivileges=False, rlimits=RLIMITS, oomScoreAdj=300),
        c["linux"].update(seccomp=errno_profile(42))),
    "docker-profile-nonroot": lambda c: (
        c["process"].update(user={"uid": 1000, "gid": 1000}),
        c["linux"].update(seccomp=docker_like_profile())),
}
COMPARE = (STATUS + "; cat /proc/self/limits; echo oom=$(cat /proc/self/oom_score_adj); "
           "mkdir /tmp/x-$$ 2>&1; echo mkdir=$?; rmdir /tmp/x-$$ 2>/dev/null; true")


@pytest.mark.skipif(_no_runc(), reason="needs runc")
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_same_process_security_as_runc(ocirt, bundle, cid, rootfs_template, tmp_path, name):
    bundle.own_rootfs(rootfs_template)
    CONFIGS[name](bundle.config)
    bundle.sh(COMPARE)
    ours = ocirt("run", "--bundle", str(bundle.path), cid)
    assert ours.returncode == 0, ours.stderr
    # runc 1.1.5 on a copy of the very same bundle (same config.json, same rootfs).
    rb = tmp_path / "runc-bundle"
    rb.mkdir()
    cfg = copy.deepcopy(bundle.config)
    cfg["root"]["path"] = str(bundle.path / "rootfs")
    (rb / "config.json").write_text(json.dumps(cfg))
    root = tmp_path / "runc-root"
    rid = cid + "-runc"
    try:
        theirs = subprocess.run(["runc", "--root", str(root), "run", "-b", str(rb), rid],
                                stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    finally:
        subprocess.run(["runc", "--root", str(root), "delete", "-f", rid], capture_output=True)
    assert theirs.returncode == 0, theirs.stderr
    a, b = ours.stdout.decode(), theirs.stdout.decode()
    assert status(a) == status(b)
    assert limit_rows(a) == limit_rows(b)
    oom = [l for l in a.splitlines() if l.startswith("oom=")]
    assert oom == [l for l in b.splitlines() if l.startswith("oom=")]
    assert [l for l in a.splitlines() if l.startswith("mkdir")] == \
        [l for l in b.splitlines() if l.startswith("mkdir")]
