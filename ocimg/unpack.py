"""Applying a layer (a tar, maybe compressed) onto a directory.

Two ways to treat whiteouts:
  * "overlay": the directory holds this layer alone and is used as an overlayfs lower
    dir, so `.wh.NAME` becomes an overlay whiteout (char device 0:0) and
    `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on its directory;
  * "delete": the directory is a full root filesystem built layer by layer, so
    whiteouts delete what lower layers put there.

Whiteouts apply only to lower layers (image-spec): an entry of the same layer stays, and a
whiteout below something this layer made a file or symlink has nothing left to hide.

Every entry is written through safepath.Root: nothing can land outside the directory.

Overlay-mode layers can be unpacked before their lower layers are (so the layers of an image
unpack in parallel): `lowers` is then a callable that waits for them. The layer is written as
if every lower had everything (each whiteout and opaque marker written, implicit parents made
root:root 0755), and each such decision is recorded; once the lowers are complete, `_Deferred`
settles them with the same LowerView reads the serial unpack makes at the entry. A layer whose
decisions cannot be settled afterwards raises NeedsLowers, and is unpacked again serially.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from ocimg.digest import Digest
from ocimg.errors import DigestError, LayerError, UnsafeEntry
from ocimg.lowerview import LowerView, is_whiteout
from ocimg.safepath import Root, clean

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_READ_BUF = 1 << 20


class NeedsLowers(Exception):
    """The layer cannot be unpacked ahead of its lower layers: unpack it after them."""


@dataclass
class _Deferred:
    """Decisions an overlay unpack made without its lower layers, settled once they exist.

    Each one is what the serial unpack decides from LowerView at the entry; the lowers do not
    change meanwhile, so asking afterwards gives the same answer.
    """

    implicit: dict[str, None] = field(default_factory=dict)  # parents made without an entry, in order
    explicit: set[str] = field(default_factory=set)  # of those, the ones a later entry describes
    opaque: list[str] = field(default_factory=list)  # directories marked opaque
    whiteouts: set[str] = field(default_factory=set)  # overlay whiteouts written and still there

    def settle(self, root: Root, lower: LowerView) -> None:
        for rel in self.implicit:
            src = lower.find(rel)
            st = os.lstat(src) if src else None
            if st is not None and stat.S_ISDIR(st.st_mode):
                with _opened_dir(root, rel) as fd:
                    if fd is not None:
                        _copy_dir_attrs(src, st, fd, rel in self.explicit)
        for rel in self.opaque:
            if lower.lstat(rel) is None:
                with _opened_dir(root, rel) as fd:
                    if fd is not None:
                        with contextlib.suppress(OSError):
                            os.removexattr(f"/proc/self/fd/{fd}", OVERLAY_OPAQUE_XATTR)
        for rel in self.whiteouts:
            if lower.lstat(rel) is None:
                parent, _, base = rel.rpartition("/")
                with _opened_dir(root, parent) as pfd:
                    st = _lstat(pfd, base) if pfd is not None else None
                    if st is not None and is_whiteout(st):
                        # Never written by the serial unpack: the directory keeps its time.
                        pst = os.fstat(pfd)
                        os.unlink(base, dir_fd=pfd)
                        os.utime(pfd, ns=(pst.st_atime_ns, pst.st_mtime_ns))


@contextlib.contextmanager
def _opened_dir(root: Root, rel: str) -> Iterator[int | None]:
    """Directory `rel` of the layer (resolved in it), or None if it is no directory any more."""
    try:
        fd = root.open(rel, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW) if rel else os.dup(root.fd)
    except (OSError, UnsafeEntry):
        yield None
        return
    try:
        yield fd
    finally:
        os.close(fd)


def _copy_dir_attrs(src: str, st: os.stat_result, fd: int, xattrs_only: bool = False) -> None:
    """A parent a layer leaves out takes the lower layers' owner, mode, xattrs and mtime.

    With `xattrs_only` the layer has a later entry of its own for it, whose owner, mode and
    xattrs win; lower xattrs it did not set stay, as they do when set first.
    """
    if not xattrs_only:
        os.chown(fd, st.st_uid, st.st_gid)
        os.chmod(fd, stat.S_IMODE(st.st_mode))
    have = set(os.listxattr(fd)) if xattrs_only else set()
    for attr in os.listxattr(src, follow_symlinks=False):
        if not attr.startswith("trusted.overlay.") and attr not in have:
            os.setxattr(fd, attr, os.getxattr(src, attr, follow_symlinks=False))
    if not xattrs_only:
        os.utime(fd, ns=(st.st_mtime_ns, st.st_mtime_ns))


@dataclass
class Stats:
    entries: int = 0
    whiteouts: int = 0
    neutralised: int = 0


class _HashingReader(io.RawIOBase):
    """Hashes the uncompressed stream so the layer's diff_id is checked as it is unpacked."""

    def __init__(self, raw: BinaryIO, hasher) -> None:
        self._raw = raw
        self.hasher = hasher

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self._raw.read(len(b))
        n = len(data)
        b[:n] = data
        if n:
            self.hasher.update(data)
        return n


