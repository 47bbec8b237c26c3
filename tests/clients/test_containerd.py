"""containerd + containerd-shim-runc-v2, driven with ctr (`--runtime io.containerd.runc.v2
--runc-binary PATH`), every scenario with ocirt and with runc."""

from __future__ import annotations

import uuid

import pytest

from clientlib import IMAGE, in_pty, wait_until


@pytest.fixture
def ctr(containerd, runtime):
    made: list[str] = []

    class Ctr:
        def __call__(self, *args: str, timeout: float = 60):
            return containerd.ctr(*args, timeout=timeout)

        def ok(self, *args: str, timeout: float = 60):
            p = self(*args, timeout=timeout)
            assert p.returncode == 0, f"ctr {args} exited {p.returncode}: {p.stderr}"
            return p

        def new_id(self) -> str:
            cid = f"oc-{uuid.uuid4().hex[:10]}"
            made.append(cid)
            return cid

        def run_args(self) -> list[str]:
            return containerd.run_args(runtime)

        def cmd(self, *args: str) -> list[str]:
            return containerd.ctr_cmd(*args)

        def status(self, cid: str) -> str:
            for line in self.ok("task", "ls").stdout.splitlines()[1:]:
                f = line.split()
                if f and f[0] == cid:
                    return f[2]
            return ""

    yield Ctr()
    for cid in made:
        containerd.remove_container(cid)


def test_run_exit_code_and_output(ctr):
    cid = ctr.new_id()
    p = ctr("run", "--rm", *ctr.run_args(), IMAGE, cid, "sh", "-c",
            "echo to-stdout; echo to-stderr >&2; exit 7")
    assert p.returncode == 7, p.stderr
    assert p.stdout == "to-stdout\n"
    assert "to-stderr" in p.stderr


@pytest.mark.parametrize("runtime", ["ocirt", "runc", "ocirt-pip"], indirect=True)
def test_exec_ps_pause_resume_kill_delete(ctr):
    cid = ctr.new_id()
    ctr.ok("run", "-d", *ctr.run_args(), IMAGE, cid, "sh", "-c",
           'trap "exit 9" TERM; while true; do sleep 0.1; done')
    assert wait_until(lambda: ctr.status(cid) == "RUNNING")

    p = ctr("task", "exec", "--exec-id", "e1", cid, "sh", "-c", "echo in-exec; exit 3")
    assert (p.returncode, p.stdout) == (3, "in-exec\n"), p.stderr

    init_pid = ctr.ok("task", "ls").stdout.split(cid)[1].split()[0]
    ps = ctr.ok("task", "ps", cid).stdout.split()
    assert ps[:2] == ["PID", "INFO"] and init_pid in ps[2:]

    ctr.ok("task", "pause", cid)
    assert ctr.status(cid) == "PAUSED"
    ctr.ok("task", "resume", cid)
    assert ctr.status(cid) == "RUNNING"
    p = ctr("task", "exec", "--exec-id", "e2", cid, "echo", "after-resume")
    assert (p.returncode, p.stdout) == (0, "after-resume\n"), p.stderr

    ctr.ok("task", "kill", cid)  # SIGTERM: the trap exits 9
    assert wait_until(lambda: ctr.status(cid) == "STOPPED")
    p = ctr.ok("task", "delete", cid)
    assert "exit code 9" in p.stdout + p.stderr
    assert ctr.status(cid) == ""
    ctr.ok("container", "delete", cid)
    assert cid not in ctr.ok("container", "ls", "-q").stdout.split()


def test_kill_all_and_force_delete_of_a_running_task(ctr):
    cid = ctr.new_id()
    ctr.ok("run", "-d", *ctr.run_args(), IMAGE, cid, "sh", "-c",
           'trap "" TERM; sleep 100 & while true; do sleep 0.1; done')
    assert wait_until(lambda: ctr.status(cid) == "RUNNING")
    ctr.ok("task", "kill", "--all", "--signal", "SIGKILL", cid)
    assert wait_until(lambda: ctr.status(cid) == "STOPPED")
    ctr.ok("task", "delete", cid)
    ctr.ok("container", "delete", cid)


def test_run_and_exec_with_tty(ctr):
    cid = ctr.new_id()
    p = in_pty(ctr.cmd("run", "--rm", "-t", *ctr.run_args(), IMAGE, cid, "sh", "-c",
                       "tty; test -t 0 && echo is-a-tty; exit 4"))
    assert p.returncode == 4, p.stdout + p.stderr
    assert "/dev/pts/0" in p.stdout and "is-a-tty" in p.stdout

    cid = ctr.new_id()
    ctr.ok("run", "-d", *ctr.run_args(), IMAGE, cid, "sleep", "100")
    p = in_pty(ctr.cmd("task", "exec", "-t", "--exec-id", "t1", cid, "sh", "-c",
                       "tty; exit 6"))
    assert p.returncode == 6, p.stdout + p.stderr
    assert "/dev/pts/" in p.stdout


def test_failed_start_reports_the_runtime_error(ctr):
    # The shim reports the last "error" line of the runtime's log.json.
    cid = ctr.new_id()
    p = ctr("run", "--rm", *ctr.run_args(), IMAGE, cid, "/nonexistent")
    assert p.returncode != 0
    assert "/nonexistent" in p.stderr and "no such file or directory" in p.stderr, p.stderr
    assert "unable to retrieve OCI runtime error" not in p.stderr
