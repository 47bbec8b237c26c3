"""`commit`: a bundle's changes as a new image layer on top of its image. An overlay bundle's
writable layer is the change; a copy-mode rootfs is compared with the image's own root
filesystem (its shared layers in a read-only overlay, mounted for the time of the diff).

The layer (ocimg.diff), the new config (its diff_id appended to rootfs.diff_ids, a history
entry) and an OCI manifest go into the store's blobs; the name is written last, under the
store's gc lock, so a failed commit leaves no half image and gc never takes what it wrote.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
import os
import tempfile
from collections.abc import Iterator

from ocimg import mediatypes as mt
from ocimg import overlay
from ocimg import reference
from ocimg.bundle import STATE_DIR, read_record
from ocimg.diff import write_layer
from ocimg.digest import Digest
from ocimg.errors import BundleError, InvalidReference, NotFound
from ocimg.manifest import Descriptor
from ocimg.store import Image, Store

CREATED_BY = "ocimg commit"

# Docker schema2 layers are the same bytes as their OCI counterparts: the new manifest is an OCI
# one, so the layers it keeps take the OCI names (Docker manifests know no zstd).
_OCI_LAYER_TYPE = {mt.DOCKER_LAYER_GZIP: mt.OCI_LAYER_GZIP, mt.DOCKER_LAYER_FOREIGN_GZIP: mt.OCI_LAYER_NONDIST_GZIP}
_LAYER_TYPE = {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD}


def commit(store: Store, bundle_dir: str, ref_text: str, compression: str = "gzip",
           message: str | None = None) -> Image:
    ref = reference.parse(ref_text)
    if ref.digest is not None:
        raise InvalidReference(f"invalid name {ref_text!r}: a new image cannot be named by a digest")
    bundle_dir = os.path.abspath(bundle_dir)
    record = read_record(bundle_dir)
    if os.path.abspath(record.get("store") or "") != store.root:
        raise BundleError(f"{bundle_dir} was made from the store {record.get('store')}, not {store.root} "
                          f"(use --root {record.get('store')})")
    if not os.path.isdir(store.root):
        raise BundleError(f"the store {store.root} of {bundle_dir} is gone")
    with store.in_use():
        try:
            base = store.image_by_digest(record.get("image", ""), Digest.parse(record.get("manifest", "")))
        except NotFound:
            raise BundleError(f"the image of {bundle_dir} ({record.get('manifest')}) is no longer in the store "
                              f"{store.root}: pull it again to commit") from None
        if record["mode"] == "overlay":
            layer = _write_layer_blob(store, os.path.join(bundle_dir, STATE_DIR, "upper"), compression)
        else:
            # A copy-mode rootfs is compared with the image's own merged view.
            with _image_view(store, base, bundle_dir) as view:
                layer = _write_layer_blob(store, os.path.join(bundle_dir, "rootfs"), compression, view)
        config = _config(base, layer.diff_id, message)
        cfg_bytes = json.dumps(config, separators=(",", ":")).encode()
        cfg_digest = store.layout.write_blob(cfg_bytes)
        layers = [Descriptor(_OCI_LAYER_TYPE.get(d.media_type, d.media_type), d.digest, d.size).to_json()
                  for d in base.manifest.layers]
        layers.append({"mediaType": _LAYER_TYPE[compression], "digest": layer.digest, "size": layer.size})
        manifest = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                    "config": {"mediaType": mt.OCI_CONFIG, "digest": str(cfg_digest), "size": len(cfg_bytes)},
                    "layers": layers}
        data = json.dumps(manifest, separators=(",", ":")).encode()
        digest = store.layout.write_blob(data)
        desc = Descriptor(mt.OCI_MANIFEST, digest, len(data), base.config.platform
                          if base.config.platform.os and base.config.platform.architecture else None)
        name = str(ref)
        store.layout.set_ref(name, desc)
    return store.image_for(name, desc)


@contextlib.contextmanager
def _image_view(store: Store, image: Image, bundle_dir: str) -> Iterator[str]:
    """The image's root filesystem, read-only: its shared layers (unpacked if need be) in an overlay."""
    lowers = [*reversed(store.unpacked_layers(image))]
    # overlayfs wants two lower dirs at least when it has no upper one.
    empty = tempfile.mkdtemp(prefix=".tmp-commit-empty-", dir=os.path.join(bundle_dir, STATE_DIR))
    view = tempfile.mkdtemp(prefix=".tmp-commit-view-", dir=os.path.join(bundle_dir, STATE_DIR))
    try:
        overlay.mount_readonly([*lowers, empty], view)
        try:
            yield view
        finally:
            overlay.unmount(view, lazy=True)
    finally:
        os.rmdir(view)
        os.rmdir(empty)


def _write_layer_blob(store: Store, upper: str, compression: str,  # type: ignore[no-untyped-def]
                      base: str | None = None):
    """The layer of `upper` (over `base`), written to STORE/ingest and moved into blobs/ once complete."""
    if not os.path.isdir(upper):
        raise BundleError(f"{upper} is missing: the bundle has nothing to commit")
    ingest = os.path.join(store.root, "ingest")
    os.makedirs(ingest, 0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-commit-", dir=ingest)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                layer = write_layer(upper, out, compression, base)
            except OSError as e:
                # A file that changed or went away under a running container, or a full disk.
                where = f" ({e.filename})" if e.filename else ""
                raise BundleError(f"cannot commit {upper}: {e.strerror or e}{where}") from None
            out.flush()
            os.fsync(out.fileno())
        store.layout.adopt(tmp, Digest.parse(layer.digest))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return layer


def _config(base: Image, diff_id: str, message: str | None) -> dict:
    config = copy.deepcopy(base.config.raw)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    config["created"] = now
    config.setdefault("rootfs", {"type": "layers"})["diff_ids"] = [*config["rootfs"]["diff_ids"], diff_id]
    entry = {"created": now, "created_by": CREATED_BY}
    if message:
        entry["comment"] = message
    config["history"] = [*(config.get("history") or []), entry]
    return config
