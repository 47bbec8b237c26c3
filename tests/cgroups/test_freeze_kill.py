"""freeze/thaw/is_frozen and kill_all, on v1 (this host's freezer) and v2 (cgroup.freeze,
cgroup.kill on this host's cgroup2 hierarchy)."""

from __future__ import annotations

import signal

import pytest

from cghelpers import read, v2_host, wait_for


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("State:"):
                return line.split()[1]
    return "?"


# "host": this host's own freezer (v1 freezer.state, or cgroup.freeze on a pure v2 host);
# "cgroup2": the cgroup2 hierarchy used as a pure v2 host would be.
@pytest.mark.parametrize("v2", [False, True], ids=["host", "cgroup2"])
def test_freeze_thaw(make, spawn, v2):
    m = make("/{prefix}-fz/{id}", host=v2_host() if v2 else None)
    m.create(None)
    p = spawn(m, ["sh", "-c", "while :; do :; done"])
    wait_for(lambda: m.pids() == [p.pid], what="pid")
    assert not m.is_frozen()
    m.freeze()
    assert m.is_frozen()
    if "freezer" not in m.paths:
        assert read(m.paths[""], "cgroup.freeze") == "1"
        assert "frozen 1" in read(m.paths[""], "cgroup.events")
    else:
        assert read(m.paths["freezer"], "freezer.state") == "FROZEN"
    wait_for(lambda: _state(p.pid) in ("D", "S", "T"), what="task frozen")
    m.thaw()
    assert not m.is_frozen()
    wait_for(lambda: _state(p.pid) == "R", what="task running")


@pytest.mark.parametrize("v2", [False, True], ids=["host", "cgroup2"])
def test_kill_all(make, spawn, v2):
    m = make("/{prefix}-kill/{id}", host=v2_host() if v2 else None)
    m.create(None)
    p = spawn(m, ["sh", "-c", "sleep 100 & sleep 100 & sh -c 'sleep 100 & wait' & wait"])
    wait_for(lambda: len(m.pids()) == 5, what="5 processes")
    m.kill_all(signal.SIGKILL)
    assert p.wait(timeout=20) == -9
    wait_for(lambda: m.pids() == [], what="all gone")
    m.destroy()


def test_kill_all_term_keeps_paused_container_paused(make, spawn):
    m = make()
    m.create(None)
    p = spawn(m, ["sleep", "100"])
    wait_for(lambda: m.pids() == [p.pid], what="pid")
    m.kill_all(signal.SIGTERM)
    assert p.wait(timeout=20) == -signal.SIGTERM
    q = spawn(m, ["sleep", "100"])
    wait_for(lambda: m.pids() == [q.pid], what="pid")
    m.freeze()
    m.kill_all(signal.SIGTERM)
    assert m.is_frozen(), "a non-fatal signal leaves a paused container paused"
    m.thaw()
    assert q.wait(timeout=20) == -signal.SIGTERM


def test_destroy_kills_leftovers(make, spawn):
    m = make()
    m.create(None)
    p = spawn(m, ["sleep", "100"])
    wait_for(lambda: m.pids() == [p.pid], what="pid")
    m.freeze()
    m.destroy()              # frozen and busy: thaws by killing, waits, removes
    assert p.wait(timeout=20) == -9
    import os
    assert not any(os.path.exists(d) for d in m.paths.values())
