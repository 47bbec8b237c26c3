"""Pushing an image from the store to a registry: blobs the registry lacks, then the manifest.

The manifest goes up byte for byte as the store holds it, so the image keeps its digest; it is
sent last, once the registry has every blob it names (the distribution spec's order).
"""

from __future__ import annotations

from dataclasses import dataclass

from ocimg import mediatypes as mt
from ocimg.digest import Digest
from ocimg.errors import InvalidReference, NotFound
from ocimg.manifest import Descriptor, Platform
from ocimg.reference import Reference
from ocimg.registry.client import RegistryClient
from ocimg.store import Store

DEFAULT_CHUNK = 16 << 20
_FOREIGN = (mt.OCI_LAYER_NONDIST, mt.OCI_LAYER_NONDIST_GZIP, mt.OCI_LAYER_NONDIST_ZSTD, mt.DOCKER_LAYER_FOREIGN_GZIP)


@dataclass
class PushResult:
    name: str  # the image's name in the store
    dest: Reference
    digest: Digest
    pushed: int  # blobs uploaded
    mounted: int  # blobs the registry took from `mounted_from`, the image's own repository on it
    skipped: int  # blobs the registry had already
    mounted_from: str | None = None


def destination(text: str) -> Reference:
    from ocimg import reference

    ref = reference.parse(text)
    if ref.digest is not None:
        raise InvalidReference(f"invalid destination {text!r}: push to a tag, not a digest")
    return ref


def push(store: Store, source: str, dest: Reference, client: RegistryClient, platform: Platform | None = None,
         chunk_size: int = DEFAULT_CHUNK) -> PushResult:
    with store.in_use():
        image = store.image(source, platform)
        data = store.layout.read_blob(image.digest, image.descriptor.size)
        blobs: list[Descriptor] = [image.manifest.config, *image.manifest.layers]
        pushed = mounted = skipped = 0
        mount_from = _same_registry_repository(image.name, dest)
        seen: set[Digest] = set()
        for desc in blobs:
            if desc.digest in seen:
                continue
            seen.add(desc.digest)
            if client.has_blob(dest, desc.digest):
                skipped += 1
                continue
            if not store.layout.has_blob(desc.digest, desc.size):
                if desc.media_type in _FOREIGN:
                    continue  # fetched from its URLs by whoever pulls it, never pushed
                raise NotFound(f"blob {desc.digest} of {image.name} is missing from the store (pull it again)")
            if client.upload_blob(dest, desc, store.layout.blob_path(desc.digest), chunk_size, mount_from):
                mounted += 1
            else:
                pushed += 1
        digest = client.put_manifest(dest, data, image.manifest.media_type)
    return PushResult(image.name, dest, digest, pushed, mounted, skipped, mount_from)


def _same_registry_repository(name: str, dest: Reference) -> str | None:
    """The repository the image came from, when it is another one of `dest`'s registry."""
    from ocimg import reference

    try:
        src = reference.parse(name)
    except InvalidReference:
        return None
    return src.repository if src.registry == dest.registry and src.repository != dest.repository else None
