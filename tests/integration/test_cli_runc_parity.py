"""The command line where scripts, managers and runc's own integration suite (tests/integration
at v1.1.5) look: exit codes, error texts, argument order, help pages, --version and --debug.
Each behaviour runs against ocirt and against the installed runc 1.1.5 (skipped without it),
so a test failing with ocirt alone points at ocirt."""

from __future__ import annotations

import json
import re
import signal

import pytest

from ocirt_testlib import (RT, cgroup_dirs, pids_with_cmdline, read_cgroup_file, rt,  # noqa: F401
                           unique_id, wait_status)

VERBS = ["checkpoint", "create", "delete", "events", "exec", "kill", "list", "pause", "ps",
         "restore", "resume", "run", "spec", "start", "state", "update"]


@pytest.fixture
def running(rt: RT, bundle) -> str:
    cid = unique_id()
    bundle.args("sleep", "1000")
    rt.ok("run", "--detach", "--bundle", str(bundle.path), cid)
    return cid


@pytest.fixture
def stopped(rt: RT, bundle) -> str:
    cid = unique_id()
    bundle.args("true")
    rt.ok("run", "--detach", "--bundle", str(bundle.path), cid)
    wait_status(rt, cid, "stopped")
    return cid


def error_text(p) -> str:
    """The message of the one error line on stderr (text log format)."""
    lines = [line for line in p.stderr.splitlines() if "level=error" in line]
    assert len(lines) == 1, p.stderr
    return json.loads(lines[0].split(" msg=", 1)[1])


# --- exit codes and texts ----------------------------------------------------------------

def test_exec_of_an_unknown_container_exits_255(rt):
    p = rt("exec", "no_such_container", "true")
    assert p.returncode == 255 and error_text(p) == "exec failed: container does not exist"


def test_exec_into_a_paused_container_exits_255(rt, running):
    rt.ok("pause", running)
    p = rt("exec", running, "true")
    assert p.returncode == 255
    assert error_text(p).startswith("exec failed: cannot exec in a paused container")
    rt.ok("resume", running)


def test_exec_into_a_stopped_container_exits_255(rt, stopped):
    p = rt("exec", stopped, "true")
    assert p.returncode == 255
    assert error_text(p) == "exec failed: cannot exec in a stopped container"


def test_exec_of_a_missing_binary_exits_255(rt, running):
    p = rt("exec", running, "no-such-binary")
    assert p.returncode == 255
    assert error_text(p).startswith("exec failed: unable to start container process: exec: "
                                    "\"no-such-binary\": executable file not found in $PATH")


def test_exec_without_a_command_exits_255(rt, running):
    p = rt("exec", running)
    assert p.returncode == 255 and error_text(p) == "exec failed: process args cannot be empty"


def test_exec_with_a_pid_file_in_a_missing_directory_exits_255_and_leaves_no_process(
        rt, running):
    marker = unique_id("marker")
    p = rt("exec", "--pid-file", "/non-existent/directory", running, "sleep", marker)
    assert p.returncode == 255 and error_text(p).startswith("exec failed: ")
    assert wait_status(rt, running, "running")["status"] == "running"
    assert pids_with_cmdline(marker) == []


def test_exec_exits_with_the_process_status(rt, running):
    assert rt("exec", running, "sh", "-c", "exit 42").returncode == 42


def test_kill_with_signal_0_probes_the_init(rt, running):
    rt.ok("kill", running, "0")
    assert rt.state(running)["status"] == "running"


def test_kill_takes_every_number_up_to_sigrtmax(rt, bundle):
    # A pid namespace's init only gets the signals it handles.
    cid = unique_id()
    bundle.sh(f"trap 'exit 0' {signal.SIGRTMAX}; while true; do sleep 0.1; done")
    rt.ok("run", "--detach", "--bundle", str(bundle.path), cid)
    rt.ok("kill", cid, str(signal.SIGRTMAX))
    assert wait_status(rt, cid, "stopped")["status"] == "stopped"


def test_kill_beyond_sigrtmax_is_refused_by_the_kernel(rt, running):
    p = rt("kill", running, str(signal.SIGRTMAX + 1))
    assert p.returncode == 1 and error_text(p) == "unable to signal init: invalid argument"


def test_kill_all_of_a_stopped_container_succeeds(rt, stopped):
    rt.ok("kill", "-a", stopped, "0")
    rt.ok("delete", stopped)


def test_kill_without_all_of_a_stopped_container_fails(rt, stopped):
    p = rt("kill", stopped, "KILL")
    assert p.returncode == 1 and error_text(p) == "container not running"


def test_list_json_is_one_compact_line(rt, running):
    out = rt.ok("list", "--format", "json").stdout
    assert out.count("\n") == 1 and ": " not in out and ", " not in out
    assert out.startswith('[{"ociVersion":"') and f'"id":"{running}"' in out
    assert json.loads(out)[0]["status"] == "running"


