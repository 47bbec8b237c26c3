import sys

from ocimg.cli import main

sys.exit(main())
