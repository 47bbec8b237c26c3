from __future__ import annotations

from ocirt.cli import common
from ocirt.cli.flags import need_args

FLAGS = common.CREATE_FLAGS


def run(ctx, parsed) -> int:
    need_args(parsed, "create", exact=1)
    from ocirt.lifecycle.create import create
    create(common.store(ctx), parsed.args[0], common.create_options(ctx, parsed))
    return 0
