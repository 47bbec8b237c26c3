"""The state every program ocirt starts begins with, as under runc: default signal dispositions
and an empty signal mask (the interpreter ignores SIGPIPE and SIGXFSZ, and execve keeps ignored
and blocked signals), nothing of the runtime in the environment, the working directory entered
as runc enters it, and stdio (the console too) owned by the process's user."""

from __future__ import annotations

import os
import shlex
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from ocirt_testlib import (NO_SIGNAL_MASKS, ConsoleSocket, ignore_and_block_signals, read_until,
                           run_out, signal_masks)

# --- signals of the container's processes ----------------------------------------------------

def test_init_starts_with_default_signals_and_an_empty_mask(ocirt, bundle, cid):
    bundle.args("cat", "/proc/self/status")
    p = ocirt("run", "--bundle", str(bundle.path), cid, preexec_fn=ignore_and_block_signals)
    assert p.returncode == 0, p.stderr
    assert signal_masks(p.stdout.decode()) == NO_SIGNAL_MASKS


def test_init_signal_state_is_runcs(ocirt, runc, bundle, cid):
    bundle.args("cat", "/proc/self/status")
    theirs = runc("run", "--bundle", str(bundle.path), cid + "-runc")
    ours = ocirt("run", "--bundle", str(bundle.path), cid)
    assert theirs.returncode == 0 and ours.returncode == 0, (theirs.stderr, ours.stderr)
    assert signal_masks(ours.stdout.decode()) == signal_masks(theirs.stdout.decode()) == NO_SIGNAL_MASKS


