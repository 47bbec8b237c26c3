"""An OCI image layout directory: `oci-layout`, `index.json`, `blobs/<alg>/<hex>`.

Writes are atomic (temp file + rename) and index.json changes are serialised with a
lock file, so concurrent ocimg processes on one store do not lose entries.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

from ocimg import mediatypes as mt
from ocimg.digest import Digest, verify_bytes
from ocimg.errors import LayoutError, NotFound
from ocimg.manifest import Descriptor

LAYOUT_VERSION = "1.0.0"
REF_NAME = "org.opencontainers.image.ref.name"


def atomic_write(path: str, data: bytes, mode: int = 0o644) -> None:
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class Layout:
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    # -- creation and checks ------------------------------------------------------------

    def init(self) -> "Layout":
        os.makedirs(os.path.join(self.root, "blobs", "sha256"), exist_ok=True)
        if not os.path.exists(os.path.join(self.root, "oci-layout")):
            atomic_write(os.path.join(self.root, "oci-layout"),
                         json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode())
        if not os.path.exists(self.index_path):
            self._write_index({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []})
        return self

    def check(self) -> None:
        try:
            with open(os.path.join(self.root, "oci-layout"), "rb") as f:
                doc = json.load(f)
        except FileNotFoundError:
            raise LayoutError(f"{self.root} is not an OCI image layout (no oci-layout file)") from None
        except (OSError, ValueError) as e:
            raise LayoutError(f"{self.root}/oci-layout is unreadable: {e}") from None
        if not isinstance(doc, dict) or not str(doc.get("imageLayoutVersion", "")).startswith("1."):
            raise LayoutError(f"{self.root}: unsupported imageLayoutVersion {doc.get('imageLayoutVersion')!r}")
        self.read_index()

    @property
    def index_path(self) -> str:
        return os.path.join(self.root, "index.json")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        os.makedirs(self.root, exist_ok=True)
        fd = os.open(os.path.join(self.root, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- blobs --------------------------------------------------------------------------

    def blob_path(self, digest: Digest) -> str:
        return os.path.join(self.root, "blobs", digest.algorithm, digest.hex)

    def has_blob(self, digest: Digest, size: int | None = None) -> bool:
        try:
            st = os.stat(self.blob_path(digest))
        except FileNotFoundError:
            return False
        return size is None or st.st_size == size

    def read_blob(self, digest: Digest, size: int | None = None, verify: bool = True) -> bytes:
        try:
            with open(self.blob_path(digest), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in {self.root}") from None
        if verify:
            verify_bytes(data, digest, size, f"blob {digest} in {self.root}")
        return data

    def write_blob(self, data: bytes, digest: Digest | None = None) -> Digest:
        d = digest or Digest.of(data)
        if digest:
            verify_bytes(data, digest, None, "blob")
        path = self.blob_path(d)
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            atomic_write(path, data)
        return d

    def ingest_path(self, digest: Digest) -> str:
        """Where a download in progress lives; kept across runs so a pull can resume."""
        d = os.path.join(self.root, "ingest")
        os.makedirs(d, exist_ok=True)
        return os.path.join(d, f"{digest.algorithm}-{digest.hex}.partial")

    @contextlib.contextmanager
    def ingest_lock(self, digest: Digest) -> Iterator[None]:
        """Held while one process downloads a blob, so two pulls never share a partial file."""
        d = os.path.join(self.root, "ingest")
        os.makedirs(d, exist_ok=True)
        fd = os.open(os.path.join(d, f"{digest.algorithm}-{digest.hex}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def commit_ingest(self, digest: Digest) -> None:
        self.adopt(self.ingest_path(digest), digest)

    def adopt(self, path: str, digest: Digest) -> None:
        """Move the complete, verified file `path` into place as blob `digest`."""
        final = self.blob_path(digest)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.chmod(path, 0o644)
        os.replace(path, final)

    def blobs(self) -> Iterator[Digest]:
        base = os.path.join(self.root, "blobs")
        for alg in sorted(os.listdir(base)) if os.path.isdir(base) else ():
            for hexpart in sorted(os.listdir(os.path.join(base, alg))):
                if hexpart.startswith("."):
                    continue
                try:
                    yield Digest.parse(f"{alg}:{hexpart}")
                except Exception:  # noqa: BLE001 -- foreign files in blobs/ are left alone
                    continue

    # -- index.json ---------------------------------------------------------------------

    def read_index(self) -> dict[str, Any]:
        try:
            with open(self.index_path, "rb") as f:
                doc = json.load(f)
        except FileNotFoundError:
            raise LayoutError(f"{self.root} is not an OCI image layout (no index.json)") from None
        except (OSError, ValueError) as e:
            raise LayoutError(f"{self.index_path} is unreadable: {e}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("manifests", []), list):
            raise LayoutError(f"{self.index_path} is not an image index")
        doc.setdefault("manifests", [])
        return doc

    def _write_index(self, doc: dict[str, Any]) -> None:
        atomic_write(self.index_path, json.dumps(doc, indent=2).encode() + b"\n")

    def entries(self) -> list[Descriptor]:
        return [Descriptor.from_json(m, "index.json entry") for m in self.read_index()["manifests"]]

    def find(self, name: str) -> Descriptor | None:
        for d in self.entries():
            if d.annotations.get(REF_NAME) == name:
                return d
        return None

    def set_ref(self, name: str, desc: Descriptor) -> None:
        """Point `name` at `desc`, replacing what it pointed at for the same platform.

        Entries of one name for different platforms live side by side (each index.json entry
        carries its `platform`); an entry without a platform replaces them all, and is replaced
        by any.
        """
        with self.locked():
            doc = self.read_index()
            kept = [m for m in doc["manifests"]
                    if (m.get("annotations") or {}).get(REF_NAME) != name
                    or (desc.platform and m.get("platform") and m["platform"] != desc.platform.to_json())]
            entry = desc.to_json()
            entry["annotations"] = {**desc.annotations, REF_NAME: name}
            kept.append(entry)
            doc["manifests"] = kept
            self._write_index(doc)

    def remove_ref(self, name: str, digest: Digest | None = None) -> bool:
        """Drop `name` (only its entry for manifest `digest`, if given)."""
        with self.locked():
            doc = self.read_index()
            kept = [m for m in doc["manifests"] if (m.get("annotations") or {}).get(REF_NAME) != name
                    or (digest is not None and m.get("digest") != str(digest))]
            if len(kept) == len(doc["manifests"]):
                return False
            doc["manifests"] = kept
            self._write_index(doc)
            return True
