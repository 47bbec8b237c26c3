from __future__ import annotations

import sys

from ocirt import jsonio
from ocirt.cli import common
from ocirt.cli.flags import need_args

FLAGS = [common.HELP]


def run(ctx, parsed) -> int:
    need_args(parsed, "state", exact=1)
    from ocirt.lifecycle.container import Container
    c = Container.load(common.store(ctx), parsed.args[0])
    sys.stdout.write(jsonio.dumps(c.oci_state(), indent=2))
    return 0
