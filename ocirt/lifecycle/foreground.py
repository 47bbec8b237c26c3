"""Waiting for a container process in the foreground (`run`, `exec` without --detach): the
signals we receive go to it, a pty is proxied to our terminal, and its exit status becomes ours
(128+N when killed by signal N)."""

from __future__ import annotations

import gc
import os

from ocirt.linux import signals

# Not SIGWINCH: a window size change is for the terminal, which the console proxy resizes
# itself; a process without a terminal has no window (runc does not forward it either).
FORWARDED = (signals.SIGTERM, signals.SIGINT, signals.SIGHUP, signals.SIGQUIT, signals.SIGUSR1,
             signals.SIGUSR2, signals.SIGCONT, signals.SIGTSTP)


class Forwarder:
    """Takes over the forwarded signals at once, before the container process exists (a SIGTERM
    between start and the wait must not kill us and orphan it); they queue until target()
    names the process, then go to it, as runc's signal handler buffers them."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.pending: list[int] = []
        for s in FORWARDED:
            signals.install(s, self._on_signal)

    def _on_signal(self, signum: int, _frame) -> None:
        if self.pid is None:
            self.pending.append(signum)
        else:
            _send(self.pid, signum)

    def target(self, pid: int) -> None:
        self.pid = pid
        while self.pending:
            _send(pid, self.pending.pop(0))

    def restore(self) -> None:
        for s in FORWARDED:
            signals.install(s, signals.SIG_DFL)


def _send(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def wait(pid: int, master: int | None = None, forwarder: Forwarder | None = None) -> int:
    # The launcher turned the collector off for start-up; this wait may last for days. What
    # exists now (modules, config) lives as long as we do: freeze it, or the first collection
    # walks all of it (milliseconds, right when the container exits).
    gc.freeze()
    gc.enable()
    if forwarder is None:
        forwarder = Forwarder()
    forwarder.target(pid)
    try:
        if master is not None:
            from ocirt import console
            # The proxy passes window size changes on itself.
            signals.install(signals.SIGWINCH, signals.SIG_DFL)
            console.proxy(master, pid)
            os.close(master)
        return exit_status(pid)
    finally:
        forwarder.restore()


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
