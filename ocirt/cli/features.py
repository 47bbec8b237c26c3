from __future__ import annotations

import json
import sys

from ocirt.cli import common
from ocirt.errors import UsageError

USAGE = ""
FLAGS = [common.HELP]


def run(ctx, parsed) -> int:
    if parsed.args:
        raise UsageError('"features" requires exactly 0 arguments')
    from ocirt.features import document
    sys.stdout.write(json.dumps(document(), indent=4) + "\n")
    return 0
