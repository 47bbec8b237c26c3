"""Start the kernel's cgroup-migration grace period early, in the background.

Moving a process between cgroups (writing cgroup.procs, or cgroup.subtree_control on cgroup2)
takes the kernel's global cgroup_threadgroup_rwsem for writing. When nothing has written it
recently, that first writer waits a full RCU grace period (6-30 ms here, the largest single
cost of a container start); writers that follow within about one grace period of the last one
pay nothing. So a runtime that is about to place a container keeps the semaphore "warm": a
thread rewrites the runtime's own pid into its own cgroup (a no-op migration, which still takes
the semaphore) from the moment the command is known until the container's cgroups are joined,
while the main thread imports, validates and builds. Errors are ignored: the warm-up is only
ever a speed-up, and the real writes report their own failures.
"""

from __future__ import annotations

import os

# One rewrite per interval keeps the semaphore's fast-path-disabled window open: the window
# lasts a grace period after the last writer, and grace periods here are >= 3 ms.
_INTERVAL = 0.002
# Upper bound on how long a forgotten warm-up may run (a `run` waits for its container).
_MAX_ROUNDS = 250

_stop = None


def _own_procs_file() -> str | None:
    # The cgroup2 line ("0::/path") names this process's cgroup on the unified hierarchy,
    # mounted at /sys/fs/cgroup (pure v2) or /sys/fs/cgroup/unified (hybrid); any v1 line
    # would do as well, but its mount point depends on co-mounted controller names.
    try:
        with open("/proc/self/cgroup", "rb") as f:
            lines = f.read().decode().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            rel = line[3:].rstrip("/")
            for mnt in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
                p = mnt + rel + "/cgroup.procs"
                if os.path.exists(p):
                    return p
    return None


def _loop(path: str, pid: bytes, stop, started) -> None:
    for _ in range(_MAX_ROUNDS):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                if started is not None:
                    started.release()
                    started = None
                os.write(fd, pid)       # releases the GIL while the kernel waits
            finally:
                os.close(fd)
        except OSError:
            break
        if stop.acquire(timeout=_INTERVAL):
            break
    if started is not None:
        started.release()


def start() -> None:
    """Begin keeping the cgroup semaphore warm (idempotent, best effort)."""
    global _stop
    if _stop is not None:
        return
    path = _own_procs_file()
    if path is None:
        return
    import _thread
    _stop = _thread.allocate_lock()
    _stop.acquire()
    # Wait until the thread is about to write: otherwise it would sit waiting for the GIL
    # (up to the 5 ms switch interval) while this thread imports, and start the clock late.
    started = _thread.allocate_lock()
    started.acquire()
    try:
        _thread.start_new_thread(_loop, (path, str(os.getpid()).encode(), _stop, started))
    except RuntimeError:
        _stop = None
        return
    started.acquire(timeout=0.05)


def stop() -> None:
    """The container's cgroups are joined: let the warm-up thread end."""
    global _stop
    if _stop is not None:
        try:
            _stop.release()
        except RuntimeError:
            pass
        _stop = None
