"""Import and export of OCI image layouts, as directories or tar archives of one."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile

from ocimg import mediatypes as mt
from ocimg import reference
from ocimg.digest import Digest
from ocimg.errors import DigestError, InvalidReference, LayoutError, ManifestError, NotFound
from ocimg.layout import REF_NAME, Layout
from ocimg.manifest import Descriptor, Platform, media_type_of, parse_index, parse_manifest
from ocimg.store import Store

_CHUNK = 1 << 20


def _closure(layout: Layout, desc: Descriptor, need_all: bool = True) -> list[Descriptor]:
    """Every blob a manifest or index refers to, the document itself first."""
    out = [desc]
    data = layout.read_blob(desc.digest, desc.size)
    mtype = media_type_of(data, desc.media_type)
    if mt.is_index(mtype):
        for child in parse_index(data, mtype).manifests:
            if not layout.has_blob(child.digest):
                if need_all:
                    raise LayoutError(f"{layout.root}: blob {child.digest} is missing")
                continue  # an index pulled for one platform has the others absent
            out += _closure(layout, child, need_all)
    elif mt.is_manifest(mtype):
        m = parse_manifest(data, mtype)
        out.append(m.config)
        out += list(m.layers)
    else:
        raise ManifestError(f"unsupported manifest media type {mtype!r}")
    return out


def _copy_verified(src: str, dst_layout: Layout, desc: Descriptor) -> None:
    if dst_layout.has_blob(desc.digest, desc.size):
        return
    tmp = dst_layout.ingest_path(desc.digest)
    hasher = desc.digest.hasher()
    size = 0
    try:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            while chunk := fin.read(_CHUNK):
                hasher.update(chunk)
                size += len(chunk)
                fout.write(chunk)
    except FileNotFoundError:
        raise LayoutError(f"blob {desc.digest} is missing from the layout") from None
    if size != desc.size or hasher.hexdigest() != desc.digest.hex:
        os.unlink(tmp)
        raise DigestError(f"blob {desc.digest} in the layout does not match its digest or size")
    dst_layout.commit_ingest(desc.digest)


def export(store: Store, text: str, dest: str, ref_name: str | None = None, platform: Platform | None = None) -> str:
    """Write the image as an OCI layout: a directory, or a tar archive when dest ends in .tar."""
    store.lookup(text, platform)  # a missing image is reported before the store is touched
    with store.in_use():  # gc waits: the blobs stay while they are copied
        name, desc = store.lookup(text, platform)
        return _export(store, name, desc, dest, ref_name)


def _export(store: Store, name: str, desc: Descriptor, dest: str, ref_name: str | None) -> str:
    blobs = _closure(store.layout, desc, need_all=False)
    label = ref_name or name
    if dest.endswith(".tar"):
        with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(dest)) or ".") as tmp:
            out = Layout(os.path.join(tmp, "layout")).init()
            for b in {x.digest: x for x in blobs}.values():
                _link_or_copy(store.layout.blob_path(b.digest), out.blob_path(b.digest))
            out.set_ref(label, desc)
            with tarfile.open(dest + ".tmp", "w", format=tarfile.PAX_FORMAT) as tf:
                for entry in ("oci-layout", "index.json", "blobs"):
                    tf.add(os.path.join(out.root, entry), arcname=entry)
            os.replace(dest + ".tmp", dest)
        return label
    out = Layout(dest).init()
    for b in {x.digest: x for x in blobs}.values():
        if not out.has_blob(b.digest, b.size):
            _link_or_copy(store.layout.blob_path(b.digest), out.blob_path(b.digest))
    out.set_ref(label, desc)
    return label


def _link_or_copy(src: str, dst: str) -> None:
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _extract_layout(tf: tarfile.TarFile, dest: str) -> None:
    """An OCI layout holds only directories and regular files: extract exactly those, refusing
    absolute names and `..` (tarfile's extraction filters are missing before Python 3.11.4)."""
    for m in tf.getmembers():
        parts = [p for p in m.name.split("/") if p not in ("", ".")]
        if m.name.startswith("/") or ".." in parts:
            raise LayoutError(f"refusing archive member {m.name!r}: outside the layout")
        if not parts:
            continue
        path = os.path.join(dest, *parts)
        if m.isdir():
            os.makedirs(path, 0o755, exist_ok=True)
        elif m.isfile():
            os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
            src = tf.extractfile(m)
            assert src is not None
            with src, open(path, "xb") as out:
                shutil.copyfileobj(src, out)
        else:
            raise LayoutError(f"refusing archive member {m.name!r}: not a file or directory")


def import_(store: Store, src: str, ref_text: str | None = None) -> list[str]:
    """Copy the images of a layout (dir or tar) into the store, verifying every blob."""
    store.init()
    with store.in_use():
        return _import(store, src, ref_text)


def _import(store: Store, src: str, ref_text: str | None) -> list[str]:
    if os.path.isfile(src):
        with tempfile.TemporaryDirectory(dir=store.root, prefix=".import-") as tmp:
            try:
                with tarfile.open(src) as tf:
                    _extract_layout(tf, tmp)
            except (tarfile.TarError, OSError) as e:
                raise LayoutError(f"{src} is not a readable tar archive of an OCI layout: {e}") from None
            return _import_dir(store, tmp, ref_text)
    if not os.path.isdir(src):
        raise NotFound(f"{src} does not exist")
    return _import_dir(store, src, ref_text)


def _import_dir(store: Store, src: str, ref_text: str | None) -> list[str]:
    layout = Layout(src)
    layout.check()
    entries = layout.entries()
    if not entries:
        raise LayoutError(f"{src} holds no images")
    if ref_text and len(entries) > 1:
        raise LayoutError(f"{src} holds {len(entries)} images; a name can only be given for one")
    names = []
    for desc in entries:
        label = desc.annotations.get(REF_NAME, "")
        if ref_text:
            name = str(reference.parse(ref_text))
        elif "/" in label or ":" in label:
            try:
                name = str(reference.parse(label))
            except InvalidReference:
                raise LayoutError(f"image {label!r} in {src} has no usable name: give one") from None
        else:
            raise LayoutError(f"image {label or desc.digest} in {src} is named only {label!r}: give a full name "
                              f"(e.g. `ocimg import {src} localhost/NAME:TAG`)")
        for b in _closure(layout, desc, need_all=False):
            _copy_verified(layout.blob_path(b.digest), store.layout, b)
        clean = Descriptor(desc.media_type, desc.digest, desc.size, desc.platform,
                           {k: v for k, v in desc.annotations.items() if k != REF_NAME})
        store.layout.set_ref(name, clean)
        store.image_for(name, clean)  # fails now, not at bundle time, if it cannot be used
        names.append(name)
    return names


__all__ = ["export", "import_", "Digest"]
