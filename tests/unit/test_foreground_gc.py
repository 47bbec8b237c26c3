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

