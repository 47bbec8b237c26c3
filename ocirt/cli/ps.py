"""ps: the host pids of the container's cgroup, as JSON or filtered from ps(1)'s table."""

from __future__ import annotations

import sys

from ocirt.cli import common
from ocirt.cli.flags import Flag, need_args
from ocirt.errors import OcirtError

FLAGS = [Flag("format", "str", "table", aliases=("f",), help="select one of: table or json"),
         common.HELP]


def run(ctx, parsed) -> int:
    need_args(parsed, "ps", minimum=1)
    from ocirt.lifecycle import ps
    pids = ps.pids(common.store(ctx), parsed.args[0])
    fmt = parsed["format"]
    if fmt not in ("table", "json"):
        raise OcirtError("invalid format option")
    if fmt == "json":
        import json
        sys.stdout.write(json.dumps(pids or None) + "\n")  # Go encodes an empty slice as null
        return 0
    sys.stdout.write(ps.table(pids, parsed.args[1:]))
    return 0
