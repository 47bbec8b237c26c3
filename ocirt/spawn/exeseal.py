"""CVE-2019-5736: a container never reaches a writable host interpreter through /proc/self/exe.

ocirt's init (and the process `exec` sends into a container) is the runtime's own interpreter
until it execs the container's program. A container binary that starts `#!/proc/self/exe` makes
the kernel run that interpreter inside the container, which then holds a handle on the host's
python; once the runtime exits it could reopen it for writing and own every later root Python
process on the host. So before create, run or exec start anything a container can reach,
`ensure_sealed` checks that /proc/self/exe cannot be opened for writing:

- On a read-only mount (statvfs ST_RDONLY): the launcher, hack/ocirt, runs on hack/install's
  read-only bind mount of the interpreter, so this one statvfs is all it pays.
- Otherwise (a pip console script, `python -m ocirt`, a developer's venv) ocirt re-executes
  itself, same pid, through a read-only view of the very file it runs: open_tree(OPEN_TREE_CLONE)
  of /proc/self/exe (the magic link, so no name that could be swapped in between: it is the
  running inode), mount_setattr(MOUNT_ATTR_RDONLY) on that detached mount, execveat(fd,
  AT_EMPTY_PATH). Nothing is copied and nothing is attached anywhere: no other process sees the
  mount and nothing is left to clean up. The fd is close-on-exec, so once the exec has happened
  the mount belongs to no mount namespace and cannot be remounted writable (not even with
  CAP_SYS_ADMIN); it lives exactly as long as processes execute it. runc's exeseal gets the
  same zero-copy result with a lower-only overlayfs.
- Where the mount API is refused (no CAP_SYS_ADMIN over the mount namespace, a seccomp filter,
  an old kernel), the fallback is runc's: a memfd copy of the interpreter sealed with
  F_SEAL_SEAL|SHRINK|GROW|WRITE. It costs a copy (~7 MB for Debian's python3.11) per call, and
  that much memory for as long as the runtime or a created init runs.

The re-executed runtime runs `-I -S` (no PYTHON* variables, no site, no cwd on sys.path) with
only ocirt's own package directory put on sys.path (ocirt needs the standard library and
nothing else), and keeps argv, the environment (NOTIFY_SOCKET, LISTEN_FDS with LISTEN_PID:
the pid does not change), every inherited fd (stdio, --preserve-fds, LISTEN_FDS; ocirt's own
fds are close-on-exec) and so the exit status. It cannot loop: the re-executed process is
marked (`resume`), and when its interpreter is still not sealed it fails instead.

What this covers is the interpreter file, the only host file a `#!/proc/self/exe` program gets
(its loader and libraries come from the container's rootfs). Debian's python3.11 links
libpython statically. The host libraries the runtime maps (ld.so, libc, libm, libz, libexpat,
_ctypes with libffi, libseccomp; libpython3.x.so on a Python built --enable-shared) stay on
their own mounts: a container reaches them only through /proc/PID/map_files, which needs
CAP_SYS_ADMIN in the host's user namespace, on processes that are non-dumpable until they exec.
An interpreter that finds libpython through $ORIGIN cannot run from a view that has no
directory: create, run and exec refuse with an error there rather than re-execute.
"""

from __future__ import annotations

import errno
import os
import sys

from ocirt.errors import SecurityError

# The seals runc requires of its memfd copy: no more seals, no size change, no writes.
SEALS = 0x1 | 0x2 | 0x4 | 0x8   # F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE
MFD_EXEC = 0x10         # Linux 6.3: say the memfd is executable (vm.memfd_noexec)

# The program the re-executed interpreter runs: ocirt's package directory comes in argv[1].
_RESUME = ("import sys;sys.path.insert(0,sys.argv.pop(1));"
           "from ocirt.spawn.exeseal import resume;resume()")

_resumed = False


