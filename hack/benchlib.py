"""What hack/bench and hack/bench-floor share: the interpreter, a busybox `true` bundle, timing."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
INTERPRETER = "/usr/local/lib/ocirt/python3"    # what the launcher runs (hack/install)


def true_bundle(work: str) -> str:
    """A busybox bundle running `true`, made by hack/mkbundle under `work`."""
    bundle = os.path.join(work, "bundle")
    subprocess.run([os.path.join(HERE, "mkbundle"), bundle, "true"], check=True,
                   stdout=subprocess.DEVNULL)
    return bundle


def timed(cmd: list[str], **kw) -> float:
    """Seconds `cmd` took; exits with its error if it failed."""
    t = time.perf_counter()
    # A file, not a pipe: a created container keeps the runtime's stderr open.
    with tempfile.TemporaryFile() as err:
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=err, **kw)
        took = time.perf_counter() - t
        if p.returncode != 0:
            err.seek(0)
            sys.exit(f"{' '.join(cmd)} failed: {err.read().decode(errors='replace').strip()}")
    return took
