"""Waiting for a container process in the foreground (`run`, `exec` without --detach): the
signals we receive go to it, a pty is proxied to our terminal, and its exit status becomes ours
(128+N when killed by signal N)."""

from __future__ import annotations

import gc
import os

from ocirt.linux import signals

FORWARDED = (signals.SIGTERM, signals.SIGINT, signals.SIGHUP, signals.SIGQUIT, signals.SIGUSR1,
             signals.SIGUSR2, signals.SIGWINCH, signals.SIGCONT, signals.SIGTSTP)


def wait(pid: int, master: int | None = None) -> int:
    def forward(signum, _frame) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    gc.enable()     # the launcher turned it off for start-up; this wait may last for days
    for s in FORWARDED:
        signals.install(s, forward)
    try:
        if master is not None:
            from ocirt import console
            # The proxy passes window size changes on itself.
            signals.install(signals.SIGWINCH, signals.SIG_DFL)
            console.proxy(master, pid)
            os.close(master)
        return exit_status(pid)
    finally:
        for s in FORWARDED:
            signals.install(s, signals.SIG_DFL)


def exit_status(pid: int) -> int:
    while True:
        try:
            wpid, status = os.waitpid(pid, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return 255
        if wpid == pid:
            break
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)