def exe_is_sealed() -> bool:
    """True when the running interpreter cannot be written through /proc/self/exe: it is on a
    read-only mount or is a sealed memfd."""
    if os.statvfs("/proc/self/exe").f_flag & os.ST_RDONLY:
        return True
    fd = os.open("/proc/self/exe", os.O_RDONLY | os.O_CLOEXEC)
    try:
        return memfd_seals(fd) & SEALS == SEALS
    finally:
        os.close(fd)


def memfd_seals(fd: int) -> int:
    """The seals of a memfd; 0 for any other file."""
    import fcntl
    try:
        return fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    except OSError:
        return 0


def ensure_sealed(args: list[str]) -> None:
    """Return when the interpreter is sealed; otherwise re-execute ocirt with `args` through a
    sealed view of it (no return). SecurityError when no sealed view can be had."""
    if exe_is_sealed():
        return
    if _resumed:
        raise SecurityError("the interpreter is still writable after ocirt re-executed itself "
                            "through a read-only copy (CVE-2019-5736)")
    if finds_libpython_by_origin():
        raise SecurityError(f"{sys.executable} loads libpython relative to its own path "
                            "($ORIGIN), so it cannot run from a sealed copy: start ocirt with an "
                            "interpreter that links libpython statically or by absolute path, "
                            "or through hack/install's launcher (CVE-2019-5736)")
    try:
        fd = readonly_view()
    except OSError:
        try:
            fd = sealed_copy()
        except OSError as e:
            raise SecurityError(f"cannot make a sealed copy of the interpreter to run containers "
                                f"from (CVE-2019-5736): {e.strerror or e}") from None
    os.execve(fd, reexec_argv(args), os.environ)


def finds_libpython_by_origin() -> bool:
    """True for a relocatable build (python-build-standalone, conda) whose loader finds
    libpython through $ORIGIN: run from a detached mount or a memfd the binary has no directory,
    and the re-executed interpreter would die in the loader instead of reporting an error."""
    with open("/proc/self/maps", "rb") as f:
        if b"/libpython" not in f.read():
            return False                # libpython linked in (Debian's): nothing to look up
    with open("/proc/self/exe", "rb") as f:
        return b"$ORIGIN" in f.read()   # a shared-libpython interpreter is a small file


def reexec_argv(args: list[str]) -> list[str]:
    # argv[0] stays the interpreter's own name: Python finds its prefix (and so the standard
    # library) from it, as it did for this process.
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return [sys.executable or "python3", "-I", "-S", "-c", _RESUME, package_root, *args]


def readonly_view() -> int:
    """An fd of the running interpreter on a detached read-only bind mount of it."""
    from ocirt.linux import syscalls as sc
    fd = sc.open_tree(sc.AT_FDCWD, "/proc/self/exe", sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC)
    try:
        sc.mount_setattr(fd, "", sc.AT_EMPTY_PATH, attr_set=sc.MOUNT_ATTR_RDONLY)
    except OSError:
        os.close(fd)
        raise
    return fd


def sealed_copy() -> int:
    """An fd of a sealed memfd copy of the running interpreter."""
    import fcntl
    src = os.open("/proc/self/exe", os.O_RDONLY | os.O_CLOEXEC)
    try:
        flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
        try:
            fd = os.memfd_create("ocirt-python", flags | MFD_EXEC)
        except OSError:                         # before Linux 6.3
            fd = os.memfd_create("ocirt-python", flags)
        try:
            size = os.fstat(src).st_size
            done = 0
            while done < size:
                n = os.sendfile(fd, src, done, size - done)
                if n == 0:
                    raise OSError(errno.EIO, "the interpreter changed size while being copied")
                done += n
            os.fchmod(fd, 0o511)
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
        except OSError:
            os.close(fd)
            raise
    finally:
        os.close(src)
    return fd


def resume() -> None:
    """The re-executed runtime: the command again, marked so that it cannot re-execute twice."""
    global _resumed
    _resumed = True
    from ocirt.__main__ import run
    run()
