"""Go-style flag parsing, as containerd, conmon and podman send flags."""

from __future__ import annotations

import os

import pytest

from ocirt.cli.flags import (ArgCountError, Flag, FlagError, need_args, parse, parse_duration,
                             parse_int, reorder_args)
from ocirt.errors import UsageError

FLAGS = [Flag("bundle", "str", "", aliases=("b",)), Flag("detach", "bool", False, aliases=("d",)),
         Flag("preserve-fds", "int", 0), Flag("env", "list", [], aliases=("e",)),
         Flag("interval", "duration", 5.0)]


@pytest.mark.parametrize("argv", [["--bundle", "/b", "id"], ["--bundle=/b", "id"],
                                  ["-bundle", "/b", "id"], ["-b", "/b", "id"], ["-b=/b", "id"]])
def test_string_flag_forms(argv):
    p = parse(argv, FLAGS, "create")
    assert p["bundle"] == "/b" and p.args == ["id"]


@pytest.mark.parametrize("argv,value", [(["--detach"], True), (["-d"], True),
                                        (["--detach=true"], True), (["--detach=false"], False)])
def test_boolean_flag_forms(argv, value):
    assert parse(argv, FLAGS, "run")["detach"] is value


def test_parsing_stops_at_the_first_positional_argument():
    p = parse(["id", "sh", "-c", "echo", "--detach"], FLAGS, "exec")
    assert p.args == ["id", "sh", "-c", "echo", "--detach"] and p["detach"] is False


def test_double_dash_ends_flags():
    assert parse(["--", "-weird"], FLAGS, "x").args == ["-weird"]


def test_list_flags_accumulate():
    assert parse(["-e", "A=1", "--env=B=2", "id"], FLAGS, "exec")["env"] == ["A=1", "B=2"]


def test_int_flag():
    assert parse(["--preserve-fds", "3"], FLAGS, "create")["preserve-fds"] == 3


def test_unknown_flag_is_a_usage_error():
    with pytest.raises(UsageError, match="flag provided but not defined: -nope"):
        parse(["--nope"], FLAGS, "create")


def test_missing_flag_value_is_a_usage_error():
    with pytest.raises(UsageError, match="flag needs an argument"):
        parse(["--bundle"], FLAGS, "create")


def test_bad_int_is_a_usage_error():
    with pytest.raises(UsageError, match="preserve-fds"):
        parse(["--preserve-fds", "x"], FLAGS, "create")


@pytest.mark.parametrize("text,secs", [("5s", 5.0), ("100ms", 0.1), ("1m30s", 90.0), ("0", 0.0)])
def test_go_durations(text, secs):
    assert parse_duration(text) == pytest.approx(secs)


def test_duration_flag():
    assert parse(["--interval=250ms"], FLAGS, "events")["interval"] == pytest.approx(0.25)


# --- urfave/cli's argument reordering (Debian's runc 1.1.5: urfave/cli 1.22.9) ---------------

CMD = [Flag("force", "bool", False, aliases=("f",)), Flag("memory-swap", "str", None),
       Flag("all", "bool", False, aliases=("a",))]


def test_flags_after_the_arguments_are_parsed():
    p = parse(["ID", "--force"], CMD, "delete", reorder=True)
    assert p.args == ["ID"] and p["force"] is True


def test_a_flag_after_the_arguments_takes_its_value_even_with_a_dash():
    p = parse(["ID", "--memory-swap", "-1"], CMD, "update", reorder=True)
    assert p.args == ["ID"] and p["memory-swap"] == "-1"


def test_an_unknown_dash_argument_stays_an_argument():
    assert parse(["ID", "--bad"], CMD, "kill", reorder=True).args == ["ID", "--bad"]


def test_a_boolean_flag_takes_the_next_argument_along_as_runc_does():
    # runc 1.1.5: `kill ID --all KILL` names the container KILL.
    p = parse(["ID", "--all", "KILL"], CMD, "kill", reorder=True)
    assert p.args == ["KILL", "ID"] and p["all"] is True


def test_reordering_stops_at_double_dash():
    p = parse(["ID", "--", "--force"], CMD, "delete", reorder=True)
    assert p.args == ["ID", "--force"] and p["force"] is False


def test_without_reordering_flags_after_the_arguments_stay_arguments():
    assert parse(["ID", "--force"], CMD, "exec").args == ["ID", "--force"]


def test_reorder_args_keeps_the_order_of_flags_and_of_arguments():
    known = {"force": CMD[0], "f": CMD[0], "memory-swap": CMD[1]}
    assert reorder_args(["a", "-f", "b", "--memory-swap=1", "c"], known) == \
        ["-f", "b", "--memory-swap=1", "a", "c"]


# --- Go's flag package: forms and errors -----------------------------------------------------

def test_a_lone_dash_is_an_argument():
    assert parse(["-", "x"], FLAGS, "spec").args == ["-", "x"]


