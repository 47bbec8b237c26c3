"""The launcher turns the cyclic garbage collector off for start-up; long waits turn it on."""

from __future__ import annotations

import gc
import os

from ocirt.lifecycle import foreground


def test_foreground_wait_turns_the_collector_back_on():
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    was = gc.isenabled()
    gc.disable()
    try:
        assert foreground.wait(pid) == 3
        assert gc.isenabled()
    finally:
        if not was:
            gc.disable()


def test_foreground_wait_freezes_what_exists_so_no_collection_walks_it():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    was = gc.isenabled()
    gc.disable()
    gc.unfreeze()
    try:
        foreground.wait(pid)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        if not was:
            gc.disable()
