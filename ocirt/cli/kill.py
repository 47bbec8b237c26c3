from __future__ import annotations

from ocirt.cli import common
from ocirt.cli.flags import Flag, need_args

FLAGS = [Flag("all", "bool", False, aliases=("a",), help="send the specified signal to all processes inside the container"),
         common.HELP]


def run(ctx, parsed) -> int:
    need_args(parsed, "kill", minimum=1)
    need_args(parsed, "kill", maximum=2)
    from ocirt.lifecycle.kill import kill, parse_signal
    sig = parse_signal(parsed.args[1] if len(parsed.args) > 1 else "SIGTERM")
    kill(common.store(ctx), parsed.args[0], sig, parsed["all"])
    return 0
