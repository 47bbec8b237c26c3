"""The wait between `create` and `start` in a 1.5 KiB program instead of the interpreter.

Until `start`, the container's PID 1 only waits; as the Python init it holds about 10 MiB
resident (the interpreter and what `create` imported), which a manager that creates containers
ahead of starting them pays for each. So once the Python init has done everything up to the
wait, it executes ocirt-wait (waiter.c, built into waiter_elf.py) from a sealed memfd. That
program waits on the exec FIFO, loads the seccomp filter, answers `start` and execs the
container's process: the steps the Python init would have taken, in the same order, with the
same messages.

Why the extra exec changes nothing the container can see or reach:
- Capabilities: execve derives the new sets from the inheritable, bounding and ambient sets and
  the uid, which exec does not change, and the memfd has no file capabilities and no set-id
  bits; so exec'ing it and then the container's program gives the sets one exec would give.
- Everything else a process keeps across exec it keeps twice: ids, groups, umask, cwd, rlimits,
  no_new_privs, the session keyring, the controlling terminal, scheduling, ioprio, mempolicy,
  oom_score_adj, namespaces, cgroup, the preserved fds.
- ptrace and /proc (CVE-2016-9962): the Python init is not dumpable, and an exec would make a
  readable program dumpable again. The memfd is execute-only (mode 0111) and owned by the
  runtime's uid, and the init execs it with an empty effective set, so it cannot read the
  program: the kernel (would_dump, fs/exec.c) then keeps the process non-dumpable and its memory
  owned by a user namespace that owns the file, the host's for a rootful runtime, as for the
  Python init. The program sets PR_SET_DUMPABLE 0 once more as its first act.
- /proc/PID/exe is the memfd, sealed against writes, growth and shrinking (CVE-2019-5736).

The Python init keeps waiting itself where the handover would change behaviour:
- an AppArmor profile or an SELinux label, which take effect at the next exec: that exec must be
  the container's process;
- linux.personality (an exec of a 64-bit program clears READ_IMPLIES_EXEC);
- a seccomp filter with a listener (its fd goes to the runtime before the wait);
- a seccomp filter without noNewPrivileges that does not allow every system call made between
  its loading and the container's exec (see below);
- startContainer hooks, which the init runs after the wait;
- another machine than x86-64, and a kernel that will not create or run an executable memfd.

The seccomp filter: with noNewPrivileges, ocirt-wait loads it after the wait, where the Python
init would. Without, loading needs CAP_SYS_ADMIN, which ocirt-wait does not have (the exec drops
it with the bounding set), so the init loads it just before the handover, and the filter then
sees the handover and the wait: what runc does in that case. The init does this only when it
knows the filter lets each of those system calls through (HANDOVER_SYSCALLS, evaluated by
ocirt.security.cbpf before the fork); otherwise the interpreter waits and loads it after the wait.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct

from ocirt.linux import signals
from ocirt.process import caps
from ocirt.spawn.exeseal import MFD_EXEC, SEALS

MAGIC = 0x3157434F                          # "OCW1", struct data in waiter.c
_HEADER = struct.Struct("<11I")
_MAX_DATA = 65536                           # waiter.c's buffer
_TERMINATION = (signals.SIGHUP, signals.SIGINT, signals.SIGQUIT, signals.SIGTERM)
_ERRNOS = 134                               # strerror(0) .. strerror(133): EHWPOISON is 133


# x86-64 system calls made under a filter loaded before the handover, with the arguments known
# in advance (None: a pointer, an fd or a size the filter cannot sensibly depend on).
_U = None
_AT_FDCWD = -100 & 0xFFFFFFFFFFFFFFFF
HANDOVER_SYSCALLS: list[tuple[int, tuple[int | None, ...]]] = [
    # the init: dropping CAP_SYS_ADMIN and the effective set, the exec of ocirt-wait, and the
    # allocator's calls that may happen in between
    (125, (_U, _U)), (126, (_U, _U)),                     # capget, capset
    (322, (_U, _U, _U, _U, 0x1000)),                      # execveat(fd, "", AT_EMPTY_PATH)
    (9, (_U,) * 6), (10, (_U,) * 3), (11, (_U, _U)),      # mmap, mprotect, munmap
    (12, (_U,)), (25, (_U,) * 5), (28, (_U,) * 3),        # brk, mremap, madvise
    # ocirt-wait (waiter.c), in its order
    (157, (4, 0)), (157, (15, _U)),                       # prctl DUMPABLE, NAME
    (17, (_U,) * 4), (3, (_U,)),                          # pread64, close
    *[(13, (sig, _U, 0, 8)) for sig in _TERMINATION],     # rt_sigaction
    (14, (2, _U, 0, 8)),                                  # rt_sigprocmask(SIG_SETMASK)
    (257, (_AT_FDCWD, _U, 0o2000001, 0)),                 # openat(O_WRONLY | O_CLOEXEC)
    (1, (_U, _U, _U)),                                    # write
    (59, (_U, _U, _U)),                                   # execve
    (231, (_U,)),                                         # exit_group, when that fails
    # the init again, should the kernel refuse the exec: it restores what it changed
    (14, (1, _U, _U, 8)), (16, (_U, 0x5450)),             # SIG_UNBLOCK, ioctl(FIONCLEX)
]


def suits(config: dict, prep: object) -> bool:
    """Whether this container's init may hand its wait over (see above). In the runtime,
    before the fork."""
    if prep is None or os.uname().machine != "x86_64":
        return False
    if prep.apparmor or prep.selinux or prep.personality is not None:
        return False
    hooks = config.get("hooks") or {}
    if hooks.get("startContainer"):
        return False
    f = prep.seccomp
    if f is None:
        return True
    if f.notify or len(f.bpf) > _MAX_DATA // 2:
        return False
    if prep.no_new_privs:
        return True
    from ocirt.security import cbpf
    return cbpf.allows(f.bpf, HANDOVER_SYSCALLS)


def loads_filter_first(prep: object) -> bool:
    """Whether the init loads the filter before the handover (no noNewPrivileges)."""
    return prep.seccomp is not None and not prep.no_new_privs


def program() -> int | None:
    """A close-on-exec fd of the sealed, execute-only memfd holding ocirt-wait; None when the
    kernel will not make one. In the runtime, before the fork: the file is then owned by the
    runtime's uid, which a user namespace made for the container does not map."""
    from ocirt.init.waiter_elf import ELF
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        try:
            fd = os.memfd_create("ocirt-wait", flags | MFD_EXEC)
        except OSError as e:
            if e.errno != errno.EINVAL:
                return None                 # vm.memfd_noexec = 2: no executable memfd
            fd = os.memfd_create("ocirt-wait", flags)   # before 6.3, every memfd is
    except OSError:
        return None
    try:
        os.write(fd, ELF)
        os.fchmod(fd, 0o111)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
    except OSError:
        os.close(fd)
        return None
    return fd