def open_decompressed(f: BinaryIO) -> BinaryIO:
    """Pick the decompressor by the stream's magic bytes; the media type may lie."""
    head = f.read(4)
    f.seek(0)
    if head.startswith(_GZIP_MAGIC):
        import gzip

        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    if head == _ZSTD_MAGIC:
        import zstandard  # only layers that need it pay for the import

        return zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)  # type: ignore[return-value]
    return f


def unpack_layer(blob_path: str, dest: str, *, whiteouts: str, diff_id: Digest | None = None,
                 use_openat2: bool | None = None, progress: Callable[[int], None] | None = None,
                 lowers: list[str] | Callable[[], list[str]] | None = None) -> Stats:
    """Unpack the layer blob at `blob_path` onto `dest`, checking its diff_id if given.

    `lowers` (overlay mode): the unpacked layers below this one, top-most first. With them,
    whiteouts are written only where a lower layer has something, and parent directories the
    layer leaves out copy the lower layers' attributes. Without them every whiteout is kept.
    A callable that returns them (waiting until they are complete) lets the layer be unpacked
    meanwhile; it may raise NeedsLowers, after which `dest` must be discarded.
    """
    deferred = _Deferred() if callable(lowers) and whiteouts == "overlay" else None
    with open(blob_path, "rb", buffering=_READ_BUF) as f:
        stream = open_decompressed(f)
        hasher = diff_id.hasher() if diff_id else None
        src: BinaryIO = stream
        if hasher is not None:
            src = io.BufferedReader(_HashingReader(stream, hasher), _READ_BUF)  # type: ignore[arg-type]
        try:
            with Root(dest, use_openat2) as root:
                view = LowerView(lowers) if isinstance(lowers, list) and whiteouts == "overlay" else None
                stats = _Applier(root, whiteouts, view, deferred).apply(src)
                # The tar's end-of-archive padding is part of the diff_id too.
                while src.read(_READ_BUF):
                    pass
                if deferred is not None:
                    root.forget()
                    deferred.settle(root, LowerView(lowers()))  # type: ignore[operator]
        except (EOFError, tarfile.TarError, OSError, ValueError) as e:
            if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
                raise LayerError(f"cannot unpack layer into {dest}: {e.strerror}") from None
            if isinstance(e, (EOFError, tarfile.TarError)) or not getattr(e, "filename", None):
                raise LayerError(f"layer {os.path.basename(blob_path)} is not a valid (compressed) tar: {e}") from None
            raise LayerError(f"cannot unpack layer {os.path.basename(blob_path)}: {e}") from None
    if hasher is not None and diff_id is not None and hasher.hexdigest() != diff_id.hex:
        raise DigestError(f"layer {os.path.basename(blob_path)}: uncompressed digest "
                          f"{diff_id.algorithm}:{hasher.hexdigest()} does not match diff_id {diff_id}")
    return stats


