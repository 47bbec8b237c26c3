"""Resolving paths inside a directory without ever leaving it.

With openat2(2) and RESOLVE_IN_ROOT the kernel resolves every component (symlinks and
`..` included) as if the directory were `/`, so a hostile layer's `etc -> /etc` symlink
leads to `<root>/etc`, never the host's. Where openat2 is missing (ENOSYS, old kernels,
seccomp filters), a component-by-component walk with O_NOFOLLOW refuses symlinked
parents instead.
"""

from __future__ import annotations

import errno
import os
import posixpath

from ocimg import syscalls
from ocimg.errors import UnsafeEntry
from ocimg.syscalls import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, openat2

_have_openat2: bool | None = None if syscalls.UNIFIED_NUMBERS else False


def have_openat2() -> bool:
    global _have_openat2
    if _have_openat2 is None:
        try:
            os.close(openat2(-100, "/", os.O_PATH | os.O_DIRECTORY, RESOLVE_IN_ROOT))  # AT_FDCWD
            _have_openat2 = True
        except OSError as e:
            _have_openat2 = e.errno not in (errno.ENOSYS, errno.EPERM, errno.EINVAL)
    return _have_openat2


def clean(name: str) -> str:
    """A tar entry name as a path relative to the root: no leading `/`, `..` clamped at the top.

    Returns "" for the root itself.
    """
    p = posixpath.normpath("/" + name)
    # normpath keeps a leading `//`; and `/..` is `/` already.
    return p.lstrip("/")


class Root:
    """A directory that entries are written into; every path is resolved within it."""

    def __init__(self, path: str, use_openat2: bool | None = None) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
        self.use_openat2 = have_openat2() if use_openat2 is None else use_openat2
        self._cache: dict[str, int] = {}

    def close(self) -> None:
        self.forget()
        os.close(self.fd)

    def __enter__(self) -> "Root":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def forget(self) -> None:
        """Drop cached directory fds: needed whenever the tree's shape may have changed."""
        for fd in self._cache.values():
            os.close(fd)
        self._cache.clear()

    def forget_under(self, rel: str) -> None:
        """Drop cached fds of `rel` and below, after it was removed or replaced."""
        prefix = rel + "/"
        for key in [k for k in self._cache if k == rel or k.startswith(prefix) or not rel]:
            os.close(self._cache.pop(key))

    def open(self, rel: str, flags: int, mode: int = 0) -> int:
        """Open `rel` (already cleaned) resolved within the root; the caller closes the fd."""
        if not rel:
            return os.open(".", flags | os.O_CLOEXEC, dir_fd=self.fd)
        if self.use_openat2:
            try:
                return openat2(self.fd, rel, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, mode)
            except OSError as e:
                if e.errno == errno.EXDEV:  # raised by RESOLVE_* checks
                    raise UnsafeEntry(f"{rel}: path leaves the root") from None
                raise
        parent, _, base = rel.rpartition("/")
        pfd = self._walk(parent, create=False)
        try:
            return os.open(base, flags | os.O_CLOEXEC | os.O_NOFOLLOW, mode, dir_fd=pfd)
        finally:
            os.close(pfd)

    def real_dir(self, rel: str) -> int | None:
        """An fd of `rel` if every component is a real directory (symlinks are not followed);
        None if one is a file or symlink; FileNotFoundError if one is missing. The caller closes it.
        """
        fd = os.dup(self.fd)
        for comp in [c for c in rel.split("/") if c]:
            try:
                nfd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ENOTDIR, errno.ELOOP):
                    return None
                raise
            finally:
                os.close(fd)
            fd = nfd
        return fd

    def dir(self, rel: str) -> int:
        """An fd of directory `rel`, created (with its parents, mode 0755) if missing.

        The fd is cached and owned by the Root; do not close it.
        """
        fd = self._cache.get(rel)
        if fd is not None:
            return fd
        if len(self._cache) > 512:
            self.forget()
        fd = self._walk(rel, create=True)
        self._cache[rel] = fd
        return fd

    def _walk(self, rel: str, create: bool) -> int:
        if self.use_openat2:
            try:
                return self.open(rel, os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                if not create:
                    raise
            # Create the missing components one at a time, each under a parent that was
            # itself resolved within the root.
            parent, _, base = rel.rpartition("/")
            pfd = self._walk(parent, create=True)
            try:
                try:
                    os.mkdir(base, 0o755, dir_fd=pfd)
                except FileExistsError:
                    pass
            finally:
                os.close(pfd)
            try:
                return self.open(rel, os.O_RDONLY | os.O_DIRECTORY)
            except (FileNotFoundError, NotADirectoryError):
                # e.g. a symlink to a directory that does not exist (yet): never mkdir through it.
                raise UnsafeEntry(f"{rel}: a parent is a dangling symlink or not a directory") from None
        fd = os.dup(self.fd)
        done = ""
        for comp in [c for c in rel.split("/") if c]:
            done = f"{done}/{comp}" if done else comp
            try:
                if create:
                    try:
                        os.mkdir(comp, 0o755, dir_fd=fd)
                    except FileExistsError:
                        pass
                nfd = self._open_child_dir(fd, comp, done)
            finally:
                os.close(fd)
            fd = nfd
        return fd

    def _open_child_dir(self, pfd: int, base: str, rel: str) -> int:
        try:
            return os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                if self.use_openat2:
                    # In-root resolution already followed symlinks; a non-directory here
                    # is a genuine conflict, not an escape.
                    raise UnsafeEntry(f"{rel}: a parent is not a directory") from None
                raise UnsafeEntry(f"{rel}: a parent is a symlink (refused without openat2)") from None
            raise
