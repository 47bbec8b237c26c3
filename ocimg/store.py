"""The local store: an OCI image layout plus shared unpacked layers and bundle records.

    STORE/oci-layout, index.json, blobs/   an OCI image layout (readable by skopeo, umoci)
    STORE/ingest/                          downloads in progress (resumable)
    STORE/layers/<alg>/<hex>/              one unpacked layer per ChainID (overlay lower dirs)
    STORE/bundles/<id>.json                which bundle uses which layers (for gc)
    STORE/.gc.lock                         shared by pulls, imports and bundle creation; gc's alone

The store holds setuid binaries and device nodes of every image: the root and the directories
below it are 0700 so that no other local user can reach them.

Unpacked layers are keyed by ChainID (the layer together with everything below it, image-spec),
not by diff_id: how a layer is unpacked for overlayfs depends on its lower layers (which
whiteouts are needed, which attributes implicit parent directories take).

Image names in index.json are full normalised references (docker.io/library/x:tag).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ocimg import mediatypes as mt
from ocimg import reference
from ocimg.digest import Digest
from ocimg.errors import InvalidReference, LayerError, ManifestError, NotFound, OcimgError
from ocimg.layout import REF_NAME, Layout, atomic_write
from ocimg.manifest import (
    MAX_CONFIG_SIZE,
    MAX_MANIFEST_SIZE,
    Descriptor,
    ImageConfig,
    Manifest,
    Platform,
    media_type_of,
    parse_index,
    parse_manifest,
)
from ocimg.unpack import NeedsLowers, unpack_layer

DEFAULT_ROOT = "/var/lib/ocimg"
PRIVATE = 0o700
# Beyond the cores, more threads only add memory (a decompression buffer each) and seeks.
_MAX_UNPACK_THREADS = 4


def private_dir(path: str) -> str:
    """Create `path` (and parents) if needed and make it root's alone, also when it existed."""
    os.makedirs(path, PRIVATE, exist_ok=True)
    os.chmod(path, PRIVATE)
    return path


@dataclass(frozen=True)
class Image:
    name: str
    descriptor: Descriptor  # of the image manifest (never an index)
    manifest: Manifest
    config: ImageConfig

    @property
    def digest(self) -> Digest:
        return self.descriptor.digest


