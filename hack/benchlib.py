"""What hack/bench and hack/bench-floor share: the interpreter, a busybox `true` bundle, timing."""

from __future__ import annotations

import ctypes
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
INTERPRETER = "/usr/local/lib/ocirt/python3"    # what the launcher runs (hack/install)


def true_bundle(work: str) -> str:
    """A busybox bundle running `true`, made by hack/mkbundle under `work`."""
    bundle = os.path.join(work, "bundle")
    subprocess.run([os.path.join(HERE, "mkbundle"), bundle, "true"], check=True,
                   stdout=subprocess.DEVNULL)
    return bundle


def timed(cmd: list[str], **kw) -> float:
    """Seconds `cmd` took; exits with its error if it failed."""
    t = time.perf_counter()
    # A file, not a pipe: a created container keeps the runtime's stderr open.
    with tempfile.TemporaryFile() as err:
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=err, **kw)
        took = time.perf_counter() - t
        if p.returncode != 0:
            err.seek(0)
            sys.exit(f"{' '.join(cmd)} failed: {err.read().decode(errors='replace').strip()}")
    return took


def cpu_seconds(ru: resource.struct_rusage) -> float:
    return ru.ru_utime + ru.ru_stime


_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_CHILD_SUBREAPER = 36
_CLONE_NEWNS = 0x00020000
_MS_REC, _MS_PRIVATE = 0x4000, 1 << 18
_MNT_DETACH = 2


def in_own_mount_ns_without(path: str) -> None:
    """In a forked child: a private mount namespace in which `path` is unmounted.

    crun 1.8.1 refuses a hybrid cgroup host; with the cgroup2 mount gone it sees plain v1."""
    if _libc.unshare(_CLONE_NEWNS) != 0 or \
            _libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        os._exit(126)
    _libc.umount2(path.encode(), _MNT_DETACH)


class Reaper:
    """Runs commands and accounts for the CPU time of every process they leave behind.

    The bench becomes a child subreaper: a container's init, orphaned when `create` exits,
    is re-parented to it, so its user+sys time (the runtime's init code before the exec, and
    the container process after it) is collected when it is reaped, as the runtimes' own
    time is from wait4(). Everything is reaped on the one thread, by wait4(-1): a runtime
    that waits for a killed container to disappear sees it reaped at once.
    """

    def __init__(self) -> None:
        if _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
        self.last_status = 0
        self._done: dict[int, tuple[int, float, float]] = {}    # pid -> status, CPU, end

    def spawn(self, cmd: list[str], err: int, prepare=None) -> int:
        pid = os.fork()
        if pid == 0:
            try:
                null = os.open(os.devnull, os.O_RDWR)
                os.dup2(null, 0)
                os.dup2(null, 1)
                os.dup2(err, 2)
                if prepare is not None:
                    prepare()
                os.execvp(cmd[0], cmd)
            finally:
                os._exit(127)
        return pid

    def wait_any(self, pids: set[int]) -> int:
        """Wait until one of `pids` has exited; returns it (its result stays for wait())."""
        while not pids & self._done.keys():
            self._reap_one(0)
        return min(pids & self._done.keys())

    def wait(self, pid: int) -> tuple[int, float, float]:
        """(exit status, CPU seconds, perf_counter at reaping) of the spawned `pid`."""
        while pid not in self._done:
            self._reap_one(0)
        return self._done.pop(pid)

    def _reap_one(self, flags: int) -> int:
        got, status, ru = os.wait4(-1, flags)
        if got:
            self._done[got] = (os.waitstatus_to_exitcode(status), cpu_seconds(ru),
                               time.perf_counter())
        return got

    def collect(self, pid: int, timeout: float = 5.0) -> float | None:
        """CPU seconds of the orphan `pid` (e.g. a container's init) once it has exited."""
        end = time.monotonic() + timeout
        while pid not in self._done:
            try:
                if not self._reap_one(os.WNOHANG):
                    if time.monotonic() > end:
                        return None
                    time.sleep(0.001)
            except ChildProcessError:
                return None
        return self._done.pop(pid)[1]

    def forget(self) -> None:
        """Reap and drop whatever has exited (stray orphans of failed runs)."""
        try:
            while self._reap_one(os.WNOHANG):
                pass
        except ChildProcessError:
            pass
        self._done.clear()

    def run(self, cmd: list[str], prepare=None, check: bool = True) -> tuple[float, float]:
        """(wall seconds, CPU seconds of it and the children it waited for) of `cmd`."""
        with tempfile.TemporaryFile() as err:     # a file: a created container keeps it open
            t = time.perf_counter()
            pid = self.spawn(cmd, err.fileno(), prepare)
            status, cpu, end = self.wait(pid)
            self.last_status = status
            if status != 0 and check:
                err.seek(0)
                sys.exit(f"{' '.join(cmd)} failed ({status}): "
                         f"{err.read().decode(errors='replace').strip()}")
        return end - t, cpu
