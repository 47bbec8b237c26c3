"""The OCI lifecycle, on real containers: create, start, state, kill, delete, run."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest



def wait_status(ocirt, cid: str, want: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    st = ocirt.state(cid)
    while st["status"] != want and time.monotonic() < deadline:
        time.sleep(0.02)
        st = ocirt.state(cid)
    return st


def test_run_exits_with_the_process_status(ocirt, bundle, cid):
    bundle.sh("exit 3")
    assert ocirt("run", "--bundle", str(bundle.path), cid).returncode == 3


def test_run_exits_128_plus_signal_when_the_process_is_killed(ocirt, bundle, cid):
    import subprocess
    bundle.sh("echo ready; exec sleep 100")
    proc = subprocess.Popen(ocirt.cmd("run", "--bundle", str(bundle.path), cid),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout.readline() == b"ready\n"
    ocirt.ok("kill", cid, "KILL")
    assert proc.wait(30) == 128 + 9


def test_run_passes_stdout_through(ocirt, bundle, cid):
    bundle.sh("echo hello")
    p = ocirt.ok("run", "--bundle", str(bundle.path), cid)
    assert p.stdout == b"hello\n"


def test_run_deletes_the_container_after_it_exits(ocirt, bundle, cid):
    bundle.args("true")
    ocirt.ok("run", "--bundle", str(bundle.path), cid)
    assert ocirt.ids() == []


def test_run_keep_leaves_a_stopped_container(ocirt, bundle, cid):
    bundle.args("true")
    ocirt.ok("run", "--keep", "--bundle", str(bundle.path), cid)
    assert ocirt.state(cid)["status"] == "stopped"


def test_bundle_defaults_to_the_current_directory(ocirt, bundle, cid):
    bundle.sh("echo here")
    p = ocirt("run", cid, cwd=bundle.path)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"here\n"


def test_create_leaves_the_container_created_with_a_live_pid(ocirt, bundle, cid):
    bundle.args("true")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    st = ocirt.state(cid)
    assert st["status"] == "created"
    assert st["pid"] > 0 and os.path.exists(f"/proc/{st['pid']}")
    assert st["id"] == cid and st["bundle"] == str(bundle.path)
    assert st["ociVersion"] == bundle.config["ociVersion"]


def test_process_does_not_run_before_start(ocirt, bundle, cid, tmp_path):
    out = tmp_path / "shared"
    out.mkdir()
    bundle.config["mounts"].append({"destination": "/shared", "type": "bind",
                                    "source": str(out), "options": ["rbind"]})
    bundle.sh("echo ran > /shared/flag")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    time.sleep(0.2)
    assert not (out / "flag").exists()
    ocirt.ok("start", cid)
    wait_status(ocirt, cid, "stopped")
    assert (out / "flag").read_text() == "ran\n"


def test_start_makes_the_container_running(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    ocirt.ok("start", cid)
    assert ocirt.state(cid)["status"] == "running"


def test_starting_twice_is_an_error(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    ocirt.ok("start", cid)
    p = ocirt("start", cid)
    assert p.returncode == 1
    assert b"running" in p.stderr


def test_starting_a_stopped_container_is_an_error(ocirt, bundle, cid):
    bundle.args("true")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    ocirt.ok("start", cid)
    wait_status(ocirt, cid, "stopped")
    p = ocirt("start", cid)
    assert p.returncode == 1
    assert b"stopped" in p.stderr


def test_state_of_unknown_container_is_not_found(ocirt):
    p = ocirt("state", "nope")
    assert p.returncode == 1
    assert b"container does not exist" in p.stderr


def test_state_output_has_runc_fields(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    out = ocirt.ok("state", cid).stdout
    st = json.loads(out)
    assert set(st) >= {"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"}
    assert not out.endswith(b"\n")


def test_stopped_container_reports_pid_zero(ocirt, bundle, cid):
    bundle.args("true")
    ocirt.ok("run", "--keep", "--bundle", str(bundle.path), cid)
    st = ocirt.state(cid)
    assert st["status"] == "stopped" and st["pid"] == 0


def test_a_reused_pid_reads_as_stopped(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    path = ocirt.root / cid / "state.json"
    saved = json.loads(path.read_text())
    saved["pid_start"] += 1  # as if the pid now belonged to a younger process
    path.write_text(json.dumps(saved))
    assert ocirt.state(cid)["status"] == "stopped"
    saved["pid_start"] -= 1
    path.write_text(json.dumps(saved))


@pytest.mark.parametrize("sig", ["KILL", "SIGKILL", "9"])
def test_kill_accepts_signal_names_and_numbers(ocirt, bundle, cid, sig):
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    ocirt.ok("start", cid)
    ocirt.ok("kill", cid, sig)
    assert wait_status(ocirt, cid, "stopped")["status"] == "stopped"


def test_kill_defaults_to_sigterm(ocirt, bundle, cid):
    bundle.sh("trap 'exit 0' TERM; while :; do sleep 0.1; done")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    ocirt.ok("start", cid)
    time.sleep(0.2)
    ocirt.ok("kill", cid)
    assert wait_status(ocirt, cid, "stopped")["status"] == "stopped"


def test_kill_of_a_stopped_container_is_not_running(ocirt, bundle, cid):
    bundle.args("true")
    ocirt.ok("run", "--keep", "--bundle", str(bundle.path), cid)
    p = ocirt("kill", cid, "KILL")
    assert p.returncode == 1
    assert b"container not running" in p.stderr


def test_kill_rejects_an_unknown_signal(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    p = ocirt("kill", cid, "SIGNOPE")
    assert p.returncode == 1 and b"SIGNOPE" in p.stderr


def test_kill_all_signals_every_process(ocirt, bundle, cid):
    bundle.sh("sleep 100 & sleep 100 & wait")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    ocirt.ok("start", cid)
    time.sleep(0.3)
    ocirt.ok("kill", "--all", cid, "KILL")
    assert wait_status(ocirt, cid, "stopped")["status"] == "stopped"


def test_delete_of_a_running_container_needs_force(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    ocirt.ok("start", cid)
    p = ocirt("delete", cid)
    assert p.returncode == 1
    assert b"is not stopped: running" in p.stderr
    ocirt.ok("delete", "--force", cid)
    assert ocirt("state", cid).returncode == 1


def test_delete_of_a_created_container_kills_it(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    pid = ocirt.state(cid)["pid"]
    ocirt.ok("delete", cid)
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.02)
    st = Path(f"/proc/{pid}/stat")
    assert not st.exists() or st.read_text().split(") ")[1][0] == "Z"
    assert ocirt.ids() == []


def test_delete_of_unknown_container_fails_without_force(ocirt):
    p = ocirt("delete", "ghost")
    assert p.returncode == 1 and b"container does not exist" in p.stderr


def test_delete_force_of_unknown_container_succeeds(ocirt):
    assert ocirt("delete", "--force", "ghost").returncode == 0


def test_pid_file_holds_the_init_pid_without_newline(ocirt, bundle, cid, tmp_path):
    bundle.args("sleep", "100")
    pidfile = tmp_path / "pid"
    ocirt.ok("create", "--bundle", str(bundle.path), "--pid-file", str(pidfile), cid)
    assert pidfile.read_text() == str(ocirt.state(cid)["pid"])


def test_duplicate_id_is_refused(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    p = ocirt("create", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    assert b"container with given ID already exists" in p.stderr


@pytest.mark.parametrize("bad", ["..", ".", "a/b", "a b", "x" * 1100, "", "a:b"])
def test_invalid_ids_are_refused(ocirt, bundle, bad):
    p = ocirt("create", "--bundle", str(bundle.path), "--", bad)
    assert p.returncode == 1
    assert b"invalid container ID format" in p.stderr or b"requires exactly" in p.stderr
    assert ocirt.ids() == []


def test_concurrent_creates_of_one_id_let_exactly_one_win(ocirt, bundle, cid):
    import subprocess
    bundle.args("sleep", "100")
    procs = [subprocess.Popen(ocirt.cmd("create", "--bundle", str(bundle.path), cid),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(4)]
    codes = [p.wait(60) for p in procs]
    assert sorted(codes) == [0, 1, 1, 1]
    assert ocirt.state(cid)["status"] == "created"


def test_state_dirs_have_runc_modes(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    assert os.stat(ocirt.root).st_mode & 0o7777 == 0o700
    assert os.stat(ocirt.root / cid).st_mode & 0o7777 == 0o711
    assert os.stat(ocirt.root / cid / "state.json").st_mode & 0o7777 == 0o600


def test_list_shows_containers_in_json(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    listed = json.loads(ocirt.ok("list", "--format", "json").stdout)
    assert [c["id"] for c in listed] == [cid]
    assert listed[0]["status"] == "created"


def test_list_of_an_empty_root_is_null_in_json(ocirt):
    assert ocirt.ok("list", "--format=json").stdout.strip() == b"null"


def test_list_quiet_prints_ids(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    assert ocirt.ok("list", "-q").stdout == f"{cid}\n".encode()


def test_list_table_has_runc_columns(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    lines = ocirt.ok("list").stdout.decode().splitlines()
    assert lines[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert lines[1].split()[0] == cid


def test_run_detach_returns_with_the_container_running(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    p = ocirt("run", "-d", "--bundle", str(bundle.path), cid)
    assert p.returncode == 0, p.stderr
    assert ocirt.state(cid)["status"] == "running"


def test_run_forwards_sigterm_to_the_container(ocirt, bundle, cid):
    import subprocess
    bundle.sh("trap 'exit 7' TERM; echo ready; while :; do sleep 0.1; done")
    proc = subprocess.Popen(ocirt.cmd("run", "--bundle", str(bundle.path), cid),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 7


def test_created_init_keeps_only_expected_fds(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    pid = ocirt.state(cid)["pid"]
    fds = sorted(int(x) for x in os.listdir(f"/proc/{pid}/fd"))
    targets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in fds if fd > 2]
    # Only the exec FIFO may be open beyond stdio while waiting for start.
    assert all(t.endswith("exec.fifo") for t in targets), targets
