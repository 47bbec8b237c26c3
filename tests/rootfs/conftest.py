"""Fixtures for the rootfs tests: a fresh busybox bundle per test, removed afterwards, and a
check that no test leaves a mount behind in the host's mount table."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import rootfs_harness as harness  # noqa: E402


def _host_mountinfo() -> list[str]:
    """Host mounts, minus those other test suites running on this machine at the same time
    make in pytest's own tmp area (ours live under /tmp/ocirt-*)."""
    with open("/proc/self/mountinfo") as f:
        return sorted(line for line in f.read().splitlines()
                      if not line.split()[4].startswith("/tmp/pytest-of-"))


@pytest.fixture(autouse=True)
def no_host_mounts_left():
    if os.geteuid() != 0:
        pytest.skip("rootfs tests need root")
    before = _host_mountinfo()
    yield
    assert _host_mountinfo() == before, "a test changed the host's mount table"


@pytest.fixture
def bundle():
    b = harness.Bundle()
    yield b
    b.remove()
    assert not os.path.exists(b.path)
