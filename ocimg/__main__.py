"""`python -m ocimg`: the same command as `ocimg`."""

import sys

from ocimg.cli import main

if __name__ == "__main__":
    sys.exit(main())
