"""The CVE-2019-5736 guard at every entry point (ocirt/spawn/exeseal.py): however ocirt is
started, create, run and exec run on an interpreter that cannot be opened for writing. The
attack itself is replayed for the launcher and the pip install in tests/security/
test_container_attacks.py; here: what each entry point runs on, and what the re-execution keeps."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

REPO = Path(__file__).resolve().parents[2]
HOST_PYTHON = "/usr/bin/python3"


def _read_only(path: str) -> bool:
    return bool(os.statvfs(path).f_flag & os.ST_RDONLY)


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


@pytest.fixture
def host_python_is_writable() -> None:
    if _read_only(HOST_PYTHON):
        pytest.skip(f"{HOST_PYTHON} is on a read-only mount here: nothing to re-execute from")


def test_pip_installed_ocirt_runs_a_container_and_returns_its_status(pip_ocirt, bundle, cid):
    bundle.sh("echo hello from pip; exit 7")
    p = pip_ocirt("run", "--bundle", str(bundle.path), cid)
    assert p.returncode == 7, p.stderr
    assert p.stdout == b"hello from pip\n"


def test_pip_installed_exec_returns_the_process_status(pip_ocirt, bundle, cid):
    bundle.args("sleep", "60")
    pip_ocirt.ok("run", "-d", "--bundle", str(bundle.path), cid)
    p = pip_ocirt("exec", cid, "sh", "-c", "echo in $(hostname); exit 3")
    assert p.returncode == 3, p.stderr
    assert p.stdout.startswith(b"in ")


def test_pip_installed_create_leaves_the_init_on_a_read_only_interpreter(
        pip_ocirt, bundle, cid, host_python_is_writable):
    bundle.args("sleep", "60").init_waits_in_python()
    pip_ocirt.ok("create", "--bundle", str(bundle.path), cid)
    pid = pip_ocirt.state(cid)["pid"]
    exe = f"/proc/{pid}/exe"
    assert os.path.samefile(exe, HOST_PYTHON)      # the host's interpreter itself, not a copy
    assert _read_only(exe)                          # seen through a read-only mount
    assert os.readlink(exe) == "/", "the read-only mount is detached: no path reaches it"
    argv = _cmdline(pid)
    assert argv[1:4] == ["-I", "-S", "-c"], argv    # isolated, no site
    assert argv[-4:] == ["create", "--bundle", str(bundle.path), cid], argv


def test_launcher_create_runs_the_init_without_reexecuting(ocirt, bundle, cid):
    bundle.args("sleep", "60").init_waits_in_python()
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    pid = ocirt.state(cid)["pid"]
    assert _read_only(f"/proc/{pid}/exe")
    argv = _cmdline(pid)
    assert "-c" not in argv and argv[-4:] == ["create", "--bundle", str(bundle.path), cid], argv


def test_resumed_runtime_on_a_writable_interpreter_fails_instead_of_looping(
        ocirt, bundle, cid, host_python_is_writable):
    # What the re-execution runs, started on the host's writable interpreter: it must refuse,
    # not re-execute again, and leave nothing behind.
    from ocirt.spawn import exeseal
    bundle.args("true")
    argv = exeseal.reexec_argv(["--root", str(ocirt.root), "create", "--bundle",
                                str(bundle.path), cid])
    p = subprocess.run([HOST_PYTHON, *argv[1:]], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert "interpreter is still writable" in p.stderr and "CVE-2019-5736" in p.stderr, p.stderr
    assert p.stderr.count("\n") == 1, p.stderr
    assert ocirt.ids() == []


SEALED_COPY_PROBE = r"""
import errno, os, sys
from ocirt.spawn import exeseal
if sys.argv[2:3] == ["sealed"]:
    print(os.readlink("/proc/self/exe").replace(" ", "_"), exeseal.exe_is_sealed(), *sys.argv[3:])
else:
    fd = exeseal.sealed_copy()
    tried = []
    for attempt in (lambda: os.write(fd, b"x"), lambda: os.ftruncate(fd, 0)):
        try:
            attempt()
            tried.append("DONE")
        except OSError as e:
            tried.append(errno.errorcode[e.errno])
    os.execve(fd, [sys.executable, "-I", "-S", "-c", sys.argv[1], sys.argv[1], "sealed", *tried],
              os.environ)
"""


def test_sealed_copy_fallback_is_a_memfd_that_cannot_change_and_runs_as_sealed():
    code = f"import sys; sys.path.insert(0, {str(REPO)!r})\n" + SEALED_COPY_PROBE
    p = subprocess.run([HOST_PYTHON, "-I", "-S", "-c", code, code], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    exe, sealed, write, truncate = p.stdout.split()
    assert exe.startswith("/memfd:ocirt-python"), exe
    assert sealed == "True"                          # exe_is_sealed accepts it: no re-exec
    assert (write, truncate) == ("EPERM", "EPERM")
