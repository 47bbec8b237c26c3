"""checkpoint and restore where criu cannot work (this host's kernel: criu fails in its kernel
checks): a clear one-line error quoting criu's own log, exit 1, the container left running and
untouched; a failed restore leaves nothing behind. The command-line checks that come before
criu runs are compared with runc 1.1.5. Where criu works (`criu check` passes), the real
behaviour is tested in the guest (tests/guest/test_checkpoint.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest

from ocirt_testlib import host_mounts, rt, unique_id, wait_status  # noqa: F401

COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done"


def _criu_works() -> bool:
    if shutil.which("criu") is None:
        return False
    return subprocess.run(["criu", "check"], capture_output=True).returncode == 0


needs_broken_criu = pytest.mark.skipif(
    shutil.which("criu") is None or _criu_works(),
    reason="needs an installed criu that fails on this kernel (where it works, "
           "tests/guest/test_checkpoint.py runs)")


def _error_lines(stderr: bytes) -> list[str]:
    return [line for line in stderr.decode().splitlines() if "level=error" in line]


@pytest.fixture
def counting(ocirt, bundle, rootfs_template, cid) -> int:
    """A running container counting into /tmp/count of its own rootfs copy; its init pid."""
    bundle.own_rootfs(rootfs_template)
    bundle.sh(COUNTER)
    ocirt.ok("run", "--detach", "--bundle", str(bundle.path), cid, stdin=subprocess.DEVNULL)
    return ocirt.state(cid)["pid"]


def _count(pid: int) -> int:
    for _ in range(100):
        text = open(f"/proc/{pid}/root/tmp/count").read().strip()
        if text:
            return int(text)
        time.sleep(0.01)
    raise AssertionError("the counter wrote nothing")


def _still_counting(pid: int) -> None:
    before = _count(pid)
    deadline = time.monotonic() + 10
    while _count(pid) <= before:
        assert time.monotonic() < deadline, "the container stopped counting"
        time.sleep(0.05)


@needs_broken_criu
def test_failed_checkpoint_quotes_criu_in_one_line_and_exits_1(ocirt, counting, cid, tmp_path):
    work = tmp_path / "work"
    p = ocirt("checkpoint", "--image-path", str(tmp_path / "img"), "--work-path", str(work), cid)
    assert p.returncode == 1
    lines = _error_lines(p.stderr)
    assert len(lines) == 1, p.stderr
    msg = json.loads(lines[0].split(" msg=", 1)[1])
    assert msg.startswith("criu failed: type DUMP: ")
    # criu's own words, from the log it was told to write in the work path
    log = (work / "dump.log").read_text()
    criu_errors = [line.split("): ", 1)[1] for line in log.splitlines() if "Error (" in line]
    assert criu_errors and criu_errors[-1] in msg
    assert f"(log file: {work}/dump.log)" in msg


@needs_broken_criu
def test_failed_checkpoint_leaves_the_container_running_and_untouched(ocirt, counting, cid,
                                                                       tmp_path):
    pid = counting
    ocirt("checkpoint", "--image-path", str(tmp_path / "img"), cid)
    st = ocirt.state(cid)
    assert st["status"] == "running" and st["pid"] == pid
    assert "State:\tS" in open(f"/proc/{pid}/status").read() or \
           "State:\tR" in open(f"/proc/{pid}/status").read()
    _still_counting(pid)                      # not frozen, not stopped, not restarted
    assert ocirt.ok("exec", cid, "true").returncode == 0


@needs_broken_criu
def test_failed_checkpoint_without_work_path_logs_in_the_image_path(ocirt, counting, cid,
                                                                    tmp_path):
    img = tmp_path / "img"
    p = ocirt("checkpoint", "--image-path", str(img), cid)
    assert p.returncode == 1
    assert f"(log file: {img}/dump.log)" in p.stderr.decode()
    assert (img / "dump.log").exists()


@needs_broken_criu
def test_checkpoint_with_leave_running_fails_the_same_way(ocirt, counting, cid, tmp_path):
    p = ocirt("checkpoint", "--leave-running", "--image-path", str(tmp_path / "img"), cid)
    assert p.returncode == 1 and "criu failed: type DUMP" in p.stderr.decode()
    _still_counting(counting)


@needs_broken_criu
def test_failed_pre_dump_names_its_type(ocirt, counting, cid, tmp_path):
    p = ocirt("checkpoint", "--pre-dump", "--image-path", str(tmp_path / "img"), cid)
    assert p.returncode == 1 and "criu failed: type PRE_DUMP" in p.stderr.decode()
    _still_counting(counting)


@needs_broken_criu
def test_failed_restore_leaves_no_state_cgroup_mount_or_process(ocirt, bundle, cid, tmp_path):
    img = tmp_path / "img"
    img.mkdir()
    (img / "descriptors.json").write_text('["/dev/null", "/dev/null", "/dev/null"]')
    mounts = host_mounts()
    p = ocirt("restore", "-d", "--image-path", str(img), "--work-path", str(tmp_path / "w"),
              "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    assert len(_error_lines(p.stderr)) == 1 and "criu failed: type RESTORE" in p.stderr.decode()
    assert ocirt.ids() == []
    assert host_mounts() == mounts
    from ocirt_testlib import cgroup_dirs_named
    assert cgroup_dirs_named(cid) == []


# --- checks made before criu runs, side by side with runc ---------------------------------

def _msg(p) -> str:
    """The last error line (runc writes its deferred destroy's "container still running"
    before the option error it fails with)."""
    lines = [line for line in p.stderr.splitlines() if "level=error" in line]
    assert lines, p.stderr
    return json.loads(lines[-1].split(" msg=", 1)[1])


@pytest.fixture
def running_sleep(rt, bundle) -> str:
    c = unique_id()
    bundle.args("sleep", "1000")
    rt("run", "--detach", "--bundle", str(bundle.path), c, stdin=subprocess.DEVNULL)
    return c


def test_checkpoint_of_an_unknown_container_says_it_does_not_exist(rt, tmp_path):
    p = rt("checkpoint", "--image-path", str(tmp_path / "img"), "nosuch")
    assert p.returncode == 1 and _msg(p) == "container does not exist"


def test_checkpoint_of_a_created_container_is_refused(rt, bundle, tmp_path):
    c = unique_id()
    bundle.args("sleep", "1000")
    rt("create", "--bundle", str(bundle.path), c, stdin=subprocess.DEVNULL)
    p = rt("checkpoint", "--image-path", str(tmp_path / "img"), c)
    assert p.returncode == 1
    assert _msg(p) == "Container cannot be checkpointed in created state"


def test_checkpoint_of_a_stopped_container_is_refused(rt, bundle, tmp_path):
    c = unique_id()
    bundle.args("true")
    rt("run", "--detach", "--bundle", str(bundle.path), c, stdin=subprocess.DEVNULL)
    wait_status(rt, c, "stopped")
    p = rt("checkpoint", "--image-path", str(tmp_path / "img"), c)
    assert p.returncode == 1
    assert _msg(p) == "Container cannot be checkpointed in stopped state"


def test_checkpoint_parent_path_must_be_relative(rt, running_sleep, tmp_path):
    p = rt("checkpoint", "--parent-path", str(tmp_path / "parent"), "--image-path",
           str(tmp_path / "img"), running_sleep)
    assert p.returncode == 1 and _msg(p) == "--parent-path must be relative"
    assert wait_status(rt, running_sleep, "running")


def test_checkpoint_parent_path_must_exist(rt, running_sleep, tmp_path):
    img = tmp_path / "img"
    p = rt("checkpoint", "--parent-path", "../parent", "--image-path", str(img), running_sleep)
    assert p.returncode == 1
    assert _msg(p) == f"invalid --parent-path: stat {tmp_path}/parent: no such file or directory"


@pytest.mark.parametrize("flag, value, message", [
    ("--manage-cgroups-mode", "ignore", "Invalid manage cgroups mode"),
    ("--empty-ns", "pid", 'namespace "pid" is not supported'),
    ("--page-server", "nowhere", "Use --page-server ADDRESS:PORT to specify page server"),
    ("--page-server", "127.0.0.1:http", "Invalid port number"),
])
def test_checkpoint_refuses_a_bad_option_value(rt, running_sleep, tmp_path, flag, value,
                                               message):
    p = rt("checkpoint", flag, value, "--image-path", str(tmp_path / "img"), running_sleep)
    assert p.returncode == 1 and _msg(p) == message
    assert wait_status(rt, running_sleep, "running")


def test_checkpoint_makes_the_image_directory(rt, running_sleep, tmp_path):
    img = tmp_path / "a" / "img"
    rt("checkpoint", "--manage-cgroups-mode", "bad", "--image-path", str(img), running_sleep)
    assert img.is_dir()


def test_restore_without_descriptors_names_the_missing_file(rt, bundle, tmp_path):
    img = tmp_path / "img"
    p = rt("restore", "-d", "--image-path", str(img), "--bundle", str(bundle.path),
           unique_id())
    assert p.returncode == 1
    assert _msg(p) == f"open {img}/descriptors.json: no such file or directory"
    assert os.listdir(rt.root) == []


def test_restore_of_an_existing_id_is_refused(rt, running_sleep, bundle, tmp_path):
    img = tmp_path / "img"
    img.mkdir()
    (img / "descriptors.json").write_text("[]")
    p = rt("restore", "-d", "--image-path", str(img), "--bundle", str(bundle.path),
           running_sleep)
    assert p.returncode == 1 and _msg(p) == "container with given ID already exists"
    assert wait_status(rt, running_sleep, "running")


def test_the_global_criu_flag_names_the_criu_binary(ocirt, bundle, cid, tmp_path):
    bundle.args("sleep", "1000")
    ocirt.ok("run", "--detach", "--bundle", str(bundle.path), cid, stdin=subprocess.DEVNULL)
    missing = tmp_path / "no-criu"
    p = ocirt("checkpoint", "--image-path", str(tmp_path / "img"), cid,
              global_args=("--criu", str(missing)))
    assert p.returncode == 1
    assert _error_lines(p.stderr) and f"cannot run {missing}: No such file or directory" in \
        p.stderr.decode()
    assert ocirt.state(cid)["status"] == "running"
