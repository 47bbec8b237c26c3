"""The VM lane's host side: tests/vm runs the guest selection (lane.GUEST_SELECTION) in one
booted guest per session and reports each guest test as a host test."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import lane  # noqa: E402


@pytest.fixture(scope="session")
def guest_run(tmp_path_factory) -> lane.GuestRun:
    """The whole guest selection, run once in a freshly booted guest."""
    return lane.run_selection_in_guest(tmp_path_factory.mktemp("vm"))
