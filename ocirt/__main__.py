"""`python -m ocirt`: the same command as `ocirt` (create, run and exec check the interpreter
the same way, see ocirt/spawn/exeseal.py)."""

import sys

from ocirt.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
