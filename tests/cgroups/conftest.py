"""Fixtures for the cgroup library tests: managers with unique ids on the real cgroupfs,
processes placed in them, and finalizers that leave no cgroup or process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from cghelpers import PREFIX, _counter, need_root, read  # noqa: E402
from ocirt.cgroups import detect  # noqa: E402
from ocirt.cgroups.detect import Host  # noqa: E402
from ocirt.cgroups.manager import Manager  # noqa: E402


@pytest.fixture
def make():
    need_root()
    made: list[Manager] = []

    def _make(cgroups_path: str | None = "", *, host: Host | None = None,
              rootless: bool = False) -> Manager:
        cid = f"{PREFIX}-{next(_counter)}"
        if cgroups_path == "":
            cgroups_path = None
        elif cgroups_path is not None:
            cgroups_path = cgroups_path.replace("{id}", cid).replace("{prefix}", PREFIX)
        m = Manager.for_host(host or detect.host(), cid, cgroups_path, rootless=rootless)
        made.append(m)
        return m

    yield _make
    for m in reversed(made):
        try:
            if m.is_frozen():
                m.thaw()
        except Exception:
            pass
        try:
            m.destroy()
        except Exception:
            pass
    _sweep()


def _sweep() -> None:
    """Remove any directory this test run left (by its unique prefix) in every hierarchy."""
    h = detect.host()
    mounts = {x.mountpoint for x in h.v1.values()}
    if h.unified is not None:
        mounts.add(h.unified.mountpoint)
    for mnt in mounts:
        for top, dirs, _ in os.walk(mnt, topdown=False):
            for d in dirs:
                if PREFIX in os.path.join(top, d):
                    path = os.path.join(top, d)
                    for _ in range(50):
                        try:
                            os.rmdir(path)
                            break
                        except FileNotFoundError:
                            break
                        except OSError:
                            procs = ""
                            try:
                                procs = read(path, "cgroup.procs")
                            except OSError:
                                pass
                            for pid in procs.split():
                                try:
                                    os.kill(int(pid), signal.SIGKILL)
                                except (ProcessLookupError, ValueError):
                                    pass
                            time.sleep(0.05)


@pytest.fixture
def spawn():
    """spawn(manager, argv) -> Popen of a process that is in the cgroup before it execs."""
    procs: list[tuple[Manager, subprocess.Popen]] = []

    def _spawn(m: Manager, argv: list[str], **kw) -> subprocess.Popen:
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        p = subprocess.Popen(argv, preexec_fn=lambda: m.add(os.getpid()), **kw)
        procs.append((m, p))
        return p

    yield _spawn
    for m, p in procs:
        if p.poll() is None:
            try:
                if m.is_frozen():
                    m.thaw()   # a frozen task cannot act on SIGKILL
            except Exception:
                pass
            try:
                p.kill()
            except ProcessLookupError:
                pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
