"""The VM lane's host side: tests/vm runs the guest selection (lane.GUEST_SELECTION) in one
booted guest per session and reports each guest test as a host test."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