def test_three_dashes_are_bad_flag_syntax():
    with pytest.raises(FlagError, match="^bad flag syntax: ---x$"):
        parse(["---x"], FLAGS, "")


def test_invalid_boolean_value_names_the_flag_as_given():
    with pytest.raises(FlagError, match='^invalid boolean value "maybe" for -d: parse error$'):
        parse(["-d=maybe"], FLAGS, "run")


def test_flag_errors_name_the_flag_with_one_dash():
    with pytest.raises(FlagError, match="^flag needs an argument: -bundle$"):
        parse(["--bundle"], FLAGS, "create")
    with pytest.raises(FlagError, match='^invalid value "x" for flag -preserve-fds: parse error$'):
        parse(["--preserve-fds=x"], FLAGS, "create")


@pytest.mark.parametrize("text,value", [("10", 10), ("-5", -5), ("+7", 7), ("010", 8),
                                        ("0x1f", 31), ("0o17", 15), ("0b101", 5)])
def test_integers_parse_as_go_strconv_with_base_0(text, value):
    assert parse_int(text) == value


@pytest.mark.parametrize("text,why", [("x", "parse error"), ("", "parse error"),
                                      ("1.5", "parse error"), (str(1 << 63), "value out of range")])
def test_bad_integers_give_gos_reason(text, why):
    with pytest.raises(ValueError, match=why):
        parse_int(text)


def test_an_int64_slice_flag_reports_strconv():
    flags = [Flag("additional-gids", "intlist", [], aliases=("g",))]
    assert parse(["-g", "1", "-g", "0x10"], flags, "exec")["additional-gids"] == [1, 16]
    with pytest.raises(FlagError, match='strconv.ParseInt: parsing "x": invalid syntax'):
        parse(["-g", "x"], flags, "exec")


@pytest.mark.parametrize("kw,words", [({"exact": 1}, "exactly 1"), ({"minimum": 2}, "a minimum of 2"),
                                      ({"maximum": 0}, "a maximum of 0")])
def test_argument_counts_as_runcs_checkargs(kw, words):
    p = parse(["a"], FLAGS, "state") if "exact" not in kw else parse([], FLAGS, "state")
    with pytest.raises(ArgCountError, match=f'"state" requires {words} argument\\(s\\)$'):
        need_args(p, "state", **kw)


# --- help pages ------------------------------------------------------------------------------

def test_a_command_page_has_runcs_sections_and_aligned_options():
    from ocirt.cli import list as list_cmd, usage
    page = usage.command_page("list", "lists containers", list_cmd.FLAGS)
    assert page.startswith("NAME:\n   ocirt list - lists containers\n\nUSAGE:\n"
                           "   ocirt list [command options] [arguments...]\n\nDESCRIPTION:\n   ")
    assert page.endswith("\nOPTIONS:\n"
                         "   --format value, -f value  select one of: table or json (default: \"table\")\n"
                         "   --quiet, -q               display only container IDs\n   \n")


def test_a_command_without_flags_has_no_options_section():
    from ocirt.cli import state, usage
    page = usage.command_page("state", "output the state of a container", state.FLAGS)
    assert "OPTIONS:" not in page and "\n   ocirt state <container-id>\n" in page


def test_int_and_duration_defaults_are_shown_as_go_prints_them():
    from ocirt.cli import usage
    assert usage._flag_row(Flag("preserve-fds", "int", 0, help="n")) == ("--preserve-fds value",
                                                                      "n (default: 0)")
    assert usage._flag_row(Flag("interval", "duration", 5.0, help="i")) == ("--interval value",
                                                                         "i (default: 5s)")


def test_list_table_pads_as_gos_tabwriter():
    from ocirt.cli.list import tabwriter
    assert tabwriter([["ID", "STATUS", "OWNER"], ["a-long-container-id", "running", "root"]]) == (
        "ID                    STATUS      OWNER\n"
        "a-long-container-id   running     root\n")


# --- debug lines -------------------------------------------------------------------------

class _Unprintable:
    def __str__(self) -> str:
        raise AssertionError("formatted although --debug is off")

    __repr__ = __str__


def test_debug_lines_are_not_formatted_when_debug_is_off():
    from ocirt.log import Logger
    log = Logger()
    log.configure(None, "text", False)
    log.debug("value %s", _Unprintable())


def test_debug_lines_are_formatted_when_debug_is_on(tmp_path):
    from ocirt.log import Logger
    log = Logger()
    log.configure(str(tmp_path / "log"), "json", True)
    log.debug("mounting %s on %s", "proc", "/proc")
    line = (tmp_path / "log").read_text()
    assert line.startswith('{"level":"debug","msg":"mounting proc on /proc","time":"')
    fds = log.child_fds()
    assert fds and all(not os.get_inheritable(fd) for fd in fds)   # closed by exec
    for fd in fds:
        os.close(fd)
