"""Fixtures for the rootfs tests: a fresh busybox bundle per test, removed afterwards, and a
check that no test leaves a mount behind in the host's mount table."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import rootfs_harness as harness  # noqa: E402


def _host_mountinfo() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return sorted(f.read().splitlines())


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
