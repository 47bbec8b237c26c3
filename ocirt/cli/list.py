from __future__ import annotations

import sys

from ocirt.cli import common
from ocirt.cli.flags import Flag
from ocirt.errors import UsageError

USAGE = ""
FLAGS = [Flag("format", "str", "table", aliases=("f",), help="select one of: table or json"),
         Flag("quiet", "bool", False, aliases=("q",), help="display only container IDs"),
         common.HELP]


def run(ctx, parsed) -> int:
    if parsed.args:
        raise UsageError('"list" requires exactly 0 arguments')
    fmt = parsed["format"]
    if fmt not in ("table", "json"):
        raise UsageError(f"invalid format option: {fmt}")
    from ocirt.errors import ContainerNotFound
    from ocirt.lifecycle.container import Container
    store = common.store(ctx)
    states = []
    for cid in store.list_ids():
        try:
            states.append(Container.load(store, cid).oci_state())
        except ContainerNotFound:
            continue
    if parsed["quiet"]:
        for st in states:
            sys.stdout.write(st["id"] + "\n")
        return 0
    if fmt == "json":
        from ocirt import jsonio
        sys.stdout.write(jsonio.dumps(states or None) + "\n")
        return 0
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    for st in states:
        rows.append((st["id"], str(st["pid"]), st["status"], st["bundle"] or "",
                     st["created"] or "", st["owner"] or ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        sys.stdout.write("   ".join(v.ljust(widths[i]) for i, v in enumerate(r)).rstrip() + "\n")
    return 0