class _Applier:
    def __init__(self, root: Root, whiteouts: str, lower: LowerView | None = None,
                 deferred: _Deferred | None = None) -> None:
        if whiteouts not in ("overlay", "delete"):
            raise ValueError(whiteouts)
        self.root = root
        self.overlay = whiteouts == "overlay"
        self.lower = lower
        self.deferred = deferred
        self.stats = Stats()
        self.dir_times: list[tuple[str, int]] = []
        # Paths this layer created: whiteouts and opaque markers never delete them.
        self.created: set[str] = set()
        # Directories known to exist in `root` already (saves a look-up per entry).
        self.present: set[str] = set()

    def apply(self, stream: BinaryIO) -> Stats:
        with tarfile.open(fileobj=stream, mode="r|", errorlevel=2) as tf:
            for member in tf:
                self.stats.entries += 1
                self._entry(tf, member)
        self.root.forget()
        # The last word on a directory's time wins (an explicit entry after an implicit parent).
        for rel, mtime_ns in dict(self.dir_times).items():
            try:
                fd = self.root.open(rel, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            except (OSError, UnsafeEntry):
                continue  # removed or replaced by a later entry
            try:
                os.utime(fd, ns=(mtime_ns, mtime_ns))
            finally:
                os.close(fd)
        return self.stats

    def _entry(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        rel = clean(m.name)
        if m.name.startswith("/") or ".." in m.name.split("/"):
            self.stats.neutralised += 1  # clamped to the root, as tar -P would not
        parent, _, base = rel.rpartition("/")
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parent, base)
            return
        if rel == "":
            if m.isdir():
                self._meta(self.root.fd, ".", m, is_root=True)
            return
        self._implicit_parents(parent)
        pfd = self.root.dir(parent)
        existing = _lstat(pfd, base)
        if m.isdir():
            # `d/.wh.x` then `d/x/` in one layer: the new x must not show the lower x's content.
            replaces_whiteout = self.overlay and existing is not None and is_whiteout(existing)
            if existing and not stat.S_ISDIR(existing.st_mode):
                self._remove(pfd, base, existing, rel)
                pfd = self.root.dir(parent)
                existing = None
            if not existing:
                os.mkdir(base, 0o700, dir_fd=pfd)
            elif self.deferred is not None and rel in self.deferred.implicit:
                self.deferred.explicit.add(rel)
            self._meta(pfd, base, m)
            if replaces_whiteout:
                os.setxattr(f"/proc/self/fd/{pfd}/{base}", OVERLAY_OPAQUE_XATTR, b"y", follow_symlinks=False)
                if self.deferred is not None:
                    self.deferred.opaque.append(rel)
            self.dir_times.append((rel, int(m.mtime * 1e9)))
            self.created.add(rel)
            self.present.add(rel)
            return
        if existing:
            self._remove(pfd, base, existing, rel)
            pfd = self.root.dir(parent)
        if m.isreg():
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=pfd)
            try:
                src = tf.extractfile(m)
                if src is not None:
                    with os.fdopen(os.dup(fd), "wb", buffering=0) as out:
                        shutil.copyfileobj(src, out, _READ_BUF)
            finally:
                os.close(fd)
        elif m.issym():
            os.symlink(m.linkname, base, dir_fd=pfd)
        elif m.islnk():
            self._hardlink(pfd, base, m)
        elif m.ischr() or m.isblk():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(base, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
        elif m.isfifo():
            os.mkfifo(base, 0o600, dir_fd=pfd)
        else:
            raise LayerError(f"{m.name}: unsupported tar entry type {m.type!r}")
        self.created.add(rel)
        if not m.islnk():
            self._meta(pfd, base, m)

    def _hardlink(self, pfd: int, base: str, m: tarfile.TarInfo) -> None:
        target = clean(m.linkname)
        if not target:
            raise UnsafeEntry(f"{m.name}: hard link to the root directory")
        try:
            tfd = self.root.open(target, os.O_PATH | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise LayerError(f"{m.name}: hard link target {m.linkname} is not in this layer") from None
        try:
            if stat.S_ISDIR(os.fstat(tfd).st_mode):
                raise UnsafeEntry(f"{m.name}: hard link to a directory")
            # linkat through the fd's /proc link: the target as resolved within the root,
            # not whatever its path might name by the time we link.
            os.link(f"/proc/self/fd/{tfd}", base, dst_dir_fd=pfd, follow_symlinks=True)
        finally:
            os.close(tfd)

    def _whiteout(self, parent: str, base: str) -> None:
        self.stats.whiteouts += 1
        if base != OPAQUE and base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # other AUFS metadata (.wh..wh.plnk etc.), meaningless here
        name = "" if base == OPAQUE else base[len(WHITEOUT_PREFIX):]
        if base != OPAQUE and (not name or name in (".", "..")):
            raise UnsafeEntry(f"invalid whiteout {parent}/{base}")
        target = parent if base == OPAQUE else (f"{parent}/{name}" if parent else name)
        try:
            pfd = self.root.real_dir(parent)
        except FileNotFoundError:
            pfd = None
            if not self.overlay:
                return  # nothing there to delete
            if self.deferred is not None:
                # Its parents are made only if a lower layer has the target.
                raise NeedsLowers(target) from None
        else:
            if pfd is None:
                return  # this layer made a parent a file or symlink: nothing below is left to hide
        try:
            if self.overlay and self.lower is not None and self.lower.lstat(target) is None:
                return  # no lower layer has it: a whiteout would only show up as a broken entry
            if pfd is None:
                self._implicit_parents(parent)
                pfd = os.dup(self.root.dir(parent))
            if base == OPAQUE:
                self._hide_lower_content(pfd, parent)
                return
            existing = _lstat(pfd, name)
            if existing and (self.overlay or target in self.created):
                # This layer's own entry stays (in overlay mode all that is here is this layer's);
                # a directory of it still hides the lower one's content.
                if stat.S_ISDIR(existing.st_mode):
                    cfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
                    try:
                        self._hide_lower_content(cfd, target)
                    finally:
                        os.close(cfd)
                return
            if existing:
                self._remove(pfd, name, existing, target)
            if self.overlay:
                os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=pfd)
                if self.deferred is not None:
                    self.deferred.whiteouts.add(target)
        finally:
            if pfd is not None:
                os.close(pfd)

    def _hide_lower_content(self, dfd: int, rel: str) -> None:
        """Directory `rel` (open as `dfd`) keeps only what this layer put in it."""
        if self.overlay:
            os.setxattr(f"/proc/self/fd/{dfd}", OVERLAY_OPAQUE_XATTR, b"y")
            if self.deferred is not None:
                self.deferred.opaque.append(rel)
            return
        for name in os.listdir(dfd):
            child = f"{rel}/{name}" if rel else name
            if child not in self.created:
                st = _lstat(dfd, name)
                if st:
                    self._remove(dfd, name, st, child)

    def _implicit_parents(self, parent: str) -> None:
        """Parents an entry needs but its layer has no entry for keep the lower layers' attributes.

        Overlay mode creates them as the lower layers have them; delete mode keeps the times of
        the directories already there.
        """
        if (self.overlay and self.lower is None and self.deferred is None) or not parent or parent in self.present:
            return
        done = ""
        for comp in parent.split("/"):
            done = f"{done}/{comp}" if done else comp
            if done in self.present:
                continue
            pfd = self.root.dir(done.rpartition("/")[0])
            here = _lstat(pfd, comp)
            if not self.overlay:
                if here is None or not stat.S_ISDIR(here.st_mode):
                    return
                self.dir_times.append((done, here.st_mtime_ns))
            elif self.deferred is not None:
                if here is not None and is_whiteout(here):
                    raise NeedsLowers(done)  # whether the whiteout exists depends on the lowers
                if here is None:
                    self.deferred.implicit[done] = None  # Root.dir makes it; settle() copies attrs
            elif here is None:
                src = self.lower.find(done)
                st = os.lstat(src) if src else None
                if st is None or not stat.S_ISDIR(st.st_mode):
                    return  # new here: Root.dir makes it (root:root 0755)
                os.mkdir(comp, 0o700, dir_fd=pfd)
                cfd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
                try:
                    _copy_dir_attrs(src, st, cfd)
                finally:
                    os.close(cfd)
                self.dir_times.append((done, st.st_mtime_ns))
            self.present.add(done)

    def _remove(self, pfd: int, name: str, st: os.stat_result, rel: str) -> None:
        """Callers must fetch their parent fd again afterwards: the cache may be dropped."""
        if stat.S_ISDIR(st.st_mode):
            if self.deferred is not None:
                raise NeedsLowers(rel)  # the recorded decisions may name what goes away
            shutil.rmtree(name, dir_fd=pfd)
            # Cached fds and known directories may name what is gone, also via symlinked paths.
            self.root.forget()
            self.present.clear()
        else:
            os.unlink(name, dir_fd=pfd)
            self.root.forget_under(rel)
            if self.deferred is not None:
                self.deferred.whiteouts.discard(rel)

    def _meta(self, pfd: int, name: str, m: tarfile.TarInfo, is_root: bool = False) -> None:
        is_link = m.issym()
        os.chown(name, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
        if not is_link:
            # After chown, which clears set-id bits.
            os.chmod(name, m.mode & 0o7777, dir_fd=pfd)
        for key, value in m.pax_headers.items():
            if not key.startswith("SCHILY.xattr."):
                continue
            attr = key[len("SCHILY.xattr."):]
            if attr.startswith("trusted.overlay."):
                continue  # a layer must not forge overlayfs whiteouts, redirects or opaques
            raw = value.encode("utf-8", "surrogateescape")
            try:
                os.setxattr(f"/proc/self/fd/{pfd}/{name}", attr, raw, follow_symlinks=False)
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
        if not m.isdir():
            ns = int(m.mtime * 1e9)
            os.utime(name, ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)


def _lstat(pfd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=pfd, follow_symlinks=False)
    except FileNotFoundError:
        return None
