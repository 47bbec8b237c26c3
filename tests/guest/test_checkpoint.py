"""checkpoint and restore where criu works (the guest): a busybox loop whose memory must
survive keeps counting from where it was, runc's checkpoint.bats behaviours (v1.1.5), the
options, and podman's `container checkpoint`/`restore` with ocirt as its runtime. The main
cycle runs with runc 1.1.5 too, side by side.

The containers' stdio is /dev/null or pipes, never a file outside the container (criu cannot
dump a file it cannot reach from the container's mounts); each runtime call logs to a file
(--log, JSON) so its error can be read while the container still holds the stdio."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from ocirt_testlib import ConsoleSocket, read_until, rt, unique_id  # noqa: F401

pytestmark = pytest.mark.skipif(
    shutil.which("criu") is None
    or subprocess.run(["criu", "check"], capture_output=True).returncode != 0,
    reason="criu does not work on this kernel (`criu check` fails)")

# The memory state: `i` lives only in the shell. /tmp/started gets one line per start of the
# script, so a container run again from the beginning would show two. /tmp/count is replaced
# whole (a dump may stop the shell in the middle of a write).
COUNTER = ("echo started >> /tmp/started; i=0; while true; do i=$((i+1)); "
           "echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.2; done")
# runc's checkpoint.bats setup_pipes: the process answers lines of stdin on stdout
PONG = "for i in $(seq 10); do read xxx || continue; echo ponG $xxx; done"
TIMEOUT = 300   # criu under software emulation takes seconds per step


def call(rt, *args: str, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
         stderr=subprocess.DEVNULL, log: Path | None = None) -> tuple[int, str]:
    """(exit status, the error it logged) of one runtime call whose stdio is not a file."""
    log = log or Path(rt.root) / f".log-{unique_id()}"
    p = subprocess.run(rt.cmd(*args, log=str(log)), stdin=stdin, stdout=stdout,
                       stderr=stderr, timeout=TIMEOUT)
    errors = []
    if log.exists():
        for line in log.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("level") == "error":
                errors.append(entry["msg"])
        log.unlink()
    return p.returncode, "; ".join(errors)


def ok(rt, *args: str, **kw) -> None:
    status, err = call(rt, *args, **kw)
    assert status == 0, f"{rt.name} {' '.join(args)}: exit {status}: {err}"


def state(rt, cid: str) -> dict | None:
    p = subprocess.run(rt.cmd("state", cid), capture_output=True, timeout=TIMEOUT)
    return json.loads(p.stdout) if p.returncode == 0 else None


def counter_bundle(bundle, rootfs_template, script: str = COUNTER):
    bundle.own_rootfs(rootfs_template)
    bundle.config["root"]["readonly"] = False
    bundle.sh(script)
    return bundle


def read_int(path: Path) -> int:
    for _ in range(200):
        text = path.read_text().strip() if path.exists() else ""
        if text:
            return int(text)
        time.sleep(0.05)
    raise AssertionError(f"nothing in {path}")


def wait_count_above(path: Path, n: int, timeout: float = 60) -> int:
    end = time.monotonic() + timeout
    while (v := read_int(path)) <= n:
        assert time.monotonic() < end, f"{path} stayed at {v}, not above {n}"
        time.sleep(0.1)
    return v


def run_counting(rt, bundle, rootfs_template, *flags: str) -> tuple[str, Path]:
    """A running counter container (run -d with `flags`), counted past 2: (id, count file)."""
    counter_bundle(bundle, rootfs_template)
    cid = unique_id()
    ok(rt, "run", "-d", *flags, "--bundle", str(bundle.path), cid)
    count = bundle.path / "rootfs" / "tmp" / "count"
    wait_count_above(count, 2)
    return cid, count


def checkpoint_and_restore(rt, bundle, cid: str, count: Path, img: Path, *flags: str) -> int:
    """checkpoint and restore -d with the same `flags`; the count at the dump."""
    ok(rt, "checkpoint", *flags, "--image-path", str(img), cid)
    at_dump = read_int(count)
    ok(rt, "restore", "-d", *flags, "--image-path", str(img), "--bundle", str(bundle.path), cid)
    return at_dump


def cgroup_of(pid: int) -> str:
    return Path(f"/proc/{pid}/cgroup").read_text().strip().split("::", 1)[1]


@pytest.fixture
def counting(rt, bundle, rootfs_template, tmp_path):
    """A running counter container, counted up to 5 at least: (runtime, id, rootfs)."""
    counter_bundle(bundle, rootfs_template)
    cid = unique_id()
    ok(rt, "run", "--detach", "--bundle", str(bundle.path), cid)
    rootfs = bundle.path / "rootfs"
    wait_count_above(rootfs / "tmp" / "count", 5)
    return rt, cid, rootfs


# --- the cycle, with ocirt and with runc --------------------------------------------------

def test_checkpoint_stops_the_container_and_restore_keeps_counting_from_memory(
        counting, bundle, tmp_path):
    rt, cid, rootfs = counting
    count = rootfs / "tmp" / "count"
    old_pid = state(rt, cid)["pid"]
    old_cgroup = cgroup_of(old_pid)
    ok(rt, "checkpoint", "--work-path", str(tmp_path / "work"), "--image-path",
       str(tmp_path / "img"), cid)
    # gone as runc leaves it: `state` no longer knows it, its cgroup and process are gone
    assert state(rt, cid) is None
    assert not Path(f"/sys/fs/cgroup{old_cgroup}").exists()
    assert not Path(f"/proc/{old_pid}").exists()
    at_dump = read_int(count)
    ok(rt, "restore", "--detach", "--work-path", str(tmp_path / "work"), "--image-path",
       str(tmp_path / "img"), "--bundle", str(bundle.path), cid)
    st = state(rt, cid)
    assert st["status"] == "running"
    assert wait_count_above(count, at_dump) > at_dump
    assert (rootfs / "tmp" / "started").read_text() == "started\n"
    # the restored init is the container's pid, in the container's cgroup
    assert Path(f"/proc/{st['pid']}/root/tmp/count").exists()
    assert cid in cgroup_of(st["pid"])
    ok(rt, "kill", cid, "KILL")
    end = time.monotonic() + 60
    while state(rt, cid)["status"] != "stopped":
        assert time.monotonic() < end
        time.sleep(0.1)
    ok(rt, "delete", cid)
    assert state(rt, cid) is None


# --- ocirt's restored container, checked from outside --------------------------------------

@pytest.fixture
def ocirt_rt(tmp_path_factory):
    from ocirt_testlib import OCIRT, RT
    root = str(tmp_path_factory.mktemp("ocirt-root"))
    r = RT("ocirt", OCIRT, root)
    yield r
    for c in os.listdir(root):
        if not c.startswith("."):
            subprocess.run(r.cmd("delete", "--force", c), capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def restored(ocirt_rt, bundle, rootfs_template, tmp_path):
    """An ocirt counter container with a pids limit, checkpointed and restored with
    --work-path and --pid-file: (runtime, id, rootfs, work dir, image dir, pid file)."""
    bundle.config["linux"]["resources"] = {"pids": {"limit": 77}}
    counter_bundle(bundle, rootfs_template)
    rt, cid = ocirt_rt, unique_id()
    ok(rt, "run", "--detach", "--bundle", str(bundle.path), cid)
    rootfs = bundle.path / "rootfs"
    wait_count_above(rootfs / "tmp" / "count", 3)
    work, img, pid_file = tmp_path / "work", tmp_path / "img", tmp_path / "restored.pid"
    ok(rt, "checkpoint", "--work-path", str(work), "--image-path", str(img), cid)
    ok(rt, "restore", "-d", "--work-path", str(work), "--image-path", str(img),
       "--pid-file", str(pid_file), "--bundle", str(bundle.path), cid)
    return rt, cid, rootfs, work, img, pid_file


def test_restore_writes_the_restored_pid_to_the_pid_file(restored):
    rt, cid, _, _, _, pid_file = restored
    assert int(pid_file.read_text()) == state(rt, cid)["pid"]


def test_restored_container_gets_the_configs_resources_in_a_new_cgroup(restored):
    rt, cid, *_ = restored
    pid = state(rt, cid)["pid"]
    d = Path(f"/sys/fs/cgroup{cgroup_of(pid)}")
    assert (d / "pids.max").read_text().strip() == "77"
    assert str(pid) in (d / "cgroup.procs").read_text().split()


def test_work_path_holds_criu_logs_and_image_path_the_images(restored):
    _, _, _, work, img, _ = restored
    assert (work / "dump.log").exists() and (work / "restore.log").exists()
    assert (img / "inventory.img").exists() and (img / "descriptors.json").exists()
    assert not (img / "dump.log").exists()


def test_exec_runs_in_a_restored_container(restored):
    rt, cid, *_ = restored
    out = subprocess.run(rt.cmd("exec", "--cwd", "/bin", cid, "echo", "ok"),
                         capture_output=True, timeout=TIMEOUT)
    assert out.returncode == 0 and out.stdout == b"ok\n", out.stderr


def test_restored_container_can_be_checkpointed_and_restored_again(restored, bundle):
    rt, cid, rootfs, work, img, _ = restored
    count = rootfs / "tmp" / "count"
    ok(rt, "checkpoint", "--work-path", str(work), "--image-path", str(img), cid)
    at_dump = read_int(count)
    ok(rt, "restore", "-d", "--work-path", str(work), "--image-path", str(img),
       "--bundle", str(bundle.path), cid)
    assert wait_count_above(count, at_dump) > at_dump
    assert (rootfs / "tmp" / "started").read_text() == "started\n"


def test_delete_force_removes_a_restored_container_and_its_cgroup(restored):
    rt, cid, *_ = restored
    d = Path(f"/sys/fs/cgroup{cgroup_of(state(rt, cid)['pid'])}")
    ok(rt, "delete", "--force", cid)
    assert state(rt, cid) is None and not d.exists()


# --- options ------------------------------------------------------------------------------

def test_leave_running_keeps_the_container_running(ocirt_rt, bundle, rootfs_template,
                                                   tmp_path):
    rt = ocirt_rt
    cid, count = run_counting(rt, bundle, rootfs_template)
    pid = state(rt, cid)["pid"]
    ok(rt, "checkpoint", "--leave-running", "--image-path", str(tmp_path / "img"), cid)
    st = state(rt, cid)
    assert st["status"] == "running" and st["pid"] == pid
    assert (tmp_path / "img" / "inventory.img").exists()
    wait_count_above(count, read_int(count))


def _pipes():
    """(child's stdin, our stdin writer, our stdout reader, child's stdout) as runc's
    setup_pipes makes them."""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    return in_r, in_w, out_r, out_w


def test_pre_dump_then_dump_with_parent_path_restores_a_process_on_pipes(
        ocirt_rt, bundle, rootfs_template, tmp_path):
    counter_bundle(bundle, rootfs_template, PONG)
    rt, cid = ocirt_rt, unique_id()
    in_r, in_w, out_r, out_w = _pipes()
    try:
        ok(rt, "run", "-d", "--bundle", str(bundle.path), cid, stdin=in_r, stdout=out_w)
        (tmp_path / "parent-dir").mkdir()
        ok(rt, "checkpoint", "--pre-dump", "--image-path", str(tmp_path / "parent-dir"), cid)
        assert state(rt, cid)["status"] == "running"
        ok(rt, "checkpoint", "--parent-path", "../parent-dir", "--work-path",
           str(tmp_path / "work"), "--image-path", str(tmp_path / "image-dir"), cid)
        assert (tmp_path / "image-dir" / "parent").exists()
        assert state(rt, cid) is None
        ok(rt, "restore", "-d", "--work-path", str(tmp_path / "work"), "--image-path",
           str(tmp_path / "image-dir"), "--bundle", str(bundle.path), cid,
           stdin=in_r, stdout=out_w)
        assert state(rt, cid)["status"] == "running"
        os.write(in_w, b"Ping\n")
        assert b"ponG Ping" in read_until(out_r, b"ponG Ping", timeout=60)
    finally:
        for fd in (in_r, in_w, out_r, out_w):
            os.close(fd)


def test_manage_cgroups_mode_full_checkpoints_and_restores(ocirt_rt, bundle, rootfs_template,
                                                           tmp_path):
    rt = ocirt_rt
    cid, count = run_counting(rt, bundle, rootfs_template)
    at_dump = checkpoint_and_restore(rt, bundle, cid, count, tmp_path / "img",
                                     "--manage-cgroups-mode", "full")
    assert wait_count_above(count, at_dump) > at_dump


def test_restore_with_console_socket_hands_over_a_new_pty_master(ocirt_rt, bundle,
                                                                 rootfs_template, tmp_path):
    counter_bundle(bundle, rootfs_template)
    bundle.config["process"]["terminal"] = True
    bundle.write()
    rt, cid = ocirt_rt, unique_id()
    sock = ConsoleSocket(str(tmp_path / "console.sock"))
    got: list = []
    try:
        t = threading.Thread(target=lambda: got.append(sock.receive()))
        t.start()
        ok(rt, "run", "-d", "--console-socket", sock.path, "--bundle", str(bundle.path), cid)
        t.join(TIMEOUT)
        first = got.pop()[1]
        count = bundle.path / "rootfs" / "tmp" / "count"
        wait_count_above(count, 2)
        ok(rt, "checkpoint", "--image-path", str(tmp_path / "img"), cid)
        for fd in first:
            os.close(fd)
        t = threading.Thread(target=lambda: got.append(sock.receive()))
        t.start()
        ok(rt, "restore", "-d", "--console-socket", sock.path, "--image-path",
           str(tmp_path / "img"), "--bundle", str(bundle.path), cid)
        t.join(TIMEOUT)
        _name, fds = got.pop()
        assert len(fds) == 1 and os.isatty(fds[0])
        os.close(fds[0])
        at = read_int(count)
        assert wait_count_above(count, at) > at
    finally:
        sock.close()


def test_checkpoint_and_restore_take_runcs_boolean_options(ocirt_rt, bundle, rootfs_template,
                                                           tmp_path):
    rt = ocirt_rt
    cid, count = run_counting(rt, bundle, rootfs_template)
    at_dump = checkpoint_and_restore(rt, bundle, cid, count, tmp_path / "img",
                                     "--tcp-established", "--ext-unix-sk", "--file-locks",
                                     "--auto-dedup")
    assert wait_count_above(count, at_dump) > at_dump


# --- runc's checkpoint.bats, beyond the cycle ----------------------------------------------

def test_restore_recreates_the_mount_points_of_nested_bind_mounts(ocirt_rt, bundle,
                                                                  rootfs_template, tmp_path):
    bind1, bind2 = tmp_path / "bind1", tmp_path / "bind2"
    bind1.mkdir()
    bind2.mkdir()
    bundle.config["mounts"] += [
        {"type": "bind", "source": str(bind1), "destination": "/test", "options": ["rw", "bind"]},
        {"type": "bind", "source": str(bind2), "destination": "/test/for/nested",
         "options": ["rw", "bind"]}]
    counter_bundle(bundle, rootfs_template)
    rt, cid = ocirt_rt, unique_id()
    ok(rt, "run", "-d", "--bundle", str(bundle.path), cid)
    ok(rt, "checkpoint", "--image-path", str(tmp_path / "img"), cid)
    shutil.rmtree(bind1 / "for")         # the mount point create made in the bind source
    ok(rt, "restore", "-d", "--image-path", str(tmp_path / "img"), "--bundle",
       str(bundle.path), cid)
    assert state(rt, cid)["status"] == "running"
    assert (bind1 / "for" / "nested").is_dir()


def test_bind_mount_whose_destination_is_a_symlink_is_restored(ocirt_rt, bundle,
                                                               rootfs_template, tmp_path):
    rootfs = Path(bundle.own_rootfs(rootfs_template))
    (rootfs / "real" / "conf").mkdir(parents=True)
    (rootfs / "conf").symlink_to("/real/conf")
    bundle.config["mounts"].append({"source": str(tmp_path), "destination": "/conf",
                                    "options": ["bind"]})
    rt = ocirt_rt
    cid, count = run_counting(rt, bundle, rootfs_template)
    checkpoint_and_restore(rt, bundle, cid, count, tmp_path / "img")
    assert state(rt, cid)["status"] == "running"


def test_restore_rejoins_an_external_network_namespace(ocirt_rt, bundle, rootfs_template,
                                                       tmp_path):
    name = unique_id("ns")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        path = f"/run/netns/{name}"
        inode = os.stat(path).st_ino
        for ns in bundle.config["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = path
        rt = ocirt_rt
        cid, count = run_counting(rt, bundle, rootfs_template)
        checkpoint_and_restore(rt, bundle, cid, count, tmp_path / "img")
        pid = state(rt, cid)["pid"]
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == inode
        ok(rt, "delete", "--force", cid)
    finally:
        subprocess.run(["ip", "netns", "del", name])


def test_the_criu_config_annotation_names_criu_configuration_file(ocirt_rt, bundle,
                                                                  rootfs_template, tmp_path):
    conf = tmp_path / "criu.conf"
    conf.write_text("log-file=from-annotation.log\n")
    bundle.config["annotations"] = {"org.criu.config": str(conf)}
    counter_bundle(bundle, rootfs_template)
    rt, cid = ocirt_rt, unique_id()
    ok(rt, "run", "-d", "--bundle", str(bundle.path), cid)
    ok(rt, "checkpoint", "--work-path", str(tmp_path / "work"), "--image-path",
       str(tmp_path / "img"), cid)
    assert (tmp_path / "work" / "from-annotation.log").exists()
    assert not (tmp_path / "work" / "dump.log").exists()


# --- podman ---------------------------------------------------------------------------------

def test_podman_checkpoints_and_restores_a_container_with_ocirt(rootfs_template, tmp_path):
    from ocirt_testlib import OCIRT
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    image = f"localhost/{unique_id('busybox')}"
    tar = subprocess.run(["tar", "-C", str(rootfs_template), "-c", "."], capture_output=True,
                         check=True).stdout
    subprocess.run(["podman", "import", "-", image], input=tar, check=True, capture_output=True)
    name = unique_id("podman")
    # podman checkpoints only with a runtime it knows to support it (runc, crun), by name
    runtime = tmp_path / "bin" / "runc"
    runtime.parent.mkdir()
    runtime.symlink_to(OCIRT)
    podman = ["podman", "--runtime", str(runtime), "--cgroup-manager", "cgroupfs"]
    try:
        subprocess.run(podman + ["run", "-d", "--name", name, image, "sh", "-c", COUNTER],
                       check=True, capture_output=True, timeout=TIMEOUT)

        def count() -> int:
            p = subprocess.run(podman + ["exec", name, "cat", "/tmp/count"],
                               capture_output=True, timeout=TIMEOUT)
            return int(p.stdout.decode().strip() or 0)

        end = time.monotonic() + 60
        while count() < 3:
            assert time.monotonic() < end
        p = subprocess.run(podman + ["container", "checkpoint", name], capture_output=True,
                           timeout=TIMEOUT)
        assert p.returncode == 0, p.stderr.decode()
        st = subprocess.run(podman + ["inspect", "-f", "{{.State.Status}}", name],
                            capture_output=True, timeout=TIMEOUT)
        assert st.stdout.decode().strip() == "exited"
        p = subprocess.run(podman + ["container", "restore", name], capture_output=True,
                           timeout=TIMEOUT)
        assert p.returncode == 0, p.stderr.decode()
        at = count()
        end = time.monotonic() + 60
        while count() <= at:
            assert time.monotonic() < end
        started = subprocess.run(podman + ["exec", name, "cat", "/tmp/started"],
                                 capture_output=True, timeout=TIMEOUT)
        assert started.stdout == b"started\n"
    finally:
        subprocess.run(podman + ["rm", "-f", name], capture_output=True, timeout=TIMEOUT)
        subprocess.run(["podman", "rmi", "-f", image], capture_output=True, timeout=TIMEOUT)


def test_restore_in_the_foreground_exits_with_the_process_status_and_deletes_it(
        ocirt_rt, bundle, rootfs_template, tmp_path):
    rt = ocirt_rt
    cid, count = run_counting(rt, bundle, rootfs_template)
    ok(rt, "checkpoint", "--image-path", str(tmp_path / "img"), cid)
    at_dump = read_int(count)
    restore = subprocess.Popen(rt.cmd("restore", "--image-path", str(tmp_path / "img"),
                                      "--bundle", str(bundle.path), cid),
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_count_above(count, at_dump)
        assert state(rt, cid)["status"] == "running"
        ok(rt, "kill", cid, "KILL")
        assert restore.wait(TIMEOUT) == 137
        assert state(rt, cid) is None
    finally:
        restore.kill()
        restore.wait()


# --- the systemd cgroup driver ------------------------------------------------------------

def unit_property(unit: str, prop: str) -> str:
    return subprocess.run(["systemctl", "show", unit, "-p", prop, "--value"],
                          capture_output=True, text=True, timeout=60).stdout.strip()


def test_a_container_of_the_systemd_driver_is_restored_into_a_new_scope(
        rt, bundle, rootfs_template, tmp_path):
    counter_bundle(bundle, rootfs_template)
    cid = unique_id()
    bundle.config["linux"]["cgroupsPath"] = f"system.slice:ckpt:{cid}"
    bundle.config["linux"].setdefault("resources", {})["pids"] = {"limit": 64}
    bundle.write()
    unit, img = f"ckpt-{cid}.scope", str(tmp_path / "img")
    count = bundle.path / "rootfs" / "tmp" / "count"
    try:
        ok(rt, "--systemd-cgroup", "run", "-d", "--bundle", str(bundle.path), cid)
        wait_count_above(count, 2)
        ok(rt, "--systemd-cgroup", "checkpoint", "--image-path", img, cid)
        assert unit_property(unit, "ActiveState") != "active"
        at_dump = read_int(count)
        ok(rt, "--systemd-cgroup", "restore", "-d", "--image-path", img, "--bundle",
           str(bundle.path), cid)
        pid = state(rt, cid)["pid"]
        assert cgroup_of(pid) == f"/system.slice/{unit}"
        assert unit_property(unit, "ActiveState") == "active"
        assert Path(f"/sys/fs/cgroup/system.slice/{unit}/pids.max").read_text().strip() == "64"
        assert wait_count_above(count, at_dump) > at_dump
        assert (bundle.path / "rootfs" / "tmp" / "started").read_text().count("started") == 1
    finally:
        call(rt, "--systemd-cgroup", "delete", "--force", cid)
    assert unit_property(unit, "ActiveState") != "active"
    assert not Path(f"/sys/fs/cgroup/system.slice/{unit}").exists()
