"""The launcher turns the cyclic garbage collector off for start-up; long waits turn it on."""

from __future__ import annotations

import gc
import os

import pytest

from ocirt.lifecycle import foreground


@pytest.fixture
def exited_child():
    """A child that exits with 3, the collector off and unfrozen (as in the launcher); both
    put back afterwards."""
    was = gc.isenabled()
    gc.disable()
    gc.unfreeze()
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    yield pid
    gc.unfreeze()
    if was:
        gc.enable()
    else:
        gc.disable()


def test_foreground_wait_turns_the_collector_back_on(exited_child):
    assert foreground.wait(exited_child) == 3
    assert gc.isenabled()


def test_foreground_wait_freezes_what_exists_so_no_collection_walks_it(exited_child):
    foreground.wait(exited_child)
    assert gc.get_freeze_count() > 0
