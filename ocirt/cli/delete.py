from __future__ import annotations

from ocirt.cli import common
from ocirt.cli.flags import Flag, need_args

FLAGS = [Flag("force", "bool", False, aliases=("f",), help="forcibly deletes the container if it is still running (uses SIGKILL)"),
         common.HELP]


def run(ctx, parsed) -> int:
    need_args(parsed, "delete", exact=1)
    from ocirt.lifecycle.delete import delete
    delete(common.store(ctx), parsed.args[0], parsed["force"])
    return 0
