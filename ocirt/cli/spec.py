from __future__ import annotations

import json
import os

from ocirt.cli import common
from ocirt.cli.flags import Flag, need_args
from ocirt.errors import OcirtError

FLAGS = [Flag("bundle", "str", "", aliases=("b",), help="path to the root of the bundle directory"),
         Flag("rootless", "bool", False, help="generate a configuration for a rootless container"),
         common.HELP]


def run(ctx, parsed) -> int:
    need_args(parsed, "spec", exact=0)
    from ocirt.config.defaults import default_spec
    bundle = parsed["bundle"] or "."
    if not os.path.isdir(bundle):
        raise OcirtError(f"chdir {bundle}: no such file or directory")
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise OcirtError("File config.json exists. Remove it first")
    with open(path, "w") as f:
        json.dump(default_spec(rootless=parsed["rootless"]), f, indent="\t")
    return 0
