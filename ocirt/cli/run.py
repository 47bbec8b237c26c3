from __future__ import annotations

from ocirt.cli import common
from ocirt.cli.flags import Flag, need_args

FLAGS = common.CREATE_FLAGS + [
    Flag("detach", "bool", False, aliases=("d",), help="detach from the container's process"),
    Flag("keep", "bool", False, help="do not delete the container after it exits"),
    Flag("no-subreaper", "bool", False, help="accepted for runc compatibility"),
]


def run(ctx, parsed) -> int:
    need_args(parsed, "run", exact=1)
    from ocirt.lifecycle.run import run as run_container
    return run_container(common.store(ctx), parsed.args[0], common.create_options(ctx, parsed),
                         detach=parsed["detach"], keep=parsed["keep"])
