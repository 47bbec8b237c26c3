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


def missing_files(controller: str, *names: str) -> list[str]:
    """Which of these files a cgroup of this host's `controller` hierarchy lacks: kernel
    options (RT group scheduling, swap accounting), versions and block schedulers decide
    which exist. Looked up in an empty probe cgroup, as the root lacks some (pids.max)."""
    h = detect.host()
    if controller in h.v1:
        mnt = h.v1[controller].mountpoint
    elif h.unified is not None and controller in h.v2_controllers:
        mnt = h.unified.mountpoint
    else:
        pytest.skip(f"no {controller} cgroup controller on this host")
    probe = os.path.join(mnt, f"{PREFIX}-probe")
    os.makedirs(probe, exist_ok=True)
    try:
        return [n for n in names if not os.path.exists(os.path.join(probe, n))]
    finally:
        os.rmdir(probe)


def need_files(controller: str, *names: str) -> None:
    """Skip unless a cgroup of this host's `controller` hierarchy has these files."""
    missing = missing_files(controller, *names)
    if missing:
        pytest.skip(f"this kernel's {controller} cgroup has no {', '.join(missing)}")


def need_hugepages(*sizes_kb: int) -> None:
    missing = [kb for kb in sizes_kb
               if not os.path.isdir(f"/sys/kernel/mm/hugepages/hugepages-{kb}kB")]
    if missing:
        pytest.skip(f"no huge pages of {', '.join(f'{kb}kB' for kb in missing)} on this host")


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




def cg_dir(m: Manager, controller: str) -> str:
    """The directory that holds `controller`'s files for manager `m`: its v1 hierarchy's, or
    the cgroup2 directory (a pure v2 host, or a hybrid one whose cgroup2 has it)."""
    r = m.route(controller)
    if r is None:
        pytest.skip(f"no {controller} cgroup controller on this host")
    return r[1]


def on_v2(controller: str) -> bool:
    """Whether this host's `controller` is served by its cgroup2 hierarchy (all of them on a
    pure v2 host; hugetlb alone on the hybrid test machine)."""
    # (blkio is v1's name of what cgroup v2 calls io)
    return detect.host().route("io" if controller == "blkio" else controller) == 2


def all_dirs(m: Manager) -> list[str]:
    return sorted(set(m.paths.values()))
