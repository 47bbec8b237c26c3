"""Command-line flags parsed as runc parses them: urfave/cli v1.22 over Go's flag package.

Accepted forms: `--name value`, `--name=value`, `-name value`, `-name=value`, short aliases
(`-b value`), booleans as `--flag` or `--flag=true|false`. A flag that takes a value takes the
next argument whatever it looks like (`--memory-swap -1`).

Before parsing, a command's arguments are reordered as urfave/cli does (reorder_args): the
command's flags, with their values, move in front of the other arguments, so
`update ID --memory 1m`, `delete ID --force` and `kill ID KILL --all` work. `exec` and `ps` skip the reordering, as
runc's do, so `exec ID sh -c x` and `ps ID -ef` keep the command's own flags. Parsing then
stops at the first argument that is not a flag, or after `--`.
"""

from __future__ import annotations

import sys

from ocirt.errors import UsageError

# Plain classes rather than dataclasses: importing dataclasses costs ~20 ms of start-up.


class Flag:
    __slots__ = ("name", "kind", "default", "aliases", "help", "hidden")

    def __init__(self, name: str, kind: str = "bool", default: object = None,
                 aliases: tuple[str, ...] = (), help: str = "", hidden: bool = False) -> None:
        self.name = name
        self.kind = kind  # bool | str | int | list | intlist | duration
        self.default = default
        self.aliases = aliases
        self.help = help
        self.hidden = hidden


class Parsed:
    def __init__(self) -> None:
        self.values: dict[str, object] = {}
        self.args: list[str] = []
        self.given: set[str] = set()

    def __getitem__(self, key: str):
        return self.values[key]

    def get(self, key: str, default: object = None):
        return self.values.get(key, default)


class FlagError(UsageError):
    """The command line does not parse (Go's flag package's words): runc answers with
    "Incorrect Usage" and the command's help page."""


class ArgCountError(UsageError):
    """Too few or too many arguments (runc's checkArgs): "Incorrect Usage." and the help."""


_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}
_INT64 = 1 << 63


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration for the units managers use ("5s", "100ms", "1m30s")."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    s = text.strip()
    if s in ("0", ""):
        return 0.0
    total = 0.0
    i = 0
    while i < len(s):
        j = i
        while j < len(s) and (s[j].isdigit() or s[j] == "."):
            j += 1
        if j == i:
            raise ValueError(text)
        num = float(s[i:j])
        k = j
        while k < len(s) and not (s[k].isdigit() or s[k] == "."):
            k += 1
        unit = s[j:k]
        if unit not in units:
            raise ValueError(text)
        total += num * units[unit]
        i = k
    return total


def parse_int(text: str) -> int:
    """Go's strconv.ParseInt(text, 0, 64): a sign, then 0x/0o/0b or a leading 0 (octal).
    ValueError("parse error") or ValueError("value out of range"), as Go's flag reports."""
    s = text
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    base = 10
    low = s[:2].lower()
    if low in ("0x", "0o", "0b"):
        base = {"0x": 16, "0o": 8, "0b": 2}[low]
        s = s[2:]
    elif len(s) > 1 and s[0] == "0":
        base = 8
        s = s[1:]
    if not s or not s.replace("_", "").isascii() or s.strip() != s:
        raise ValueError("parse error")
    try:
        n = sign * int(s, base)
    except ValueError:
        raise ValueError("parse error") from None
    if not -_INT64 <= n < _INT64:
        raise ValueError("value out of range")
    return n


def reorder_args(args: list[str], known: dict[str, "Flag"]) -> list[str]:
    """urfave/cli's reorderArgs as Debian's runc 1.1.5 has it (urfave/cli 1.22.9): each of the
    command's own flags, with the argument after it when that is not itself one of them,
    moves in front of the other arguments; anything else (an unknown `-x` included) stays
    where it is, and `--` ends the reordering. Its quirk is kept too: a boolean flag also
    takes the next argument along (`kill ID --all KILL` names the container KILL, as runc)."""
    flags: list[str] = []
    rest: list[str] = []
    take_value = False
    for i, arg in enumerate(args):
        if take_value and not _is_flag(arg, known):
            take_value = False
            flags.append(arg)
        elif arg == "--":
            rest = ["--"] + rest + args[i + 1:]
            break
        elif _is_flag(arg, known):
            flags.append(arg)
            take_value = "=" not in arg
        else:
            rest.append(arg)
    return flags + rest


def _is_flag(arg: str, known: dict[str, "Flag"]) -> bool:
    if arg in ("-", "--") or not arg.startswith("-"):
        return False
    name = arg[2:] if arg.startswith("--") else arg[1:]
    return name.split("=", 1)[0] in known


def parse(argv: list[str], flags: list[Flag], where: str = "", reorder: bool = False) -> Parsed:
    by_name: dict[str, Flag] = {}
    for f in flags:
        by_name[f.name] = f
        for a in f.aliases:
            by_name[a] = f
    out = Parsed()
    for f in flags:
        out.values[f.name] = list(f.default or []) if f.kind in ("list", "intlist") else f.default
    if reorder:
        argv = reorder_args(argv, by_name)
    i = 0
    while i < len(argv):
        arg = argv[i]
        if len(arg) < 2 or arg[0] != "-":
            break
        if arg == "--":
            i += 1
            break
        name = arg[2:] if arg[1] == "-" else arg[1:]
        if not name or name[0] in "-=":
            raise FlagError(f"bad flag syntax: {arg}")
        value: str | None = None
        eq = name.find("=", 1)
        if eq > 0:
            name, value = name[:eq], name[eq + 1:]
        f = by_name.get(name)
        if f is None:
            raise FlagError(f"flag provided but not defined: -{name}")
        i += 1
        if f.kind == "bool":
            if value is None or value in _TRUE:
                v: object = True
            elif value in _FALSE:
                v = False
            else:
                raise FlagError(f'invalid boolean value "{value}" for -{name}: parse error')
        else:
            if value is None:
                if i >= len(argv):
                    raise FlagError(f"flag needs an argument: -{name}")
                value = argv[i]
                i += 1
            v = _value(f, name, value, out.values[f.name])
        out.values[f.name] = v
        out.given.add(f.name)
    out.args = argv[i:]
    return out


def _value(f: Flag, name: str, value: str, current: object) -> object:
    try:
        if f.kind == "int":
            return parse_int(value)
        if f.kind == "duration":
            try:
                return parse_duration(value)
            except ValueError:
                raise ValueError("parse error") from None
        if f.kind == "list":
            return current + [value]          # type: ignore[operator]
        if f.kind == "intlist":
            try:
                return current + [parse_int(value)]   # type: ignore[operator]
            except ValueError:
                raise ValueError(f'strconv.ParseInt: parsing "{value}": invalid syntax') from None
    except ValueError as e:
        raise FlagError(f'invalid value "{value}" for flag -{name}: {e}') from None
    return value


def need_args(parsed: Parsed, command: str, exact: int | None = None, minimum: int | None = None,
              maximum: int | None = None) -> None:
    """runc's checkArgs, with its words (its message starts with the program as invoked)."""
    n = len(parsed.args)
    prog = sys.argv[0] if sys.argv and sys.argv[0] else "ocirt"
    if exact is not None and n != exact:
        raise ArgCountError(f'{prog}: "{command}" requires exactly {exact} argument(s)')
    if minimum is not None and n < minimum:
        raise ArgCountError(f'{prog}: "{command}" requires a minimum of {minimum} argument(s)')
    if maximum is not None and n > maximum:
        raise ArgCountError(f'{prog}: "{command}" requires a maximum of {maximum} argument(s)')