def hand_over(program_fd: int, fifo_fd: int, seccomp: object, path: str, args: list[str],
              env: dict[str, str], load_filter=None) -> bool:
    """Exec ocirt-wait as this process, after "created" and before the wait; `seccomp` is the
    filter ocirt-wait loads after the wait, `load_filter` loads one now, just before the exec.
    Returns only if the exec did not happen, with everything as it was but the filter, if
    load_filter loaded it (the return value): the caller then waits itself."""
    data = _data(fifo_fd, seccomp, args[0])
    if len(data) > _MAX_DATA:
        return False                        # a huge args[0]: more than the program reads
    try:
        dfd = os.memfd_create("ocirt-wait-data", 0)
    except OSError:
        return False
    try:
        os.write(dfd, data)
        os.set_inheritable(fifo_fd, True)
        # Blocked, a termination signal sent during the exec stays pending for the program's
        # handlers instead of being dropped at the default disposition of a PID 1.
        signals.block(_TERMINATION)
        if load_filter is not None:
            load_filter()
        eff, prm, inh = caps.capget()
        caps.capset(0, prm, inh)
        try:
            os.execve(program_fd, ["ocirt-wait", str(dfd), path, *args], env)
        except OSError:
            caps.capset(eff, prm, inh)
            signals.unblock(_TERMINATION)
            os.set_inheritable(fifo_fd, False)
    finally:
        os.close(dfd)
    return load_filter is not None


def _data(fifo_fd: int, seccomp: object, arg0: str) -> bytes:
    """waiter.c's struct data, followed by what its offsets point to."""
    body = bytearray(_HEADER.size + 4)      # the filter starts 8-aligned
    bpf = seccomp.bpf if seccomp is not None else b""
    bpf_off = len(body)
    body += bpf

    def string(text: str) -> int:
        off = len(body)
        body.extend(text.encode(errors="surrogateescape") + b"\0")
        return off

    fifo_path = string(f"/proc/self/fd/{fifo_fd}")
    exec_prefix = string(f"exec {arg0!r}: ")
    seccomp_prefix = string("loading seccomp filter: ")
    offsets = [string(os.strerror(e)) for e in range(_ERRNOS)]
    body.extend(b"\0" * (-len(body) % 4))
    errors = len(body)
    body += struct.pack(f"<{_ERRNOS}I", *offsets)
    _HEADER.pack_into(body, 0, MAGIC, len(body), fifo_fd, fifo_path,
                      seccomp.flags if seccomp is not None else 0, bpf_off, len(bpf),
                      exec_prefix, seccomp_prefix, errors, _ERRNOS)
    return bytes(body)
