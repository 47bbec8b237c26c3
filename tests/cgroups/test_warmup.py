"""The cgroup warm-up: a background no-op migration that never moves the runtime."""

from __future__ import annotations

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# Waits (up to 5 s) until the number of extra threads is N.
WAIT = """
def wait_threads(n):
    for _ in range(2500):
        if _thread._count() == n:
            return n
        time.sleep(0.002)
    return _thread._count()
"""


def run_probe(body: str) -> list[str]:
    code = (f"import sys, os, time, _thread; sys.path.insert(0, {REPO!r})\n"
            "from ocirt.cgroups import warmup\n" + WAIT + body)
    p = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.split("\n")


def test_warmup_finds_this_process_cgroup_procs_file():
    path = run_probe("print(warmup._own_procs_file())")[0]
    assert path.endswith("/cgroup.procs") and path.startswith("/sys/fs/cgroup")
    with open(path) as f:   # this test's own process is listed there too (same cgroup)
        assert str(os.getpid()) in f.read().split()


def test_warmup_leaves_the_runtime_in_its_own_cgroups():
    out = run_probe(
        "before = open('/proc/self/cgroup').read()\n"
        "warmup.start(); time.sleep(0.05)\n"
        "print(before == open('/proc/self/cgroup').read())\n"
        "warmup.stop()\n")
    assert out[0] == "True"


def test_warmup_thread_ends_when_stopped():
    out = run_probe(
        "warmup.start(); print(wait_threads(1))\n"
        "warmup.stop(); print(wait_threads(0))\n")
    assert out[:2] == ["1", "0"]


def test_warmup_thread_ends_by_itself_when_never_stopped():
    out = run_probe(
        "warmup._MAX_ROUNDS = 3\n"
        "warmup.start(); print(wait_threads(1)); print(wait_threads(0))\n")
    assert out[:2] == ["1", "0"]


def test_warmup_start_is_idempotent():
    out = run_probe("warmup.start(); warmup.start(); wait_threads(1); time.sleep(0.05)\n"
                    "print(_thread._count())\n"
                    "warmup.stop()\n")
    assert out[0] == "1"
