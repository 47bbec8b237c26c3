"""ps: the host pids of the container's cgroup, as JSON or filtered from ps(1)'s table."""

from __future__ import annotations

import sys

from ocirt.cli import common
from ocirt.cli.flags import Flag, need_args
from ocirt.errors import OcirtError, UsageError

USAGE = "<container-id> [ps options]"
FLAGS = [Flag("format", "str", "table", aliases=("f",), help="select one of: table or json"),
         common.HELP]


def run(ctx, parsed) -> int:
    need_args(parsed, "ps", minimum=1, usage=USAGE)
    fmt = parsed["format"]
    if fmt not in ("table", "json"):
        raise UsageError(f"invalid format option: {fmt}")
    from ocirt.lifecycle.container import Container
    c = Container.load(common.store(ctx), parsed.args[0])
    cg = c.cgroup()
    pids = cg.pids() if cg is not None else []
    if fmt == "json":
        import json
        sys.stdout.write(json.dumps(pids or None) + "\n")  # Go encodes an empty slice as null
        return 0
    ps_args = parsed.args[1:] or ["-ef"]
    import subprocess
    try:
        out = subprocess.run(["ps", *ps_args], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, check=False).stdout.decode(errors="replace")
    except OSError as e:
        raise OcirtError(f"ps: {e.strerror}") from None
    lines = out.split("\n")
    header = lines[0].split()
    if "PID" not in header:
        raise OcirtError("couldn't find PID field in ps output")
    col = header.index("PID")
    wanted = set(pids)
    sys.stdout.write(lines[0] + "\n")
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in wanted:
            sys.stdout.write(line + "\n")
    return 0
