"""--preserve-fds N is bounded by the fds that can exist (the open-file limit), and every fd of
the range must have been passed: a wrong value is a one-line error naming it, before anything
exists."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ocirt_testlib import cgroup_dirs_named

HUGE = "99999999999999999999"


def _with_fds(ocirt, *args: str, fds: tuple[int, ...] = (3, 4)) -> subprocess.CompletedProcess:
    """`ocirt ARGS` with /dev/null on the given fds (and nothing above them)."""
    null = os.open("/dev/null", os.O_RDONLY)

    def place() -> None:
        for fd in fds:
            os.dup2(null, fd)

    try:
        return subprocess.run(ocirt.cmd(*args), preexec_fn=place, pass_fds=fds,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(null)


@pytest.mark.parametrize("verb", ["create", "run"])
def test_a_huge_count_is_out_of_range_and_creates_nothing(ocirt, bundle, cid, verb):
    p = ocirt(verb, "--preserve-fds", HUGE, "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    # Go's flag package's words, as runc prints them
    assert b"for flag -preserve-fds: value out of range" in p.stderr, p.stderr
    assert ocirt.ids() == []
    assert cgroup_dirs_named(cid) == []


def test_a_count_above_the_open_file_limit_is_out_of_range(ocirt, bundle, cid):
    import resource
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    p = ocirt("create", "--preserve-fds", str(soft), "--bundle", str(bundle.path), cid)
    assert p.returncode == 1 and b"value out of range" in p.stderr


def test_exec_with_a_huge_count_is_out_of_range(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    ocirt.ok("run", "--detach", "--bundle", str(bundle.path), cid)
    p = ocirt("exec", "--preserve-fds", HUGE, cid, "true")
    assert p.returncode == 1 and b"value out of range" in p.stderr
    assert json.loads(ocirt.ok("ps", "--format", "json", cid).stdout) == [ocirt.state(cid)["pid"]]


def test_an_fd_not_passed_is_named(ocirt, bundle, cid):
    p = _with_fds(ocirt, "create", "--preserve-fds", "3", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    assert b"file descriptor 5 was not passed" in p.stderr
    assert ocirt.ids() == []


def test_exec_names_an_fd_not_passed(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    ocirt.ok("run", "--detach", "--bundle", str(bundle.path), cid)
    p = _with_fds(ocirt, "exec", "--preserve-fds", "3", cid, "true")
    assert p.returncode == 255      # exec's status for a failure before the process runs
    assert b"file descriptor 5 was not passed" in p.stderr
