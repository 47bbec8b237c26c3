"""Signal numbers and names without the `signal` module.

`import signal` builds enums at import time (and imports `enum`), a few milliseconds that every
kill, delete and run would pay. `_signal`, the C module underneath, has the same functions and
plain integer constants.
"""

from __future__ import annotations

import _signal

SIGHUP = _signal.SIGHUP
SIGINT = _signal.SIGINT
SIGQUIT = _signal.SIGQUIT
SIGKILL = _signal.SIGKILL
SIGUSR1 = _signal.SIGUSR1
SIGUSR2 = _signal.SIGUSR2
SIGTERM = _signal.SIGTERM
SIGCHLD = _signal.SIGCHLD
SIGCONT = _signal.SIGCONT
SIGTSTP = _signal.SIGTSTP
SIGWINCH = _signal.SIGWINCH
SIGRTMIN = _signal.SIGRTMIN
SIGRTMAX = _signal.SIGRTMAX
SIG_DFL = _signal.SIG_DFL
SIG_IGN = _signal.SIG_IGN

# name -> number, e.g. "SIGTERM" -> 15 (aliases such as SIGIOT and SIGCLD included)
BY_NAME: dict[str, int] = {n: getattr(_signal, n) for n in dir(_signal)
                           if n.startswith("SIG") and not n.startswith("SIG_")
                           and n not in ("SIGRTMIN", "SIGRTMAX")}


def pidfd_send_signal(pidfd: int, sig: int) -> None:
    """Signal the process a pidfd pins (no ctypes: the C module has it)."""
    _signal.pidfd_send_signal(pidfd, sig)


def install(signum: int, handler) -> None:
    _signal.signal(signum, handler)


def block(sigs: tuple[int, ...]) -> None:
    _signal.pthread_sigmask(_signal.SIG_BLOCK, sigs)


def unblock(sigs: tuple[int, ...]) -> None:
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, sigs)


def describe(sig: int) -> str:
    """A signal as Go's exec.ExitError names it ("bad system call", "killed"): libc's
    description without the leading capital ("CPU time limit exceeded" keeps its own)."""
    text = _signal.strsignal(sig) or f"signal {sig}"
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


def reset_for_exec() -> None:
    """Default dispositions and an empty mask, in a process about to exec a program that is
    not ours: the container's process, a hook, ps(1). execve(2) resets caught signals only:
    the interpreter's SIG_IGN for SIGPIPE and SIGXFSZ (and any inherited ignore or mask) would
    reach the program, and a `yes | head` would never end (runc's processes start with none).

    Python records every disposition (read from the kernel at start-up, updated by each
    signal() call), so only the changed ones cost a system call. Call it before seccomp: a
    profile need not allow rt_sigaction."""
    for sig in range(1, _signal.NSIG):
        if _signal.getsignal(sig) != SIG_DFL:
            try:
                _signal.signal(sig, SIG_DFL)
            except (OSError, ValueError):
                pass  # 32 and 33 belong to libc's threads and are never ignored
    _signal.pthread_sigmask(_signal.SIG_SETMASK, ())


def parse(text: str) -> int:
    """runc's signal syntax: a number (any, as runc), or a name with or without SIG (KILL,
    SIGKILL, SIGRTMIN+3). Raises ValueError."""
    t = text.strip()
    digits = t[1:] if t[:1] in ("+", "-") else t
    if digits.isdigit() and digits.isascii():
        # Any number, as runc's strconv.Atoi: 0 probes the process, and the kernel is the
        # judge of the rest (EINVAL).
        return int(t)
    name = t.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name in BY_NAME:
        return BY_NAME[name]
    for prefix, base, sign in (("SIGRTMIN+", SIGRTMIN, 1), ("SIGRTMAX-", SIGRTMAX, -1)):
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            n = base + sign * int(name[len(prefix):])
            if SIGRTMIN <= n <= SIGRTMAX:
                return n
    if name == "SIGRTMIN":
        return SIGRTMIN
    if name == "SIGRTMAX":
        return SIGRTMAX
    raise ValueError(text)
