"""`python -m ocirt`, and the `ocirt` command of a pip install (setup.cfg's console script):
the command run as the launcher, hack/ocirt, runs it. Tiny: nothing is imported before the
verb is known but what every call needs."""

import sys


def run() -> None:
    """Run the command in sys.argv and exit with its status, without the interpreter's teardown
    (module and object finalisation, milliseconds per call)."""
    import gc
    import os
    # A call allocates mostly while importing: the cyclic collector would walk the freshly
    # loaded modules for nothing. run, exec and events turn it back on.
    gc.disable()
    from ocirt import codecache
    codecache.install()             # served from hack/install's cache when there is one
    if {"create", "run", "exec"} & set(sys.argv[1:]):
        # Re-executed through a sealed interpreter before the CLI is even imported, when needed
        # (see ocirt/spawn/exeseal.py; an argument that only looks like a verb costs a needless
        # re-execution). The CLI checks again and reports a failure as its one error line.
        from ocirt.errors import SecurityError
        from ocirt.spawn import exeseal
        try:
            exeseal.ensure_sealed(sys.argv[1:])
        except SecurityError:
            pass
    from ocirt.cli.main import main
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


if __name__ == "__main__":
    run()
