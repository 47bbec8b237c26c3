from __future__ import annotations

import sys

from ocirt.cli import common
from ocirt.cli.flags import Flag, need_args
from ocirt.errors import OcirtError

FLAGS = [Flag("format", "str", "table", aliases=("f",), help="select one of: table or json"),
         Flag("quiet", "bool", False, aliases=("q",), help="display only container IDs"),
         common.HELP]


def run(ctx, parsed) -> int:
    need_args(parsed, "list", exact=0)
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
    fmt = parsed["format"]
    if fmt == "json":
        from ocirt import jsonio
        # Compact, one line, as Go's json.Encoder writes it (an empty list is null).
        sys.stdout.write(jsonio.dumps(states or None, compact=True) + "\n")
        return 0
    if fmt != "table":
        raise OcirtError("invalid format option")
    rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
    for st in states:
        rows.append([st["id"], str(st["pid"]), st["status"], st["bundle"] or "",
                     st["created"] or "", st["owner"] or ""])
    sys.stdout.write(tabwriter(rows))
    return 0


def tabwriter(rows: list[list[str]]) -> str:
    """Go's tabwriter as runc's list sets it up (minwidth 12, padding 3): every column but the
    last padded to max(12, widest cell + 3)."""
    widths = [max(12, max(len(r[i]) for r in rows) + 3) for i in range(len(rows[0]) - 1)]
    return "".join("".join(c.ljust(w) for c, w in zip(r, widths)) + r[-1] + "\n" for r in rows)