def test_exec_process_starts_with_default_signals_and_an_empty_mask(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    ocirt.ok("run", "--detach", "--bundle", str(bundle.path), cid)
    p = ocirt("exec", cid, "cat", "/proc/self/status", preexec_fn=ignore_and_block_signals)
    assert p.returncode == 0, p.stderr
    assert signal_masks(p.stdout.decode()) == NO_SIGNAL_MASKS


def test_init_seen_from_the_host_has_no_ignored_or_blocked_signal(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    ocirt.ok("run", "--detach", "--bundle", str(bundle.path), cid,
             preexec_fn=ignore_and_block_signals)
    pid = ocirt.state(cid)["pid"]
    assert signal_masks(Path(f"/proc/{pid}/status").read_text()) == NO_SIGNAL_MASKS


def test_pipeline_writer_is_killed_by_sigpipe(ocirt, bundle, cid):
    # With SIGPIPE ignored the writers only get EPIPE: programs that do not check it spin at
    # 100% CPU forever, the others exit 1 instead of being killed.
    out = run_out(ocirt, bundle, cid,
                  "{ yes x; echo $? > /tmp/yes; } | head -c 4000000 | wc -c; "
                  "seq 1 200000 > /tmp/big; { cat /tmp/big; echo $? > /tmp/cat; } | head -1; "
                  "cat /tmp/yes /tmp/cat")
    sigpipe = str(128 + signal.SIGPIPE)
    assert out.split() == ["4000000", "1", sigpipe, sigpipe]


def test_writing_past_rlimit_fsize_is_killed_by_sigxfsz(ocirt, bundle, cid):
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_FSIZE", "soft": 4096, "hard": 4096}]
    out = run_out(ocirt, bundle, cid, "head -c 8192 /dev/zero > /tmp/f; echo $?; wc -c < /tmp/f")
    assert out.split() == [str(128 + signal.SIGXFSZ), "4096"]


def test_init_environment_is_exactly_the_configs(ocirt, bundle, cid):
    bundle.config["process"]["env"] = ["PATH=/bin", "ONLY=this"]
    bundle.args("env")
    p = ocirt("run", "--bundle", str(bundle.path), cid,
              env={"PATH": os.environ["PATH"], "OCIRT_LEAK": "1", "PYTHONPATH": "/x"})
    assert p.returncode == 0, p.stderr
    # HOME is added from the container's /etc/passwd when the config has none, as runc does.
    assert sorted(p.stdout.decode().split()) == ["HOME=/root", "ONLY=this", "PATH=/bin"]


# --- ps(1) ------------------------------------------------------------------------------------

def test_ps_runs_with_default_signals_and_an_empty_mask(ocirt, bundle, cid, tmp_path):
    bundle.args("sleep", "100")
    ocirt.ok("run", "--detach", "--bundle", str(bundle.path), cid)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "ps").write_text(f"#!/bin/sh\ncat /proc/self/status > {tmp_path}/ps.status\n"
                             "echo PID\n")
    (fake / "ps").chmod(0o755)
    p = ocirt("ps", cid, env={"PATH": f"{fake}:{os.environ['PATH']}"},
              preexec_fn=ignore_and_block_signals)
    assert p.returncode == 0, p.stderr
    assert signal_masks((tmp_path / "ps.status").read_text()) == NO_SIGNAL_MASKS


# --- working directory ------------------------------------------------------------------------

def private_dir(rootfs: Path, name: str, uid: int = 0) -> None:
    d = rootfs / name
    d.mkdir()
    os.chown(d, uid, uid)
    d.chmod(0o700)


def test_root_only_cwd_is_entered_for_another_user_as_runc_does(ocirt, runc, bundle, cid,
                                                                 rootfs_template):
    # runc enters process.cwd while it still has its privileges: the process's user need not
    # be able to.
    private_dir(bundle.own_rootfs(rootfs_template), "secret")
    bundle.config["process"]["cwd"] = "/secret"
    bundle.config["process"]["user"] = {"uid": 42, "gid": 42}
    bundle.args("pwd")
    theirs = runc("run", "--bundle", str(bundle.path), cid + "-runc")
    ours = ocirt("run", "--bundle", str(bundle.path), cid)
    assert theirs.returncode == 0, theirs.stderr
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout == b"/secret\n"


def test_exec_enters_a_root_only_cwd_for_another_user(ocirt, bundle, cid, rootfs_template):
    private_dir(bundle.own_rootfs(rootfs_template), "secret")
    bundle.args("sleep", "100")
    ocirt.ok("run", "--detach", "--bundle", str(bundle.path), cid)
    p = ocirt("exec", "--user", "42:42", "--cwd", "/secret", cid, "pwd")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"/secret\n"


def test_exec_into_a_missing_cwd_names_it(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    ocirt.ok("run", "--detach", "--bundle", str(bundle.path), cid)
    p = ocirt("exec", "--cwd", "/no/such/dir", cid, "true")
    assert p.returncode == 255
    err = p.stderr.decode()
    assert "chdir to cwd" in err and "/no/such/dir" in err and "no such file or directory" in err


# --- stdio and console ownership --------------------------------------------------------------

OWNER = ["stat", "-L", "-c", "%u %g", "/proc/self/fd/0", "/proc/self/fd/1"]


def test_stdio_pipes_are_given_to_the_process_user_as_runc_does(ocirt, runc, bundle, cid):
    # A process that reopens /dev/stdout needs to own the pipe (runc's fixStdioPermissions).
    bundle.config["process"]["user"] = {"uid": 42, "gid": 42}
    bundle.args(*OWNER)
    outs = []
    for rt, name in ((runc, cid + "-runc"), (ocirt, cid)):
        r, w = os.pipe()
        try:
            p = rt("run", "--bundle", str(bundle.path), name, stdin=r)
        finally:
            os.close(r)
            os.close(w)
        assert p.returncode == 0, p.stderr
        outs.append(p.stdout.decode().split("\n"))
    assert outs[0] == outs[1]
    assert outs[1][0] == "42 0"     # the pipe: uid changed, gid kept


def test_stdio_dev_null_is_left_alone(ocirt, bundle, cid):
    bundle.config["process"]["user"] = {"uid": 42, "gid": 42}
    bundle.args(*OWNER)
    p = ocirt("run", "--bundle", str(bundle.path), cid, stdin=open(os.devnull, "rb"))
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().split("\n")[0] == "0 0"
    assert os.stat(os.devnull).st_uid == 0


PTY_OWNER = ["stat", "-L", "-c", "%u %g %a", "/proc/self/fd/0"]


@pytest.fixture
def tty_bundle(bundle):
    """A terminal process of uid 42 that prints the owner of its stdin (the pty)."""
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["user"] = {"uid": 42, "gid": 42}
    bundle.args(*PTY_OWNER)
    return bundle


def on_a_terminal(rt, *args: str):
    """A foreground `-t` command with a terminal as stdin (runc's proxy needs one)."""
    master, slave = os.openpty()
    try:
        p = rt(*args, stdin=slave)
    finally:
        os.close(master)
        os.close(slave)
    assert p.returncode == 0, p.stderr
    return p.stdout


def run_on_a_terminal(ocirt, runc, bundle, cid) -> tuple[bytes, bytes]:
    """(ocirt's output, runc's) of `run` in the foreground."""
    return (on_a_terminal(ocirt, "run", "--bundle", str(bundle.path), cid),
            on_a_terminal(runc, "run", "--bundle", str(bundle.path), cid + "-runc"))


def through_console_socket(rt, tmp_path, *args: str, then: tuple[str, ...] = ()) -> str:
    """A manager's view: `args` (create or exec) with --console-socket, then `then`; what the
    process writes on the pty, up to its "done"."""
    console = ConsoleSocket(str(tmp_path / "console.sock"))
    try:
        p = subprocess.Popen(rt.cmd(*args[:1], "--console-socket", console.path, *args[1:]),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _name, fds = console.receive()
        assert p.wait(timeout=60) == 0, p.stderr.read()
        if then:
            rt.ok(*then)
        out = read_until(fds[0], b"done")
        for fd in fds:
            os.close(fd)
    finally:
        console.close()
    return out.decode().replace("\r", "")


def test_console_of_run_belongs_to_the_user_and_the_devpts_group_as_in_runc(ocirt, runc,
                                                                           tty_bundle, cid):
    ours, theirs = run_on_a_terminal(ocirt, runc, tty_bundle, cid)
    # The group is devpts' gid=5 mount option of the default spec (runc changes only the uid).
    assert ours == theirs == b"42 5 620\n"


def test_console_group_is_the_devpts_mounts_as_in_runc(ocirt, runc, tty_bundle, cid):
    for m in tty_bundle.config["mounts"]:
        if m["type"] == "devpts":
            m["options"] = [o for o in m["options"] if not o.startswith("gid=")]
    tty_bundle.write()
    ours, theirs = run_on_a_terminal(ocirt, runc, tty_bundle, cid)
    assert ours == theirs == b"42 0 620\n"


def test_foreground_terminal_output_keeps_its_newlines_as_in_runc(ocirt, runc, tty_bundle,
                                                                   cid):
    # runc clears ONLCR on the pty it proxies: the output is written as the process wrote it.
    tty_bundle.args("printf", "a\\nb\\n")
    ours, theirs = run_on_a_terminal(ocirt, runc, tty_bundle, cid)
    assert ours == theirs == b"a\nb\n"


def test_exec_on_a_terminal_is_as_in_runc(ocirt, runc, bundle, cid):
    bundle.args("sleep", "100")
    outs = []
    for rt, name in ((ocirt, cid), (runc, cid + "-runc")):
        with open(os.devnull, "rb") as null:
            rt.ok("run", "--detach", "--bundle", str(bundle.path), name, stdin=null)
        outs.append(on_a_terminal(rt, "exec", "--tty", "--user", "42:42", name, *PTY_OWNER))
    assert outs[0] == outs[1] == b"42 5 620\n"


def test_console_socket_pty_of_create_belongs_to_the_user(ocirt, tty_bundle, cid, tmp_path):
    tty_bundle.args("sh", "-c", shlex.join(PTY_OWNER) + "; echo done")
    out = through_console_socket(ocirt, tmp_path, "create", "--bundle", str(tty_bundle.path),
                                 cid, then=("start", cid))
    assert out.splitlines() == ["42 5 620", "done"]


def test_console_socket_pty_of_exec_belongs_to_the_user(ocirt, bundle, cid, tmp_path):
    bundle.args("sleep", "100")
    ocirt.ok("run", "--detach", "--bundle", str(bundle.path), cid)
    out = through_console_socket(ocirt, tmp_path, "exec", "--tty", "--detach", "--user",
                                 "42:42", cid, "sh", "-c", shlex.join(PTY_OWNER) + "; echo done")
    assert out.splitlines() == ["42 5 620", "done"]


def test_host_file_as_stdio_keeps_its_mode(ocirt, bundle, cid, tmp_path):
    # Only the owner changes, as in runc; the file's permissions stay.
    f = tmp_path / "in"
    f.write_text("")
    f.chmod(0o600)
    bundle.config["process"]["user"] = {"uid": 42, "gid": 42}
    bundle.args("true")
    with open(f, "rb") as stdin:
        ocirt.ok("run", "--bundle", str(bundle.path), cid, stdin=stdin)
    st = f.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (42, 0, 0o600)


# --- the init before start --------------------------------------------------------------------

@pytest.mark.parametrize("sig", ["TERM", "INT", "HUP", "QUIT"])
def test_created_container_is_stopped_by_a_termination_signal_as_in_runc(ocirt, runc, bundle,
                                                                        cid, sig):
    bundle.args("sleep", "100")
    final = []
    for rt, name in ((ocirt, cid), (runc, cid + "-runc")):
        with open(os.devnull, "rb") as null:
            rt.ok("create", "--bundle", str(bundle.path), name, stdin=null)
        rt.ok("kill", name, sig)
        deadline = time.monotonic() + 10
        while rt.state(name)["status"] != "stopped" and time.monotonic() < deadline:
            time.sleep(0.02)
        final.append(rt.state(name)["status"])
    assert final == ["stopped", "stopped"]


def test_created_container_outlives_other_signals(ocirt, bundle, cid):
    bundle.args("true")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    ocirt.ok("kill", cid, "USR1")
    ocirt.ok("start", cid)
