import sys

from ocirt.cli.main import main

sys.exit(main())
