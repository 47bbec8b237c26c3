from __future__ import annotations

from ocirt.cli import common
from ocirt.cli.flags import need_args

FLAGS = [common.HELP]


def run(ctx, parsed) -> int:
    need_args(parsed, "start", exact=1)
    from ocirt.lifecycle.start import start
    start(common.store(ctx), parsed.args[0])
    return 0
