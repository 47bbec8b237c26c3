"""Pulling an image from a registry into the store: manifest(s), config, layers."""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass

from ocimg import mediatypes as mt
from ocimg.config import Config
from ocimg.errors import ManifestError
from ocimg.manifest import (
    MAX_CONFIG_SIZE,
    Descriptor,
    ImageConfig,
    Platform,
    check_supported,
    media_type_of,
    parse_index,
    parse_manifest,
)
from ocimg.progress import NullProgress, RichProgress
from ocimg.reference import Reference
from ocimg.registry.auth import load_credentials
from ocimg.registry.client import RegistryClient
from ocimg.store import Image, Store


@dataclass
class PullResult:
    image: Image
    fetched: int  # layer blobs downloaded
    skipped: int  # layer blobs already in the store


def make_client(ref: Reference, cfg: Config, insecure: bool = False, auth_file: str | None = None,
                cert_dir: str | None = None) -> RegistryClient:
    creds = load_credentials(ref.registry, ref.repository, auth_file or cfg.auth_file)
    return RegistryClient(ref.registry, api_host=ref.api_host, insecure=insecure or cfg.is_insecure(ref.registry),
                          certs_dirs=cfg.certs_dirs, cert_dir=cert_dir, credentials=creds)


def pull(store: Store, ref: Reference, client: RegistryClient, platform: Platform | None = None,
         progress: NullProgress | RichProgress | None = None, jobs: int = 3) -> PullResult:
    store.init()
    with store.in_use():
        return _pull(store, ref, client, platform, progress, jobs)


def _pull(store: Store, ref: Reference, client: RegistryClient, platform: Platform | None,
          progress: NullProgress | RichProgress | None, jobs: int) -> PullResult:
    progress = progress or NullProgress()
    want = platform or Platform.host()
    data, header_type, digest = client.get_manifest(ref)
    mtype = media_type_of(data, header_type)
    check_supported(mtype)
    top = Descriptor(mtype, digest, len(data))
    if mt.is_index(mtype):
        index = parse_index(data, mtype)
        store.layout.write_blob(data, digest)
        chosen = index.select(want)
        data, header_type, mdigest = client.get_manifest(ref, str(chosen.digest))
        if len(data) != chosen.size:
            raise ManifestError(f"manifest {chosen.digest}: size {len(data)} does not match the index's {chosen.size}")
        mtype = media_type_of(data, header_type)
        if not mt.is_manifest(mtype):
            raise ManifestError(f"index entry {chosen.digest} is a {mtype}, not an image manifest")
        mdesc = Descriptor(mtype, mdigest, len(data), chosen.platform)
    else:
        mdesc = top
    manifest = parse_manifest(data, mtype)

    if store.layout.has_blob(manifest.config.digest, manifest.config.size):
        cfg_bytes = store.layout.read_blob(manifest.config.digest, manifest.config.size)
    else:
        cfg_bytes = client.get_blob_bytes(ref, manifest.config, MAX_CONFIG_SIZE)
    config = ImageConfig.parse(cfg_bytes)
    if len(config.diff_ids) != len(manifest.layers):
        raise ManifestError(f"{ref}: {len(manifest.layers)} layers but {len(config.diff_ids)} diff_ids in its config")
    if not mt.is_index(top.media_type) and config.platform.os and config.platform.architecture:
        mdesc = Descriptor(mdesc.media_type, mdesc.digest, mdesc.size, config.platform)

    unique = list({d.digest: d for d in manifest.layers}.values())
    missing = [d for d in unique if not store.layout.has_blob(d.digest, d.size)]
    skipped = len(unique) - len(missing)
    for d in unique:
        if d not in missing:
            progress.done(d.digest.short, "already exists")

    def fetch(desc: Descriptor) -> None:
        with store.layout.ingest_lock(desc.digest):
            if store.layout.has_blob(desc.digest, desc.size):  # another pull got it meanwhile
                progress.done(desc.digest.short, "already exists")
                return
            cb = progress.task(desc.digest.short, desc.size)
            client.fetch_blob(ref, desc, store.layout.ingest_path(desc.digest), cb)
            store.layout.commit_ingest(desc.digest)

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(fetch, d) for d in missing]
        try:
            for f in concurrent.futures.as_completed(futures):
                f.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    # Config and manifest last: an image is in the store only once all its blobs are.
    store.layout.write_blob(cfg_bytes, manifest.config.digest)
    store.layout.write_blob(data, mdesc.digest)
    name = str(ref)
    store.layout.set_ref(name, mdesc)
    image = store.image_for(name, mdesc)
    return PullResult(image, len(missing), skipped)
