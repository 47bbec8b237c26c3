"""Go-style flag parsing, as managers send flags to runc.

Accepted forms: `--name value`, `--name=value`, `-name value`, `-name=value`, short aliases
(`-b value`), booleans as `--flag`, `--flag=true|false`. Parsing stops at the first positional
argument or at `--` (urfave/cli without argument reordering), so `exec ID sh -c x` keeps the
command's own flags.
"""

from __future__ import annotations

from ocirt.errors import UsageError

# Plain classes rather than dataclasses: importing dataclasses costs ~20 ms of start-up.


class Flag:
    __slots__ = ("name", "kind", "default", "aliases", "help", "hidden")

    def __init__(self, name: str, kind: str = "bool", default: object = None,
                 aliases: tuple[str, ...] = (), help: str = "", hidden: bool = False) -> None:
        self.name = name
        self.kind = kind  # bool | str | int | list | duration
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


_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


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


def parse(argv: list[str], flags: list[Flag], where: str) -> Parsed:
    by_name: dict[str, Flag] = {}
    for f in flags:
        by_name[f.name] = f
        for a in f.aliases:
            by_name[a] = f
    out = Parsed()
    for f in flags:
        out.values[f.name] = list(f.default or []) if f.kind == "list" else f.default
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            out.args.extend(argv[i + 1:])
            return out
        if not arg.startswith("-") or arg == "-":
            out.args.extend(argv[i:])
            return out
        name = arg.lstrip("-")
        value: str | None = None
        if "=" in name:
            name, value = name.split("=", 1)
        f = by_name.get(name)
        if f is None:
            raise UsageError(f"flag provided but not defined: -{name}" + (f" ({where})" if where else ""))
        if f.kind == "bool":
            if value is None:
                v: object = True
            elif value in _TRUE:
                v = True
            elif value in _FALSE:
                v = False
            else:
                raise UsageError(f"invalid boolean value {value!r} for flag --{f.name}")
        else:
            if value is None:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: --{f.name}")
                value = argv[i]
            if f.kind == "int":
                try:
                    v = int(value, 0)
                except ValueError:
                    raise UsageError(f"invalid value {value!r} for flag --{f.name}: parse error") from None
            elif f.kind == "duration":
                try:
                    v = parse_duration(value)
                except ValueError:
                    raise UsageError(f"invalid value {value!r} for flag --{f.name}: invalid duration") from None
            elif f.kind == "list":
                v = out.values[f.name] + [value]
            else:
                v = value
        out.values[f.name] = v
        out.given.add(f.name)
        i += 1
    return out


def need_args(parsed: Parsed, command: str, exact: int | None = None, minimum: int | None = None,
              usage: str = "") -> None:
    n = len(parsed.args)
    if exact is not None and n != exact:
        raise UsageError(f'"{command}" requires exactly {exact} argument(s)' + (f": {usage}" if usage else ""))
    if minimum is not None and n < minimum:
        raise UsageError(f'"{command}" requires a minimum of {minimum} argument(s)' + (f": {usage}" if usage else ""))
