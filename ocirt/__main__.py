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
    from ocirt.cli.main import main
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


if __name__ == "__main__":
    run()
