"""A layer tar from an overlay writable layer (a bundle's `.ocimg/upper`), the inverse of unpacking
in "overlay" mode: an overlay whiteout (char device 0:0) becomes `.wh.NAME`, a directory with
`trusted.overlay.opaque=y` gets `.wh..wh..opq` right after its own entry. Or from a whole root
filesystem compared with a base one (a copy-mode bundle against its image).

The tar is deterministic: entries sorted by name, numeric owners with empty user and group
names, mtimes kept (whole seconds), xattrs as PAX `SCHILY.xattr.*` records, gzip without a
name or time in its header. The same upper dir always gives the same diff_id and digest.

The walk goes through directory fds and opens nothing by path with symlinks followed: a
container still running from the bundle cannot make a commit read a file of the host.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ocimg.errors import BundleError
from ocimg.lowerview import OPAQUE_XATTR, is_whiteout
from ocimg.unpack import OPAQUE, WHITEOUT_PREFIX

COMPRESSIONS = ("gzip", "zstd")
_INCOMPLETE_MARKERS = ("trusted.overlay.redirect", "trusted.overlay.metacopy")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LayerBlob:
    diff_id: str  # sha256 of the tar
    digest: str  # sha256 of the compressed blob
    size: int  # of the compressed blob
    compression: str


class _HashingWriter:
    """Counts and hashes what passes through on its way to `out`."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.hasher = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        self.size += len(data)
        self._out.write(data)
        return len(data)

    def flush(self) -> None:
        self._out.flush()


def write_layer(upper: str, out: BinaryIO, compression: str = "gzip", base: str | None = None) -> LayerBlob:
    """Write the compressed layer tar of `upper` (an overlay upper dir) to `out`.

    With `base` (the image's root filesystem), `upper` is a whole root filesystem instead, and
    the layer holds what differs from `base`: new and changed entries (with the directories
    above them), `.wh.NAME` for what is gone. Files count as changed when their type, mode,
    owner, mtime, size, link target, device or xattrs differ.
    """
    if compression not in COMPRESSIONS:
        raise BundleError(f"unknown compression {compression!r} (choose {', '.join(COMPRESSIONS)})")
    compressed = _HashingWriter(out)
    if compression == "gzip":
        import gzip

        # No file name and a zero time in the gzip header: the same tar, the same blob.
        zf: BinaryIO = gzip.GzipFile(filename="", fileobj=compressed, mode="wb", mtime=0)  # type: ignore[arg-type]
    else:
        import zstandard  # only zstd commits pay for the import

        zf = zstandard.ZstdCompressor().stream_writer(compressed, closefd=False)  # type: ignore[arg-type]
    raw = _HashingWriter(zf)
    fd = _open_dir(upper)
    bfd = _open_dir(base) if base is not None else None
    try:
        with tarfile.open(fileobj=raw, mode="w|", format=tarfile.PAX_FORMAT,  # type: ignore[call-overload]
                          encoding="utf-8") as tf:
            for info, fileobj in _Walker(overlay=base is None).entries(fd, "", bfd):
                tf.addfile(info, fileobj)
                if fileobj is not None:
                    fileobj.close()
    finally:
        os.close(fd)
        if bfd is not None:
            os.close(bfd)
    zf.close()
    return LayerBlob(f"sha256:{raw.hasher.hexdigest()}", f"sha256:{compressed.hasher.hexdigest()}",
                     compressed.size, compression)