def test_state_stays_indented(rt, running):
    out = rt.ok("state", running).stdout
    assert out.startswith('{\n  "ociVersion": "')


def test_list_table_is_laid_out_as_runcs(rt, bundle, running):
    header, row = rt.ok("list").stdout.splitlines()
    st = rt.state(running)
    cells = [running, str(st["pid"]), "running", str(bundle.path), st["created"]]
    # Go's tabwriter: each column but the last max(12, widest + 3) wide.
    widths = [max(12, len(a) + 3, len(b) + 3) for a, b in
              zip(cells, ["ID", "PID", "STATUS", "BUNDLE", "CREATED"])]
    assert header == "".join(h.ljust(w) for h, w in
                             zip(["ID", "PID", "STATUS", "BUNDLE", "CREATED"], widths)) + "OWNER"
    assert row == "".join(c.ljust(w) for c, w in zip(cells, widths)) + "root"


def test_list_of_an_empty_root_prints_the_header_or_null(rt):
    assert rt.ok("list").stdout == "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
    assert rt.ok("list", "--format", "json").stdout == "null\n"


def test_list_with_an_unknown_format_fails(rt):
    p = rt("list", "--format", "yaml")
    assert p.returncode == 1 and error_text(p) == "invalid format option"


def test_ps_of_a_stopped_container_succeeds(rt, stopped):
    assert rt.ok("ps", "--format", "json", stopped).stdout == "null\n"
    assert rt.ok("ps", stopped).stdout.startswith("UID")


def test_pause_of_a_stopped_container_fails_as_runc(rt, stopped):
    p = rt("pause", stopped)
    assert p.returncode == 1 and error_text(p) == "container not running"


def test_resume_of_a_running_container_fails_as_runc(rt, running):
    p = rt("resume", running)
    assert p.returncode == 1 and error_text(p) == "container not paused"


def test_delete_of_a_paused_container_names_its_status(rt, running):
    rt.ok("pause", running)
    p = rt("delete", running)
    assert error_text(p) == f"cannot delete container {running} that is not stopped: paused"
    rt.ok("resume", running)


def test_events_of_a_stopped_container_fails(rt, stopped):
    p = rt("events", "--stats", stopped)
    assert p.returncode == 1 and error_text(p) == f"container with id {stopped} is not running"


def test_events_interval_must_be_positive_even_with_stats(rt, running):
    p = rt("events", "--stats", "--interval", "0", running)
    assert p.returncode == 1 and error_text(p) == "duration interval must be greater than 0"


def test_create_failure_says_which_verb_failed(rt, bundle):
    p = rt("create", "--bundle", str(bundle.path), "bad/id")
    assert error_text(p) == f"{rt.name} create failed: invalid container ID format"


# --- argument order ------------------------------------------------------------------------

def test_delete_takes_force_after_the_container_id(rt, running):
    rt.ok("delete", running, "--force")
    assert rt("state", running).returncode == 1


def test_kill_takes_all_after_the_signal(rt, running):
    rt.ok("kill", running, "KILL", "--all")
    assert wait_status(rt, running, "stopped")["status"] == "stopped"


def test_update_takes_flags_after_the_container_id(rt, running):
    rt.ok("update", running, "--pids-limit", "42")
    pid = rt.state(running)["pid"]
    assert read_cgroup_file(cgroup_dirs(pid)["pids"], "pids.max") == "42"


def test_exec_keeps_the_commands_own_flags(rt, running):
    assert rt.ok("exec", running, "echo", "--all", "-t", "--force").stdout == "--all -t --force\n"


def test_ps_keeps_the_ps_options(rt, running):
    out = rt.ok("ps", running, "-o", "pid,comm").stdout.splitlines()
    assert out[0].split() == ["PID", "COMMAND"] and out[1].split()[1] == "sleep"


def test_an_unknown_dash_argument_after_the_id_stays_an_argument(rt, running):
    p = rt("kill", running, "--bad")
    assert p.returncode == 1 and error_text(p) == 'unknown signal "--bad"'


# --- usage errors, help and version ------------------------------------------------------

def test_unknown_flag_is_incorrect_usage_with_the_help_page(rt):
    p = rt("delete", "--nope", "x")
    assert p.returncode == 1 and error_text(p) == "flag provided but not defined: -nope"
    assert p.stdout.startswith("Incorrect Usage: flag provided but not defined: -nope\n\nNAME:\n"
                               f"   {rt.name} delete - ")


def test_unknown_global_flag_is_incorrect_usage(rt):
    p = rt("--nope", "list")
    assert p.returncode == 1 and error_text(p) == "flag provided but not defined: -nope"
    assert p.stdout.startswith("Incorrect Usage. flag provided but not defined: -nope\n\nNAME:\n")


