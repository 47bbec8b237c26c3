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
from ocirt import jsonio
import os
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
        self.root = os.path.abspath(root)

    def ensure_root(self) -> None:
        try:
            os.mkdir(self.root, 0o700)
        except FileExistsError:
            return
        except FileNotFoundError:
            os.makedirs(os.path.dirname(self.root), 0o755, exist_ok=True)
            try:
                os.mkdir(self.root, 0o700)
            except FileExistsError:
                return
        os.chmod(self.root, 0o700)

    @property
    def seccomp_cache(self) -> str:
        # '~' cannot appear in a container id, so the cache never collides with a container.
        return os.path.join(self.root, "~seccomp")

    def dir(self, cid: str) -> str:
        validate_id(cid)
        return os.path.join(self.root, cid)

    def fifo_path(self, cid: str) -> str:
        return os.path.join(self.dir(cid), FIFO_NAME)

    def create_dir(self, cid: str) -> str:
        d = self.dir(cid)
        self.ensure_root()
        try:
            os.mkdir(d, 0o711)
        except FileExistsError:
            raise ContainerExists() from None
        os.chmod(d, 0o711)  # mkdir's mode is filtered by the umask
        return d

    def exists(self, cid: str) -> bool:
        return os.path.isdir(self.dir(cid))

    def lock(self, cid: str) -> "_Lock":
        """An exclusive flock on the container's directory, for a `with` block."""
        return _Lock(self.dir(cid), cid)

    def load(self, cid: str) -> dict:
        path = os.path.join(self.dir(cid), STATE_FILE)
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
        path = os.path.join(self.dir(cid), STATE_FILE)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                _write_all(fd, jsonio.dumps(state, compact=True).encode())
            finally:
                os.close(fd)
        except OSError as e:
            raise _save_error(cid, e) from None

    def prepare(self, cid: str, state: dict) -> str:
        """Write `state` next to state.json; commit() makes it the state. Nothing is left
        behind if the write fails (a full filesystem, say)."""
        tmp = os.path.join(self.dir(cid), "." + STATE_FILE + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise _save_error(cid, e) from None
        try:
            _write_all(fd, jsonio.dumps(state, compact=True).encode())
        except BaseException as e:
            os.close(fd)
            discard(tmp)
            if isinstance(e, OSError):
                raise _save_error(cid, e) from None
            raise
        os.close(fd)
        return tmp

    def commit(self, cid: str, tmp: str) -> None:
        try:
            os.rename(tmp, os.path.join(self.dir(cid), STATE_FILE))
        except BaseException:
            discard(tmp)
            raise

    def save(self, cid: str, state: dict) -> None:
        self.commit(cid, self.prepare(cid, state))

    def remove(self, cid: str) -> None:
        d = self.dir(cid)
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            return
        for name in names:
            try:
                os.unlink(os.path.join(d, name))
            except IsADirectoryError:
                import shutil
                shutil.rmtree(os.path.join(d, name), ignore_errors=True)
            except FileNotFoundError:
                pass
        try:
            os.rmdir(d)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise

    def list_ids(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if _id_ok(n) and n not in (".", "..")
                      and os.path.isdir(os.path.join(self.root, n)))


def _save_error(cid: str, e: OSError) -> StateError:
    return StateError(f"cannot save the state of container {cid}: {e.strerror or e}")


def discard(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


# Directories this process holds the lock of: a "creating" record seen under the lock is a
# create that died (a live one holds the lock until it is done).
_held: set[str] = set()


def create_running(path: str) -> bool:
    """Whether a process other than us holds the directory's lock (a create in progress,
    for a "creating" record)."""
    if path in _held:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
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
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ContainerNotFound(self.cid) from None
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        if os.fstat(self.fd).st_nlink == 0:
            # Removed by a delete that held the lock before us.
            os.close(self.fd)
            raise ContainerNotFound(self.cid)
        _held.add(self.path)
        return self.fd

    def __exit__(self, *exc: object) -> None:
        _held.discard(self.path)
        os.close(self.fd)
