"""ocirt.linux.signals: names as Go reports them, and the reset every started program gets."""

from __future__ import annotations

import os
import signal

from ocirt.linux import signals


def test_signals_are_described_as_go_does():
    assert signals.describe(signal.SIGSYS) == "bad system call"
    assert signals.describe(signal.SIGKILL) == "killed"
    assert signals.describe(signal.SIGXCPU) == "CPU time limit exceeded"
    assert signals.describe(signal.SIGIO) == "I/O possible"


def test_reset_for_exec_leaves_nothing_ignored_or_blocked():
    # What survives execve: ignored and blocked signals (caught ones fall back to default by
    # themselves, and pytest's faulthandler catches some behind Python's back).
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, lambda *_: None)
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
            signals.reset_for_exec()
            os.write(w, open("/proc/self/status", "rb").read())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        status = f.read().decode()
    os.waitpid(pid, 0)
    lines = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert (lines["SigBlk"], lines["SigIgn"]) == ("0" * 16, "0" * 16)
