"""Go-style flag parsing, as containerd, conmon and podman send flags."""

from __future__ import annotations

import pytest

from ocirt.cli.flags import Flag, parse, parse_duration
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
