"""On-disk container state: <root> 0700, <root>/<id> 0711, state.json 0600 written atomically.

The per-container directory is created with an exclusive mkdir, which is what makes an id unique
within a root; a flock on that directory serialises concurrent calls on one container. create
holds it from right after the mkdir until it is done, and its first state.json is a "creating"
record (see state/machine.py); a lock taken on a directory that a delete removed meanwhile
reports the container as gone.
"""

from __future__ import annotations

import errno
import fcntl
import posix

from ocirt import fspath, jsonio
from ocirt.errors import ContainerExists, ContainerNotFound, InvalidID, StateError

STATE_FILE = "state.json"
FIFO_NAME = "exec.fifo"
# runc's id alphabet, [A-Za-z0-9_+.-]; a set check avoids importing `re` on every call.
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+.-")


def _id_ok(cid: str) -> bool:
    return bool(cid) and _ID_CHARS.issuperset(cid)
MAX_ID_LEN = 1024


def validate_id(cid: str) -> None:
    # runc's rule, plus a length cap so a path component can never overflow NAME_MAX silently.
    if (not cid or cid in (".", "..") or len(cid) > MAX_ID_LEN or not _id_ok(cid)
            or len(cid.encode()) > 250):
        raise InvalidID()


class Store:
    def __init__(self, root: str) -> None:
        self.root = fspath.abspath(root)

    def ensure_root(self) -> None:
        try:
            posix.mkdir(self.root, 0o700)
        except FileExistsError:
            return
        except FileNotFoundError:
            import os
            os.makedirs(os.path.dirname(self.root), 0o755, exist_ok=True)
            try:
                posix.mkdir(self.root, 0o700)
            except FileExistsError:
                return
        posix.chmod(self.root, 0o700)

    @property
    def seccomp_cache(self) -> str:
        # '~' cannot appear in a container id, so the cache never collides with a container.
        return f"{self.root}/~seccomp"

    def dir(self, cid: str) -> str:
        validate_id(cid)
        return f"{self.root}/{cid}"

    def fifo_path(self, cid: str) -> str:
        return f"{self.dir(cid)}/{FIFO_NAME}"

    def create_dir(self, cid: str) -> str:
        d = self.dir(cid)
        self.ensure_root()
        try:
            posix.mkdir(d, 0o711)
        except FileExistsError:
            raise ContainerExists() from None
        posix.chmod(d, 0o711)  # mkdir's mode is filtered by the umask
        return d

    def exists(self, cid: str) -> bool:
        return fspath.isdir(self.dir(cid))

    def lock(self, cid: str) -> "_Lock":
        """An exclusive flock on the container's directory, for a `with` block."""
        return _Lock(self.dir(cid), cid)

    def load(self, cid: str) -> dict:
        path = f"{self.dir(cid)}/{STATE_FILE}"
        try:
            with open(path, "rb") as f:
                return jsonio.loads(f.read())
        except FileNotFoundError:
            raise ContainerNotFound(cid) from None
        except ValueError:
            raise ContainerNotFound(cid) from None

    def record(self, cid: str, state: dict) -> None:
        """The first state.json of a container being created, in its new (locked, empty)
        directory: written in place, as no reader can take it for a complete one (they wait
        for the lock, or see a "creating" record)."""
        path = f"{self.dir(cid)}/{STATE_FILE}"
        try:
            fd = posix.open(path, posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL | posix.O_CLOEXEC,
                             0o600)
            try:
                _write_all(fd, jsonio.dumps(state, compact=True).encode())
            finally:
                posix.close(fd)
        except OSError as e:
            raise _save_error(cid, e) from None

    def prepare(self, cid: str, state: dict) -> str:
        """Write `state` next to state.json; commit() makes it the state. Nothing is left
        behind if the write fails (a full filesystem, say)."""
        tmp = f"{self.dir(cid)}/.{STATE_FILE}.tmp"
        try:
            fd = posix.open(tmp, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | posix.O_CLOEXEC,
                             0o600)
        except OSError as e:
            raise _save_error(cid, e) from None
        try:
            _write_all(fd, jsonio.dumps(state, compact=True).encode())
        except BaseException as e:
            posix.close(fd)
            discard(tmp)
            if isinstance(e, OSError):
                raise _save_error(cid, e) from None
            raise
        posix.close(fd)
        return tmp

    def commit(self, cid: str, tmp: str) -> None:
        try:
            posix.rename(tmp, f"{self.dir(cid)}/{STATE_FILE}")
        except BaseException:
            discard(tmp)
            raise

    def save(self, cid: str, state: dict) -> None:
        self.commit(cid, self.prepare(cid, state))

    def remove(self, cid: str) -> None:
        d = self.dir(cid)
        try:
            names = posix.listdir(d)
        except FileNotFoundError:
            return
        for name in names:
            try:
                posix.unlink(f"{d}/{name}")
            except IsADirectoryError:
                import shutil
                shutil.rmtree(f"{d}/{name}", ignore_errors=True)
            except FileNotFoundError:
                pass
        try:
            posix.rmdir(d)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise

    def list_ids(self) -> list[str]:
        try:
            names = posix.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if _id_ok(n) and n not in (".", "..")
                      and fspath.isdir(f"{self.root}/{n}"))


def _save_error(cid: str, e: OSError) -> StateError:
    return StateError(f"cannot save the state of container {cid}: {e.strerror or e}")


def discard(tmp: str) -> None:
    try:
        posix.unlink(tmp)
    except FileNotFoundError:
        pass


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[posix.write(fd, data):]


# Directories this process holds the lock of: a "creating" record seen under the lock is a
# create that died (a live one holds the lock until it is done).
_held: set[str] = set()


def create_running(path: str) -> bool:
    """Whether a process other than us holds the directory's lock (a create in progress,
    for a "creating" record)."""
    if path in _held:
        return False
    try:
        fd = posix.open(path, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        posix.close(fd)
    return False


class _Lock:
    # A plain class rather than contextlib.contextmanager: contextlib and typing cost several
    # milliseconds of start-up for every command.
    def __init__(self, path: str, cid: str) -> None:
        self.path = path
        self.cid = cid
        self.fd = -1

    def __enter__(self) -> int:
        try:
            self.fd = posix.open(self.path, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC)
        except FileNotFoundError:
            raise ContainerNotFound(self.cid) from None
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        if posix.fstat(self.fd).st_nlink == 0:
            # Removed by a delete that held the lock before us.
            posix.close(self.fd)
            raise ContainerNotFound(self.cid)
        _held.add(self.path)
        return self.fd

    def __exit__(self, *exc: object) -> None:
        _held.discard(self.path)
        posix.close(self.fd)
