"""Helpers shared by the cgroup tests (imported by name: conftest modules are not importable)."""

from __future__ import annotations

import itertools
import os
import time

import pytest

from ocirt.cgroups import detect
from ocirt.cgroups.detect import V2, Hierarchy, Host
from ocirt.cgroups.manager import Manager

PREFIX = f"ocirt-t{os.getpid()}"
_counter = itertools.count()

UNIFIED_MNT = "/sys/fs/cgroup/unified"


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")


def v2_host() -> Host:
    """This host's cgroup2 hierarchy seen as if it were a pure v2 host: the v2 code paths
    (eBPF devices, cgroup.freeze, cgroup.kill, hugetlb.*.max) then run for real."""
    h = detect.host()
    if h.unified is None:
        pytest.skip("no cgroup2 hierarchy mounted")
    return Host(mode=V2, unified=Hierarchy(h.unified.mountpoint, "/", frozenset(), 2))


def read(d: str, name: str) -> str:
    with open(os.path.join(d, name)) as f:
        return f.read().strip()


def wait_for(cond, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)




def all_dirs(m: Manager) -> list[str]:
    return sorted(set(m.paths.values()))
