"""events: statistics once (--stats) or a stream of stats and OOM events (runc events)."""

from __future__ import annotations

from ocirt.cli import common
from ocirt.cli.flags import Flag, need_args

FLAGS = [Flag("interval", "duration", 5.0, help="set the stats collection interval"),
         Flag("stats", "bool", False, help="display the container's stats then exit"),
         common.HELP]


def run(ctx, parsed) -> int:
    need_args(parsed, "events", exact=1)
    from ocirt.lifecycle import events
    if parsed["stats"]:
        events.stats_once(common.store(ctx), parsed.args[0], parsed["interval"])
    else:
        events.stream(common.store(ctx), parsed.args[0], parsed["interval"])
    return 0
