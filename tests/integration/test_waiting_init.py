"""Between create and start the container's init waits in ocirt-wait (ocirt/init/waiter.py), a
static program of a few pages, instead of the interpreter: what that changes (its memory) and
what it must not (the process that start releases, its credentials and filter, kill, errors)."""

from __future__ import annotations

import os
import select
import subprocess
import time

import pytest

from ocirt_testlib import proc_status as status, run_out, with_userns

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64",
                                reason="ocirt-wait is built for x86-64 only")

STATUS_KEYS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")
DENY_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                            "errnoRet": 1}]}


def created_pid(ocirt, bundle, cid) -> int:
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    return ocirt.state(cid)["pid"]


def exe(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/exe")


def execs(pid: int, name: str) -> None:
    """Wait until the init has exec'd `name`: `start` returns once the init answered, just
    before its exec."""
    end = time.monotonic() + 10
    while status(pid)["Name"] != name:
        assert time.monotonic() < end, f"the init did not exec {name}: {status(pid)['Name']}"
        time.sleep(0.01)


def test_a_created_container_waits_in_ocirt_wait_holding_a_few_pages(ocirt, bundle, cid):
    bundle.args("sleep", "60")
    pid = created_pid(ocirt, bundle, cid)
    assert exe(pid).startswith("/memfd:ocirt-wait")
    st = status(pid)
    assert st["Name"] == "ocirt:[wait]"
    assert int(st["VmRSS"].split()[0]) < 1024, st["VmRSS"]     # kB; the interpreter needs ~10 MiB
    assert ocirt.state(cid)["status"] == "created"


def test_start_releases_the_container_process_from_ocirt_wait(ocirt, bundle, cid):
    bundle.args("sleep", "60")
    pid = created_pid(ocirt, bundle, cid)
    ocirt.ok("start", cid)
    assert ocirt.state(cid)["status"] == "running"
    execs(pid, "sleep")
    assert exe(pid) == "/bin/busybox"              # as the container's mount namespace names it


# A dumpable process's /proc/PID files (not the directory) belong to its euid, a non-dumpable
# one's to the root of the user namespace that owns its memory.

def test_the_waiting_init_of_a_non_root_process_is_not_dumpable(ocirt, bundle, cid):
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.args("sleep", "60")
    pid = created_pid(ocirt, bundle, cid)
    assert status(pid)["Uid"].split()[0] == "1000"
    assert os.stat(f"/proc/{pid}/environ").st_uid == 0
    # uid 1000 on the host cannot read the init that runs as uid 1000.
    p = subprocess.run(["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "cat",
                        f"/proc/{pid}/environ"], capture_output=True)
    assert p.returncode != 0 and b"Permission denied" in p.stderr, p


def test_the_waiting_init_in_a_user_namespace_belongs_to_the_host(ocirt, bundle, cid,
                                                                  reachable_rootfs):
    # Its memory stays owned by the host's user namespace, as the interpreter's did: neither
    # the mapped container root (host uid 100000) nor its user namespace owns its /proc files.
    # (PR_SET_DUMPABLE alone would leave them to the namespace's root, 100000: this is the
    # kernel's doing, for a program the init could not read.)
    with_userns(bundle)
    bundle.args("sleep", "60")
    pid = created_pid(ocirt, bundle, cid)
    assert exe(pid).startswith("/memfd:ocirt-wait")
    assert status(pid)["Uid"].split()[0] == "100000"
    assert os.stat(f"/proc/{pid}/environ").st_uid == 0


def test_the_container_process_has_the_capabilities_runc_gives_it_as_root(ocirt, runc, bundle,
                                                                        cid):
    script = "grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status"
    assert run_out(ocirt, bundle, cid, script) == run_out(runc, bundle, cid + "-runc", script)


def test_the_container_process_has_the_capabilities_runc_gives_it_as_a_user(ocirt, runc, bundle,
                                                                          cid):
    caps = ["CAP_NET_BIND_SERVICE", "CAP_KILL"]
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.process["capabilities"] = {"bounding": caps + ["CAP_CHOWN"], "permitted": caps,
                                      "effective": caps, "inheritable": caps,
                                      "ambient": ["CAP_NET_BIND_SERVICE"]}
    script = "grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status"
    out = run_out(ocirt, bundle, cid, script)
    assert "CapAmb:\t0000000000000400" in out, out
    assert out == run_out(runc, bundle, cid + "-runc", script)


def test_the_seccomp_filter_is_loaded_after_the_wait(ocirt, bundle, cid):
    bundle.process["noNewPrivileges"] = True
    bundle.config["linux"]["seccomp"] = DENY_MKDIR
    bundle.sh("mkdir /tmp/x 2>&1; exec sleep 60")
    pid = created_pid(ocirt, bundle, cid)
    assert exe(pid).startswith("/memfd:ocirt-wait")
    assert status(pid)["Seccomp"] == "0"        # nothing the init does before start is filtered
    ocirt.ok("start", cid)
    execs(pid, "sleep")
    assert status(pid)["Seccomp"] == "2"
    assert status(pid)["NoNewPrivs"] == "1"


def test_the_seccomp_filter_applies_to_the_container_process(ocirt, bundle, cid):
    bundle.process["noNewPrivileges"] = True
    bundle.config["linux"]["seccomp"] = DENY_MKDIR
    out = run_out(ocirt, bundle, cid, "mkdir /tmp/x 2>&1; echo status=$?")
    assert "Operation not permitted" in out and "status=1" in out, out


@pytest.mark.parametrize("signal", ["HUP", "INT", "QUIT", "TERM"])
def test_kill_ends_a_created_container_waiting_in_ocirt_wait(ocirt, bundle, cid, signal):
    bundle.args("sleep", "60")
    pid = created_pid(ocirt, bundle, cid)
    pidfd = os.pidfd_open(pid)
    try:
        ocirt.ok("kill", cid, signal)
        assert select.select([pidfd], [], [], 10)[0], "the init outlived the signal"
    finally:
        os.close(pidfd)
    assert ocirt.state(cid)["status"] == "stopped"


def _exec_failure_after_start(ocirt, bundle, cid, rootfs, tmp_path) -> str:
    """Create with a `/bin/gone` that is removed before start, so that the exec after the wait
    fails; returns what the init wrote on its stderr."""
    (rootfs / "bin" / "gone").symlink_to("busybox")
    bundle.args("/bin/gone", "60")
    err = tmp_path / f"{cid}.err"
    with open(err, "wb") as f:
        subprocess.run(ocirt.cmd("create", "--bundle", str(bundle.path), cid),
                       stdin=subprocess.DEVNULL, stdout=f, stderr=f, check=True, timeout=60)
    pid = ocirt.state(cid)["pid"]
    (rootfs / "bin" / "gone").unlink()
    pidfd = os.pidfd_open(pid)
    try:
        ocirt.ok("start", cid)
        assert select.select([pidfd], [], [], 10)[0], "the init did not exit"
    finally:
        os.close(pidfd)
    return err.read_text()


def test_an_exec_that_fails_after_start_says_why_as_the_interpreter_did(ocirt, bundle, cid,
                                                                       rootfs_template, tmp_path):
    rootfs = bundle.own_rootfs(rootfs_template)
    waited = _exec_failure_after_start(ocirt, bundle, cid, rootfs, tmp_path)
    bundle.init_waits_in_python()
    python = _exec_failure_after_start(ocirt, bundle, cid + "-py", rootfs, tmp_path)
    assert waited == python == "exec '/bin/gone': No such file or directory\n"


def test_without_no_new_privileges_the_filter_is_loaded_before_the_wait_as_runc_does(
        ocirt, runc, bundle, cid):
    bundle.process["noNewPrivileges"] = False
    bundle.config["linux"]["seccomp"] = DENY_MKDIR
    bundle.args("sleep", "60")
    pid = created_pid(ocirt, bundle, cid)
    runc_pid = created_pid(runc, bundle, cid + "-runc")
    assert exe(pid).startswith("/memfd:ocirt-wait")
    assert status(pid)["Seccomp"] == status(runc_pid)["Seccomp"] == "2"
    assert status(pid)["NoNewPrivs"] == "0"


def test_without_no_new_privileges_the_filter_applies_to_the_container_process(ocirt, bundle,
                                                                             cid):
    bundle.process["noNewPrivileges"] = False
    bundle.config["linux"]["seccomp"] = DENY_MKDIR
    out = run_out(ocirt, bundle, cid, "mkdir /tmp/x 2>&1; echo status=$?")
    assert "Operation not permitted" in out and "status=1" in out, out


def test_a_user_under_a_filter_without_no_new_privileges_has_the_capabilities_runc_gives(
        ocirt, runc, bundle, cid):
    # The init keeps CAP_SYS_ADMIN to load the filter, then drops it: none of it may remain.
    caps = ["CAP_NET_BIND_SERVICE", "CAP_KILL"]
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.process["noNewPrivileges"] = False
    bundle.process["capabilities"] = {"bounding": caps, "permitted": caps, "effective": caps,
                                      "inheritable": caps, "ambient": ["CAP_KILL"]}
    bundle.config["linux"]["seccomp"] = DENY_MKDIR
    script = "grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status"
    out = run_out(ocirt, bundle, cid, script)
    assert "CapAmb:\t0000000000000020" in out and "Seccomp:\t2" in out, out
    assert out == run_out(runc, bundle, cid + "-runc", script)


@pytest.mark.parametrize("config", ["startContainer hook", "personality",
                                    "a filter without noNewPrivileges that refuses execveat"])
def test_the_interpreter_keeps_waiting_where_a_second_exec_would_change_things(
        ocirt, bundle, cid, config):
    if config == "startContainer hook":
        bundle.init_waits_in_python()
    elif config == "personality":
        bundle.config["linux"]["personality"] = {"domain": "LINUX"}
    else:
        bundle.process["noNewPrivileges"] = False
        bundle.config["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["execveat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    bundle.args("sleep", "60")
    pid = created_pid(ocirt, bundle, cid)
    assert os.path.samefile(f"/proc/{pid}/exe", os.path.realpath("/usr/bin/python3"))
    ocirt.ok("start", cid)
    execs(pid, "sleep")
