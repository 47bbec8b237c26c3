"""Path resolution that can never leave a root directory (SECURITY.md rule 4).

A container image is attacker-controlled: any component of a mount destination, a device path
or a working directory may be a symlink (absolute, or relative with enough `..`) meant to point
the runtime at the host, and a racing process may swap a directory for such a symlink between
our check and our use (CVE-2021-30465, CVE-2024-45310). So every lookup here starts at a
directory fd of the root and resolves symlinks *as if that fd were /*:

* openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) when the kernel has it (one syscall), and
* otherwise a component-by-component walk with O_NOFOLLOW, reading each symlink and restarting
  its target from the root fd, `..` clamped at the root.

Creation (mkdirat / openat O_CREAT|O_EXCL / mknodat / symlinkat) only ever happens relative to a
parent fd obtained this way, so a swapped component can at worst redirect us to another place
inside the root. Callers then operate on the returned fd, never on a path string again.
"""

from __future__ import annotations

import errno
import os
import stat

from ocirt.errors import SecurityError
from ocirt.linux import procfs
from ocirt.linux import syscalls as sc

_RESOLVE = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS
_MAXSYMLINKS = 40
_O_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC

_openat2_works = True


def _rel(path: str) -> str:
    p = path.lstrip("/")
    return p or "."


def _components(path: str) -> list[str]:
    return [c for c in path.split("/") if c and c != "."]


def open_in_root(root_fd: int, path: str, flags: int, mode: int = 0) -> int:
    """Open `path` with `flags` resolved inside `root_fd`; returns a new CLOEXEC fd."""
    global _openat2_works
    if _openat2_works:
        for _ in range(32):
            try:
                return sc.openat2(root_fd, _rel(path), flags | os.O_CLOEXEC, mode, _RESOLVE)
            except OSError as e:
                # EAGAIN: a rename raced the lookup somewhere in the root; the kernel asks us
                # to retry rather than risk a wrong answer.
                if e.errno == errno.EAGAIN:
                    continue
                if e.errno != errno.ENOSYS:
                    raise
                _openat2_works = False
                break
    return _walk(root_fd, path, flags, mode, create_dirs=False, dir_mode=0)


def mkdir_all_in_root(root_fd: int, path: str, mode: int = 0o755) -> int:
    """Like `mkdir -p` inside the root; returns an O_PATH fd of the final directory."""
    try:
        return open_in_root(root_fd, path, _O_PATH_DIR)
    except FileNotFoundError:
        pass
    return _walk(root_fd, path, _O_PATH_DIR, 0, create_dirs=True, dir_mode=mode)


def open_parent_in_root(root_fd: int, path: str, mode: int = 0o755) -> tuple[int, str]:
    """(fd of the resolved parent directory, created if missing; last component name).

    The last component is NOT resolved: callers create it or inspect it with O_NOFOLLOW,
    which is what device nodes, /dev symlinks and `/proc must be a real directory` need."""
    comps = _components(path)
    if not comps or comps[-1] == "..":
        raise OSError(errno.EINVAL, f"no final path component in {path!r}")
    parent = "/" + "/".join(comps[:-1])
    return mkdir_all_in_root(root_fd, parent, mode), comps[-1]


def create_file_in_root(root_fd: int, path: str, mode: int = 0o644,
                        dir_mode: int = 0o755) -> int:
    """Open `path` inside the root, creating an empty regular file if nothing is there.

    An existing entry is resolved in-root (a symlink in the image leads somewhere inside the
    root, never out); a dangling symlink gets its in-root target created. Returns an fd that
    is only good as a handle (O_PATH for existing entries)."""
    for _ in range(_MAXSYMLINKS):
        parent, name = open_parent_in_root(root_fd, path, dir_mode)
        try:
            try:
                return os.open(name, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                               | os.O_CLOEXEC, mode, dir_fd=parent)
            except FileExistsError:
                pass
            try:
                return open_in_root(root_fd, path, os.O_PATH)
            except FileNotFoundError:
                target = _readlink_at(parent, name)
                if target is None:
                    continue  # removed in between; try again
                path = target if target.startswith("/") else \
                    "/" + "/".join(_components(path)[:-1] + [target])
        finally:
            os.close(parent)
    raise OSError(errno.ELOOP, f"too many levels of symbolic links creating {path!r}")


def _readlink_at(dirfd: int, name: str) -> str | None:
    try:
        return os.readlink(name, dir_fd=dirfd)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.EINVAL:
            return None
        raise


def _walk(root_fd: int, path: str, flags: int, mode: int, *, create_dirs: bool,
          dir_mode: int) -> int:
    """The openat2-free resolver. `stack` holds an fd per directory level below the root so
    `..` can go back up without a lookup (and never above the root)."""
    todo = _components(path)
    todo.reverse()
    stack = [os.dup(root_fd)]
    links = 0
    try:
        while todo:
            name = todo.pop()
            if name == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            last = not todo
            cur = stack[-1]
            if last and not flags & os.O_PATH:
                # The final open with the caller's flags; O_NOFOLLOW turns a symlink into ELOOP
                # so we can resolve it ourselves.
                try:
                    return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=cur)
                except OSError as e:
                    if e.errno != errno.ELOOP or flags & os.O_NOFOLLOW:
                        raise
                fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur)
            else:
                try:
                    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur)
                except FileNotFoundError:
                    if not create_dirs:
                        raise
                    try:
                        os.mkdir(name, dir_mode, dir_fd=cur)
                    except FileExistsError:
                        pass  # raced with another creator: look again
                    todo.append(name)
                    continue
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode) and not (last and flags & os.O_NOFOLLOW):
                target = os.readlink("", dir_fd=fd)
                os.close(fd)
                links += 1
                if links > _MAXSYMLINKS:
                    raise OSError(errno.ELOOP, f"too many levels of symbolic links in {path!r}")
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                parts = _components(target)
                parts.reverse()
                todo.extend(parts)
                continue
            if last:
                if flags & os.O_DIRECTORY and not stat.S_ISDIR(st.st_mode):
                    os.close(fd)
                    raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
                return fd
            if not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
            stack.append(fd)
        # The path was the root itself (or resolved to it).
        return os.open(".", flags | os.O_CLOEXEC, mode, dir_fd=stack[-1])
    finally:
        for fd in stack:
            os.close(fd)


def fd_path(fd: int) -> str:
    """The kernel's name for what `fd` refers to, as seen from our root (read through our
    private procfs, so a container's /proc cannot lie about it)."""
    return procfs.readlink_self_fd(fd)


def check_in_root(fd: int, root_path: str) -> str:
    """Refuse an fd that does not lie under `root_path` (a host path); return its path
    inside the root. The lookups above cannot escape, but a directory moved out of the
    root by a racing process between two lookups could; this is the last line."""
    real = fd_path(fd)
    root = root_path.rstrip("/") or "/"
    if real == root:
        return "/"
    if root == "/":
        inner = real
    elif real.startswith(root + "/"):
        inner = real[len(root):]
    else:
        inner = ""
    if not inner.startswith("/") or real.endswith(" (deleted)"):
        raise SecurityError(f"possible breakout: {real!r} is outside the container root "
                            f"{root!r}")
    return inner