def test_flag_without_its_value_is_incorrect_usage(rt):
    p = rt("create", "--bundle")
    assert p.returncode == 1 and error_text(p) == "flag needs an argument: -bundle"


def test_bad_flag_value_is_incorrect_usage(rt):
    p = rt("events", "--interval", "xx", "x")
    assert p.returncode == 1
    assert error_text(p) == 'invalid value "xx" for flag -interval: parse error'


def test_missing_argument_is_incorrect_usage(rt):
    p = rt("state")
    assert p.returncode == 1 and p.stdout.startswith("Incorrect Usage.\n\nNAME:\n")
    assert error_text(p) == f'{rt.binary}: "state" requires exactly 1 argument(s)'


def test_too_many_arguments_is_incorrect_usage(rt):
    p = rt("kill", "a", "b", "c")
    assert error_text(p) == f'{rt.binary}: "kill" requires a maximum of 2 argument(s)'


@pytest.mark.parametrize("verb", VERBS)
def test_every_command_has_a_help_page(rt, verb):
    for flag in ("-h", "--help"):
        p = rt(verb, flag)
        assert p.returncode == 0, p.stderr
        lines = p.stdout.splitlines()
        assert lines[0] == "NAME:" and lines[1].startswith(f"   {rt.name} {verb} - ")
        assert "USAGE:" in lines and lines[lines.index("USAGE:") + 1].startswith(
            f"   {rt.name} {verb}")


def test_help_command_shows_a_commands_page(rt):
    p = rt("help", "kill")
    assert p.returncode == 0 and p.stdout.splitlines()[1].startswith(f"   {rt.name} kill - ")
    assert "   --all, -a  send the specified signal to all processes inside the container" in \
        p.stdout.splitlines()


@pytest.mark.parametrize("args", [("-h",), ("--help",), ("help",), ()])
def test_global_help_page(rt, args):
    p = rt(*args)
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    assert lines[0] == "NAME:" and lines[1] == f"   {rt.name} - Open Container Initiative runtime"
    for section in ("USAGE:", "VERSION:", "COMMANDS:", "GLOBAL OPTIONS:"):
        assert section in lines


@pytest.mark.parametrize("args", [("foo", "-h"), ("foo",), ("help", "foo")])
def test_unknown_command_exits_3(rt, args):
    p = rt(*args)
    assert p.returncode == 3 and "No help topic for 'foo'" in p.stderr


@pytest.mark.parametrize("flag", ["-v", "--version"])
def test_version_as_go_runc_parses_it(rt, flag):
    lines = rt.ok(flag).stdout.splitlines()
    assert re.fullmatch(rf"{rt.name} version \d+\.\d+\.\d+\S*", lines[0])
    assert lines[1].startswith("commit: ") and len(lines[1]) > len("commit: ")
    assert re.fullmatch(r"spec: \d+\.\d+\.\d+\S*", lines[2])


# --- --debug -------------------------------------------------------------------------------

# What runc's debug.bats and exec.bats look for.
RUN_DEBUG = ("nsexec container setup", "child process in init()",
             "init: closing the pipe to signal completion")
EXEC_DEBUG = ("nsexec container setup", "child process in init()", "setns_init: about to exec")


def test_debug_run_writes_debug_lines_to_stderr(rt, bundle):
    bundle.args("echo", "Hello World")
    p = rt("run", "--bundle", str(bundle.path), unique_id(), global_args=("--debug",))
    assert p.returncode == 0 and "level=debug" in p.stderr
    for text in RUN_DEBUG:
        assert text in p.stderr, text


@pytest.mark.parametrize("fmt,marker", [("text", "level=debug"), ("json", '"level":"debug"')])
def test_debug_run_writes_debug_lines_to_the_log(rt, bundle, fmt, marker):
    bundle.args("echo", "Hello World")
    log = bundle.path / "log.out"
    p = rt("run", "--bundle", str(bundle.path), unique_id(),
           global_args=("--debug", "--log", str(log), "--log-format", fmt))
    assert p.returncode == 0 and "level=debug" not in p.stderr and "debug" not in p.stdout
    text = log.read_text()
    assert marker in text
    for want in RUN_DEBUG:
        assert want in text, want


def test_debug_exec_writes_the_setns_steps(rt, running, tmp_path):
    log = tmp_path / "log.out"
    p = rt("exec", running, "true", global_args=("--debug", "--log", str(log)))
    assert p.returncode == 0
    text = log.read_text()
    for want in EXEC_DEBUG:
        assert want in text, want


def test_a_log_file_that_cannot_be_opened_fails_the_call(rt, tmp_path):
    log = tmp_path / "missing" / "log.json"
    p = rt("list", global_args=("--log", str(log)))
    assert p.returncode == 1 and p.stdout == ""
    assert error_text(p) == f"open {log}: no such file or directory"
