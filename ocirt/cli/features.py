from __future__ import annotations

import json
import sys

from ocirt.cli import common
from ocirt.cli.flags import need_args

FLAGS = [common.HELP]


def run(ctx, parsed) -> int:
    need_args(parsed, "features", exact=0)
    from ocirt.features import document
    sys.stdout.write(json.dumps(document(), indent=4) + "\n")
    return 0