class Store:
    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = os.path.abspath(root)
        self.layout = Layout(self.root)

    def init(self) -> "Store":
        private_dir(self.root)
        self.layout.init()
        for d in ("layers", os.path.join("layers", "sha256"), "bundles", "ingest"):
            private_dir(os.path.join(self.root, d))
        return self

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """Held (shared) for a whole pull, import or bundle creation; `gc` takes it exclusively.

        So gc never deletes a blob a running pull already committed (its name comes last), nor
        a layer being unpacked, nor what a bundle is about to record: it waits for them.
        """
        with self._gc_lock(fcntl.LOCK_SH):
            yield

    @contextlib.contextmanager
    def _gc_lock(self, how: int) -> Iterator[None]:
        private_dir(self.root)
        fd = os.open(os.path.join(self.root, ".gc.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, how)
            yield
        finally:
            os.close(fd)

    # -- names --------------------------------------------------------------------------

    def lookup(self, text: str, platform: Platform | None = None) -> tuple[str, Descriptor]:
        """Find an image by reference, or by (a prefix of) its manifest digest.

        A name stored for several platforms means this host's one, unless `platform` says.
        """
        entries = self.layout.entries() if os.path.exists(self.layout.index_path) else []
        try:
            ref = reference.parse(text)
            name = str(ref)
        except InvalidReference:
            ref, name = None, text
        named = [d for d in entries if d.annotations.get(REF_NAME) == name]
        if named:
            return name, _for_platform(name, named, platform)
        if ref is not None and ref.digest is not None:
            for d in entries:
                n = d.annotations.get(REF_NAME, "")
                if d.digest == ref.digest and n.startswith(ref.name):
                    return n, d
        key = text.removeprefix("sha256:")
        if len(key) >= 6 and all(c in "0123456789abcdef" for c in key):
            hits = {d.annotations.get(REF_NAME, ""): d for d in entries if d.digest.hex.startswith(key)}
            if len(hits) == 1:
                return next(iter(hits.items()))
            if len(hits) > 1:
                raise OcimgError(f"{text} matches several images: {', '.join(sorted(hits))}")
        if ref is None:
            raise InvalidReference(f"invalid reference {text!r}")
        raise NotFound(f"image {name} is not in the store {self.root} (pull it first)")

    def image(self, text: str, platform: Platform | None = None) -> Image:
        name, desc = self.lookup(text, platform)
        return self.image_for(name, desc, platform)

    def image_for(self, name: str, desc: Descriptor, platform: Platform | None = None) -> Image:
        data = self.layout.read_blob(desc.digest, desc.size)
        mtype = media_type_of(data, desc.media_type)
        if mt.is_index(mtype):
            # A whole index was imported under this name: use the wanted (or this host's) platform.
            chosen = parse_index(data, mtype).select(platform or Platform.host())
            return self.image_for(name, chosen)
        manifest = parse_manifest(data, mtype)
        if manifest.config.size > MAX_CONFIG_SIZE:
            raise ManifestError(f"image config of {name} is too large")
        config = ImageConfig.parse(self.layout.read_blob(manifest.config.digest, manifest.config.size))
        if len(config.diff_ids) != len(manifest.layers):
            raise ManifestError(f"{name}: {len(manifest.layers)} layers but {len(config.diff_ids)} diff_ids")
        return Image(name, desc, manifest, config)

    def image_by_digest(self, name: str, digest: Digest) -> Image:
        """The image whose manifest is blob `digest` (named `name`), whatever names point at it."""
        data = self.layout.read_blob(digest)
        return self.image_for(name, Descriptor(media_type_of(data), digest, len(data)))

    def images(self) -> list[tuple[str, Descriptor]]:
        if not os.path.exists(self.layout.index_path):
            return []
        return [(d.annotations.get(REF_NAME, ""), d) for d in self.layout.entries()]

    def remove(self, text: str, platform: Platform | None = None) -> str:
        """Drop an image name: for every platform, or only `platform`'s entry."""
        name, desc = self.lookup(text, platform)
        self.layout.remove_ref(name, desc.digest if platform else None)
        return name

    def tag(self, src: str, dst: str, platform: Platform | None = None) -> tuple[str, str]:
        """Give the image `src` (this host's platform, or `platform`) the new name `dst`.

        The new entry carries the same manifest descriptor (and so the same platform): tagging
        one platform of a multi-platform name leaves the other platforms of `dst` alone.
        """
        ref = reference.parse(dst)
        if ref.digest is not None:
            raise InvalidReference(f"invalid tag {dst!r}: a new name cannot pin a digest")
        with self.in_use():
            name, desc = self.lookup(src, platform)
            self.layout.set_ref(str(ref), desc)
        return name, str(ref)

    # -- unpacked layers ------------------------------------------------------------------

    def layer_dir(self, chain_id: Digest) -> str:
        return os.path.join(self.root, "layers", chain_id.algorithm, chain_id.hex)

    @contextlib.contextmanager
    def _layer_lock(self, chain_id: Digest) -> Iterator[None]:
        d = private_dir(os.path.join(self.root, "layers", chain_id.algorithm))
        fd = os.open(os.path.join(d, f".{chain_id.hex}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def unpacked_layers(self, image: Image, use_openat2: bool | None = None) -> list[str]:
        """Each layer of `image` unpacked on its own (overlay whiteouts), bottom first.

        Layers unpack in parallel: each one is written ahead of its lower layers and settles
        what depends on them (whiteouts, implicit parents) once they are complete (unpack.py).
        Decompression, hashing and file syscalls release the GIL, so threads overlap them.
        """
        layers = list(zip(image.manifest.layers, image.config.diff_ids, chain_ids(image.config.diff_ids)))
        todo = [chain for _, _, chain in layers if not os.path.isdir(self.layer_dir(chain))]
        if len(todo) < 2:
            out: list[str] = []
            for desc, diff_id, chain in layers:
                out.append(self.unpack_shared(desc, diff_id, chain, list(reversed(out)), use_openat2))
            return out
        from concurrent.futures import Future, ThreadPoolExecutor

        futures: list[Future[str]] = []

        def lowers_of(i: int) -> Callable[[], list[str]]:
            # Layer i's lowers were submitted before it, so they are running or done: no deadlock.
            return lambda: [futures[j].result() for j in reversed(range(i))]

        workers = min(len(todo), max(2, os.cpu_count() or 1), _MAX_UNPACK_THREADS)
        with ThreadPoolExecutor(workers, thread_name_prefix="unpack") as pool:
            for i, (desc, diff_id, chain) in enumerate(layers):
                lowers = lowers_of(i) if i else []
                futures.append(pool.submit(self.unpack_shared, desc, diff_id, chain, lowers, use_openat2))
            return [f.result() for f in futures]

    def unpack_shared(self, desc: Descriptor, diff_id: Digest, chain_id: Digest,
                      lowers: list[str] | Callable[[], list[str]], use_openat2: bool | None = None) -> str:
        """The layer unpacked over `lowers` (top-most first) into its ChainID's directory.

        `lowers` may be a callable that waits for them, so the layer unpacks meanwhile; a layer
        that cannot (NeedsLowers) is unpacked again once they are complete.
        """
        try:
            return self._unpack_shared(desc, diff_id, chain_id, lowers, use_openat2)
        except NeedsLowers:
            return self._unpack_shared(desc, diff_id, chain_id, lowers(), use_openat2)  # type: ignore[operator]

    def _unpack_shared(self, desc: Descriptor, diff_id: Digest, chain_id: Digest,
                       lowers: list[str] | Callable[[], list[str]], use_openat2: bool | None = None) -> str:
        final = self.layer_dir(chain_id)
        if os.path.isdir(final):
            return final
        with self._layer_lock(chain_id):
            if os.path.isdir(final):
                return final
            if not self.layout.has_blob(desc.digest, desc.size):
                raise NotFound(f"layer blob {desc.digest} is missing from the store (pull the image again)")
            parent = os.path.dirname(final)
            tmp = tempfile.mkdtemp(prefix=f".tmp-{diff_id.hex[:12]}-", dir=parent)
            held = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
            try:
                os.chmod(tmp, 0o755)
                unpack_layer(self.layout.blob_path(desc.digest), tmp, whiteouts="overlay",
                             diff_id=diff_id, use_openat2=use_openat2, lowers=lowers)
                # The diff_id check hashed the stream, not the disk: make sure the tree we
                # wrote is still the one at `tmp` before it becomes the layer.
                _same_dir(held, tmp)
                # Renamed into place only when complete: a half-unpacked layer is never used.
                os.rename(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            finally:
                os.close(held)
        return final

    # -- bundles ---------------------------------------------------------------------------

    def _bundle_record(self, bundle_dir: str) -> str:
        key = hashlib.sha256(os.path.abspath(bundle_dir).encode()).hexdigest()[:32]
        return os.path.join(self.root, "bundles", f"{key}.json")

    def record_bundle(self, bundle_dir: str, image: Image, layers: list[Digest], mode: str) -> None:
        private_dir(os.path.join(self.root, "bundles"))
        doc = {"dir": os.path.abspath(bundle_dir), "image": image.name, "manifest": str(image.digest),
               "mode": mode, "layers": [str(d) for d in layers]}
        atomic_write(self._bundle_record(bundle_dir), json.dumps(doc, indent=2).encode())

    def forget_bundle(self, bundle_dir: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._bundle_record(bundle_dir))

    def bundle_records(self) -> list[dict]:
        d = os.path.join(self.root, "bundles")
        out = []
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else ():
            if name.endswith(".json"):
                try:
                    with open(os.path.join(d, name), encoding="utf-8") as f:
                        doc = json.load(f)
                    doc["_record"] = os.path.join(d, name)
                    out.append(doc)
                except (OSError, ValueError):
                    continue
        return out

    # -- garbage collection ----------------------------------------------------------------

    def reachable(self) -> tuple[set[Digest], set[Digest]]:
        """(blobs, ChainIDs of unpacked layers) that images in index.json need."""
        blobs: set[Digest] = set()
        chains: set[Digest] = set()
        todo = [d for _, d in self.images()]
        while todo:
            desc = todo.pop()
            if desc.digest in blobs:
                continue
            blobs.add(desc.digest)
            if not self.layout.has_blob(desc.digest):
                continue
            data = self.layout.read_blob(desc.digest, verify=False)
            if desc.size > MAX_MANIFEST_SIZE:
                continue
            try:
                mtype = media_type_of(data, desc.media_type)
            except ManifestError:
                continue
            if mt.is_index(mtype):
                todo.extend(parse_index(data, mtype).manifests)
            elif mt.is_manifest(mtype):
                m = parse_manifest(data, mtype)
                blobs.add(m.config.digest)
                blobs.update(layer.digest for layer in m.layers)
                if self.layout.has_blob(m.config.digest):
                    cfg = ImageConfig.parse(self.layout.read_blob(m.config.digest, verify=False))
                    chains.update(chain_ids(cfg.diff_ids))
        return blobs, chains

    def _clean_ingest(self) -> None:
        """Drop abandoned partial downloads; ones a running pull holds locked stay."""
        d = os.path.join(self.root, "ingest")
        for name in os.listdir(d) if os.path.isdir(d) else ():
            if name.startswith(".tmp-"):
                # A layer a killed commit was writing (running ones hold the gc lock).
                os.unlink(os.path.join(d, name))
                continue
            if not name.endswith(".lock"):
                continue
            lock = os.path.join(d, name)
            fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock[: -len(".lock")] + ".partial")
                os.unlink(lock)
            finally:
                os.close(fd)

    def gc(self) -> tuple[list[Digest], list[Digest]]:
        """Remove blobs and unpacked layers that no image and no live bundle uses."""
        with self._gc_lock(fcntl.LOCK_EX), self.layout.locked():
            blobs, layer_keys = self.reachable()
            for rec in self.bundle_records():
                if os.path.exists(os.path.join(rec.get("dir", ""), ".ocimg", "bundle.json")):
                    layer_keys.update(Digest.parse(d) for d in rec.get("layers", []))
                else:
                    os.unlink(rec["_record"])  # its bundle directory is gone
            removed_blobs = []
            for d in list(self.layout.blobs()):
                if d not in blobs:
                    os.unlink(self.layout.blob_path(d))
                    removed_blobs.append(d)
            removed_layers = []
            base = os.path.join(self.root, "layers")
            for alg in sorted(os.listdir(base)) if os.path.isdir(base) else ():
                for name in sorted(os.listdir(os.path.join(base, alg))):
                    path = os.path.join(base, alg, name)
                    if name.startswith("."):
                        if name.startswith(".tmp-"):
                            # Left by an unpack that was killed: running ones hold the gc lock.
                            shutil.rmtree(path, ignore_errors=True)
                        continue
                    try:
                        d = Digest.parse(f"{alg}:{name}")
                    except Exception:  # noqa: BLE001
                        continue
                    if d not in layer_keys:
                        shutil.rmtree(path)
                        removed_layers.append(d)
            self._clean_ingest()
        return removed_blobs, removed_layers


def _same_dir(fd: int, path: str) -> None:
    """Raise unless `path` is still the directory open as `fd` (not deleted or replaced)."""
    held = os.fstat(fd)
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        now = None
    if held.st_nlink == 0 or now is None or (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
        raise LayerError(f"the layer being unpacked in {path} was removed meanwhile; try again")


def chain_ids(diff_ids: list[Digest]) -> list[Digest]:
    """ChainID(L0) = DiffID(L0); ChainID(L0..n) = Digest(ChainID(L0..n-1) + " " + DiffID(Ln))."""
    out: list[Digest] = []
    for d in diff_ids:
        out.append(d if not out else Digest.of(f"{out[-1]} {d}".encode(), out[-1].algorithm))
    return out


def _for_platform(name: str, entries: list[Descriptor], want: Platform | None) -> Descriptor:
    """The entry of `name` for platform `want` (default: the only one, else this host's)."""
    if want is None and len(entries) == 1:
        return entries[0]
    target = want or Platform.host()
    for d in entries:
        if d.platform is None or target.matches(d.platform):
            return d
    stored = ", ".join(sorted(str(d.platform) for d in entries if d.platform))
    if want is None:
        raise NotFound(f"{name} is stored for {stored}, not this host's {target}: choose one with --platform")
    raise NotFound(f"{name} is not stored for {want} (stored: {stored})")
