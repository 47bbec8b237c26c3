"""Long runs leak nothing: 100 lifecycle cycles and 100 rounds of execs into one container,
with fds, processes, threads, zombies, mounts, cgroup directories, state directories and ptys
counted before and after (hack/soak runs the same for 1,000 and prints the figures)."""

from __future__ import annotations

import sys

import pytest

from ocirt_testlib import REPO

sys.path.insert(0, str(REPO / "hack"))
from soaklib import Soak, growth, sleeper_bundle  # noqa: E402

CYCLES = 100


@pytest.fixture
def soak(ocirt, bundle, tmp_path, cid):
    return Soak(ocirt, str(bundle.path), bundle.config["root"]["path"], cid)


def test_lifecycle_cycles_leak_nothing(soak):
    soak.lifecycle(1)        # first-use caches
    before = soak.counts()
    soak.lifecycle(CYCLES)
    assert growth(before, soak.counts()) == {}


def test_execs_into_one_container_leak_nothing(soak, bundle, tmp_path, cid):
    target = f"{cid}-exec"
    soak.call("run", "--detach", "--bundle", sleeper_bundle(str(bundle.path), str(tmp_path)),
              target)
    soak.execs(target, 1)
    before = soak.counts(target)
    soak.execs(target, CYCLES)
    assert growth(before, soak.counts(target)) == {}
