"""`ocirt validate`: report every problem of a bundle, one line each (or a JSON list)."""

from __future__ import annotations

import sys

from ocirt.cli import common
from ocirt.cli.flags import Flag, FlagError, need_args

FLAGS = [
    Flag("bundle", "str", "", aliases=("b",),
         help="path to the root of the bundle directory, defaults to the current directory"),
    Flag("format", "str", "text", aliases=("f",), help="output format: text or json"),
    Flag("host", "bool", False, help="also check what this host cannot do for the config "
                                     "(controllers, LSMs, namespaces, ...)"),
    common.HELP,
]


def run(ctx, parsed) -> int:
    need_args(parsed, "validate", exact=0)
    fmt = parsed["format"]
    if fmt not in ("text", "json"):
        raise FlagError(f"invalid format {fmt!r}: text or json")
    from ocirt.config.report import ERROR, bundle_problems

    problems = bundle_problems(parsed["bundle"] or ".", host=parsed["host"])
    errors = sum(p.level == ERROR for p in problems)
    if fmt == "json":
        from ocirt import jsonio
        sys.stdout.write(jsonio.dumps([p.as_dict() for p in problems], indent=2) + "\n")
    else:
        out = [p.line() + "\n" for p in problems]
        warnings = len(problems) - errors
        out.append(f"{errors} error(s), {warnings} warning(s)\n" if problems else "valid\n")
        sys.stdout.write("".join(out))
    return 1 if errors else 0
