"""The launcher runs without `site` (-S) to keep start-up lean; code paths that need a library
from site-packages (jsonschema to explain a config error, psutil, pyroute2) call enable() first."""

from __future__ import annotations

import sys


def enable() -> None:
    if sys.flags.no_site and not getattr(enable, "_done", False):
        import site
        site.main()
        enable._done = True  # type: ignore[attr-defined]