class _Walker:
    def __init__(self, overlay: bool) -> None:
        # An overlay upper dir marks deletions with whiteouts and opaque directories; a whole
        # root filesystem compared with its base has neither.
        self.overlay = overlay
        # (st_dev, st_ino) of files with several links -> the tar name of the first one.
        self.links: dict[tuple[int, int], str] = {}

    def entries(self, dfd: int, prefix: str,
                bfd: int | None = None) -> Iterator[tuple[tarfile.TarInfo, BinaryIO | None]]:
        """The tar entries under the directory open as `dfd`, sorted by their names in the tar;
        with `bfd` (the same directory in the base), only what differs from it."""
        names: list[tuple[str, str | None, os.stat_result | None]] = []
        for name in os.listdir(dfd):
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            gone = self.overlay and is_whiteout(st)
            names.append((WHITEOUT_PREFIX + name if gone else name, name, st))
        if bfd is not None:
            present = {n for _, n, _ in names}
            names += [(WHITEOUT_PREFIX + n, None, None) for n in os.listdir(bfd) if n not in present]
        for tar_name, name, st in sorted(names, key=lambda e: e[0]):
            path = prefix + tar_name
            if name is None or st is None:  # gone from the base
                yield _header(path, tarfile.REGTYPE, os.fstat(dfd), mode=0o644, xattrs={}), None
                continue
            if self.overlay and is_whiteout(st):
                yield _header(path, tarfile.REGTYPE, st, mode=0o644, xattrs={}), None
                continue
            bst = _lstat(bfd, name) if bfd is not None else None
            if bst is not None and stat.S_IFMT(bst.st_mode) == stat.S_IFMT(st.st_mode):
                if stat.S_ISDIR(st.st_mode):
                    yield from self._changed_dir(dfd, bfd, name, path, st, bst)  # type: ignore[arg-type]
                    continue
                if not _differs(dfd, bfd, name, st, bst):  # type: ignore[arg-type]
                    continue
            yield from self._entry(dfd, name, path, st)

    def _changed_dir(self, dfd: int, bfd: int, name: str, path: str, st: os.stat_result,
                     bst: os.stat_result) -> Iterator[tuple[tarfile.TarInfo, BinaryIO | None]]:
        """A directory in both: its entry when it or anything below it changed, then the changes."""
        sub, bsub = _open_dir(name, dfd), _open_dir(name, bfd)
        try:
            if _differs(dfd, bfd, name, st, bst) or _subtree_differs(sub, bsub):
                yield _header(path + "/", tarfile.DIRTYPE, st, xattrs=_xattrs(dfd, name)), None
                yield from self.entries(sub, path + "/", bsub)
        finally:
            os.close(sub)
            os.close(bsub)

    def _entry(self, dfd: int, name: str, path: str,
               st: os.stat_result) -> Iterator[tuple[tarfile.TarInfo, BinaryIO | None]]:
        """`name` and (a directory) everything below it, all new."""
        xattrs = _xattrs(dfd, name)
        if stat.S_ISDIR(st.st_mode):
            opaque = xattrs.pop(OPAQUE_XATTR, None) == b"y" and self.overlay
            sub = _open_dir(name, dfd)
            try:
                yield _header(path + "/", tarfile.DIRTYPE, st, xattrs=xattrs), None
                if opaque:
                    yield _header(f"{path}/{OPAQUE}", tarfile.REGTYPE, st, mode=0o644, xattrs={}), None
                yield from self.entries(sub, path + "/")
            finally:
                os.close(sub)
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.links:
                info = _header(path, tarfile.LNKTYPE, st, xattrs=xattrs)
                info.linkname = self.links[key]
                yield info, None
                return
            if st.st_nlink > 1:
                self.links[key] = path
            f = os.fdopen(os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd), "rb", _CHUNK)
            info = _header(path, tarfile.REGTYPE, st, xattrs=xattrs)
            info.size = os.fstat(f.fileno()).st_size
            yield info, f
        elif stat.S_ISLNK(st.st_mode):
            info = _header(path, tarfile.SYMTYPE, st, xattrs=xattrs)
            info.linkname = os.readlink(name, dir_fd=dfd)
            yield info, None
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            info = _header(path, tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE, st,
                           xattrs=xattrs)
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            yield info, None
        elif stat.S_ISFIFO(st.st_mode):
            yield _header(path, tarfile.FIFOTYPE, st, xattrs=xattrs), None
        # Sockets are left out, as tar does: they mean nothing outside the running container.


def _open_dir(path: str, dir_fd: int | None = None) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)


def _lstat(dfd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _differs(dfd: int, bfd: int, name: str, st: os.stat_result, bst: os.stat_result) -> bool:
    """Does entry `name` differ from the base's (the directories' contents aside)?"""
    if (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns) != (bst.st_mode, bst.st_uid, bst.st_gid, bst.st_mtime_ns):
        return True
    if stat.S_ISREG(st.st_mode) and st.st_size != bst.st_size:
        return True
    if stat.S_ISLNK(st.st_mode) and os.readlink(name, dir_fd=dfd) != os.readlink(name, dir_fd=bfd):
        return True
    if (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)) and st.st_rdev != bst.st_rdev:
        return True
    return _xattrs(dfd, name) != _xattrs(bfd, name)


def _subtree_differs(dfd: int, bfd: int) -> bool:
    names = os.listdir(dfd)
    if set(names) != set(os.listdir(bfd)):
        return True
    for name in names:
        st, bst = _lstat(dfd, name), _lstat(bfd, name)
        if st is None or bst is None or _differs(dfd, bfd, name, st, bst):
            return True
        if stat.S_ISDIR(st.st_mode):
            sub, bsub = _open_dir(name, dfd), _open_dir(name, bfd)
            try:
                if _subtree_differs(sub, bsub):
                    return True
            finally:
                os.close(sub)
                os.close(bsub)
    return False


def _header(name: str, kind: bytes, st: os.stat_result, *, xattrs: dict[str, bytes],
            mode: int | None = None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = stat.S_IMODE(st.st_mode) if mode is None else mode
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime)
    info.pax_headers = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in sorted(xattrs.items())}
    return info


def _xattrs(dfd: int, name: str) -> dict[str, bytes]:
    """The entry's xattrs, but overlayfs' own (trusted.overlay.*) except the opaque marker."""
    path = f"/proc/self/fd/{dfd}/{name}"
    out = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        names = []
    for attr in names:
        if attr in _INCOMPLETE_MARKERS:
            # The entry's content (or a renamed directory's) still lives in a lower layer.
            raise BundleError(f"cannot commit {name}: overlayfs kept it as a {attr} entry (mounted with "
                              "redirect_dir or metacopy, which ocimg does not diff)")
        if attr.startswith("trusted.overlay.") and attr != OPAQUE_XATTR:
            continue
        with contextlib.suppress(OSError):
            out[attr] = os.getxattr(path, attr, follow_symlinks=False)
    return out
