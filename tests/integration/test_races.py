"""Concurrent calls: on one id, on one container, and many containers at once. Every call ends
with a result a manager can act on (success, or one of runc's error lines), and what is left
afterwards is exactly what the winners made."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from ocirt_testlib import cgroup_dirs_named, pids_with_cmdline, unique_id


def _together(n: int, call, then=None) -> list:
    """call(i) for i in range(n), all released at once; then(), if given, once the calls for
    which it is not needed (then_needed(i) false) are done."""
    gate = threading.Barrier(n)

    def one(i: int):
        gate.wait()
        return call(i)

    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(one, i) for i in range(n)]
        if then is not None:
            waits_for_it, run_then = then
            for i, f in enumerate(futures):
                if not waits_for_it(i):
                    f.result()
            run_then()
        return [f.result() for f in futures]


def _no_internal_errors(results) -> None:
    for p in results:
        err = p.stderr.decode(errors="replace")
        assert "internal error" not in err and "Traceback" not in err, err
        assert ".tmp" not in err, err


@pytest.fixture
def sleeper(bundle):
    return bundle.args("sleep", "1000")


def test_sixteen_creates_of_one_id_exactly_one_wins(ocirt, sleeper, cid):
    results = _together(16, lambda _: ocirt("create", "--bundle", str(sleeper.path), cid))
    _no_internal_errors(results)
    assert sorted(p.returncode for p in results) == [0] + [1] * 15
    for p in results:
        if p.returncode:
            assert b"container with given ID already exists" in p.stderr
    assert ocirt.state(cid)["status"] == "created"
    ocirt.ok("delete", "--force", cid)
    assert cgroup_dirs_named(cid) == [] and pids_with_cmdline(cid) == []


def test_delete_racing_create_ends_consistent(ocirt, sleeper):
    for _ in range(8):
        cid = unique_id()

        def call(i: int):
            if i == 0:
                return ocirt("create", "--bundle", str(sleeper.path), cid)
            return ocirt("delete", "--force", cid)

        create, *deletes = _together(3, call)
        _no_internal_errors([create, *deletes])
        assert all(d.returncode == 0 for d in deletes), [d.stderr for d in deletes]
        if create.returncode:
            assert b"was deleted while it was being created" in create.stderr, create.stderr
        st = ocirt("state", cid)
        if st.returncode == 0:
            # The create won and the deletes came first: a complete container.
            assert create.returncode == 0
            assert json.loads(st.stdout)["status"] == "created"
        ocirt.ok("delete", "--force", cid)
        assert ocirt.ids() == []
        assert cgroup_dirs_named(cid) == [] and pids_with_cmdline(cid) == []


# A sleep as PID 1 has no USR1 handler: that kill changes nothing.
MIXED = [("state",), ("list",), ("ps", "--format", "json"), ("exec", "true"),
         ("kill", "USR1"), ("pause",), ("resume",), ("update", "--pids-limit", "100"),
         ("events", "--stats"), ("start",)]


def test_mixed_verbs_on_one_container(ocirt, sleeper, cid):
    ocirt.ok("run", "--detach", "--bundle", str(sleeper.path), cid)

    def call(i: int):
        verb, *rest = MIXED[i % len(MIXED)]
        args = (verb, *rest[:-1], cid, rest[-1]) if verb in ("exec", "kill") else \
            (verb, *rest) if verb == "list" else (verb, *rest, cid)
        return ocirt(*args)

    # An exec whose process lands in the cgroup just frozen by a pause waits for a resume
    # (as with runc): resume once everything else is done.
    results = _together(2 * len(MIXED), call,
                        then=(lambda i: MIXED[i % len(MIXED)][0] == "exec",
                              lambda: ocirt("resume", cid)))
    _no_internal_errors(results)
    for p, (verb, *_) in zip(results, MIXED * 2):
        if verb == "start":
            assert p.returncode == 1
            assert (b"cannot start an already running container" in p.stderr
                    or b"cannot start a container in the paused state" in p.stderr)
        elif verb in ("pause", "resume", "exec"):
            # pause/resume race each other; exec may meet a paused container
            assert p.returncode in (0, 1, 255), p.stderr
        else:
            assert p.returncode == 0, (verb, p.stderr)
    assert ocirt.state(cid)["status"] == "running"
    ocirt.ok("delete", "--force", cid)
    assert cgroup_dirs_named(cid) == [] and pids_with_cmdline(cid) == []


def test_thirty_two_containers_in_parallel(ocirt, sleeper):
    ids = [unique_id() for _ in range(32)]
    runs = _together(32, lambda i: ocirt("run", "--detach", "--bundle", str(sleeper.path),
                                         ids[i]))
    _no_internal_errors(runs)
    assert [p.returncode for p in runs] == [0] * 32, [p.stderr for p in runs if p.returncode]
    listed = json.loads(ocirt.ok("list", "--format", "json").stdout)
    assert sorted(c["id"] for c in listed) == sorted(ids)
    assert {c["status"] for c in listed} == {"running"}
    deletes = _together(32, lambda i: ocirt("delete", "--force", ids[i]))
    assert [p.returncode for p in deletes] == [0] * 32
    assert ocirt.ids() == []
    for cid in ids:
        assert cgroup_dirs_named(cid) == [] and pids_with_cmdline(cid) == []


def test_fifty_parallel_execs(ocirt, sleeper, cid):
    ocirt.ok("run", "--detach", "--bundle", str(sleeper.path), cid)
    results = _together(50, lambda i: ocirt("exec", cid, "echo", f"exec-{i}"))
    _no_internal_errors(results)
    assert [p.returncode for p in results] == [0] * 50, [p.stderr for p in results
                                                         if p.returncode]
    assert [p.stdout for p in results] == [f"exec-{i}\n".encode() for i in range(50)]
    init = ocirt.state(cid)["pid"]
    assert json.loads(ocirt.ok("ps", "--format", "json", cid).stdout) == [init]
    ocirt.ok("delete", "--force", cid)
    assert cgroup_dirs_named(cid) == []
