"""pause and resume (one module for both verbs)."""

from __future__ import annotations

from ocirt.cli import common
from ocirt.cli.flags import need_args

FLAGS = [common.HELP]


def run(ctx, parsed) -> int:
    need_args(parsed, ctx.command, exact=1)
    from ocirt.lifecycle import pause
    fn = pause.resume if ctx.command == "resume" else pause.pause
    fn(common.store(ctx), parsed.args[0])
    return 0
