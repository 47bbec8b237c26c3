"""Runtime bundles from images: config.json plus a rootfs that is either an overlay of the
store's shared layers (with a per-bundle upper dir) or a private extracted copy.

    DIR/config.json
    DIR/rootfs/               the overlay mount point, or the copy
    DIR/.ocimg/bundle.json    what ocimg needs to undo it
    DIR/.ocimg/upper, work    the container's writable layer (overlay mode)

The writable layer outlives the mount: after a reboot `mount` (or `create` of the same image
into the same DIR) mounts the overlay again from what bundle.json records.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from dataclasses import dataclass

from ocimg import overlay
from ocimg.convert import Options, spec_for
from ocimg.digest import Digest
from ocimg.errors import BundleError, MountError, OcimgError
from ocimg.layout import atomic_write
from ocimg.procroot import processes_rooted_at
from ocimg.store import DEFAULT_ROOT, PRIVATE, Image, Store, chain_ids
from ocimg.unpack import unpack_layer
from ocimg.users import resolve

STATE_DIR = ".ocimg"
STATE_FILE = "bundle.json"
MODES = ("overlay", "copy")


@dataclass
class BundleInfo:
    dir: str
    mode: str
    image: Image
    reused: bool = False  # an existing bundle of this image, mounted again; its config.json kept


def default_mode() -> str:
    return "overlay" if overlay.supported() else "copy"


def _hostname(bundle_dir: str) -> str:
    name = re.sub(r"[^a-zA-Z0-9-]+", "-", os.path.basename(os.path.abspath(bundle_dir))).strip("-")
    return (name or "container")[:63]


def create(store: Store, image: Image, bundle_dir: str, opts: Options, mode: str | None = None,
           use_openat2: bool | None = None) -> BundleInfo:
    mode = mode or default_mode()
    if mode not in MODES:
        raise BundleError(f"unknown rootfs mode {mode!r} (choose {', '.join(MODES)})")
    bundle_dir = os.path.abspath(bundle_dir)
    if is_bundle(bundle_dir):
        return _reuse(store, image, bundle_dir)
    created_dir = False
    if os.path.exists(bundle_dir):
        if not os.path.isdir(bundle_dir) or os.listdir(bundle_dir):
            raise BundleError(f"{bundle_dir} exists and is not an empty directory")
    else:
        os.makedirs(bundle_dir, PRIVATE)
        created_dir = True
    # The rootfs holds the image's setuid binaries and device nodes: root's alone, like the store.
    os.chmod(bundle_dir, PRIVATE)
    rootfs = os.path.join(bundle_dir, "rootfs")
    state = os.path.join(bundle_dir, STATE_DIR)
    mounted = False
    # The unpacked layers (ChainIDs) an overlay rootfs stacks: gc keeps them while the bundle lives.
    layers = chain_ids(image.config.diff_ids) if mode == "overlay" else []
    try:
        os.mkdir(state, 0o700)
        os.mkdir(rootfs, 0o755)
        if mode == "overlay":
            store.unpacked_layers(image, use_openat2)
            os.mkdir(os.path.join(state, "empty"), 0o755)
            os.mkdir(os.path.join(state, "upper"), 0o755)
            os.mkdir(os.path.join(state, "work"), 0o700)
            _mount_overlay(store, layers, bundle_dir)
            mounted = True
        else:
            for desc, diff_id in zip(image.manifest.layers, image.config.diff_ids):
                unpack_layer(store.layout.blob_path(desc.digest), rootfs, whiteouts="delete",
                             diff_id=diff_id, use_openat2=use_openat2)
        user = resolve(rootfs, image.config.config.get("User", ""))
        spec = spec_for(image, user, opts, opts.hostname or _hostname(bundle_dir))
        for src, _, _ in opts.binds:
            if not os.path.exists(src):
                raise BundleError(f"bind mount source {src} does not exist")
        atomic_write(os.path.join(bundle_dir, "config.json"), json.dumps(spec, indent=2).encode() + b"\n")
        record = {"mode": mode, "store": store.root, "image": image.name, "manifest": str(image.digest),
                  "layers": [str(d) for d in layers]}
        atomic_write(os.path.join(state, STATE_FILE), json.dumps(record, indent=2).encode() + b"\n", 0o600)
        store.record_bundle(bundle_dir, image, layers, mode)
    except BaseException:
        if mounted:
            with contextlib.suppress(MountError):
                overlay.unmount(rootfs, lazy=True)
        if not overlay.is_mountpoint(rootfs):
            if created_dir:
                shutil.rmtree(bundle_dir, ignore_errors=True)
            else:
                for name in os.listdir(bundle_dir):
                    p = os.path.join(bundle_dir, name)
                    shutil.rmtree(p, ignore_errors=True) if os.path.isdir(p) else os.unlink(p)
        raise
    return BundleInfo(bundle_dir, mode, image)


def _reuse(store: Store, image: Image, bundle_dir: str) -> BundleInfo:
    """`create` into an existing bundle of the same image: mount it again if it is not (after a
    reboot), keeping its writable layer and config.json."""
    record = read_record(bundle_dir)
    if record.get("manifest") != str(image.digest):
        raise BundleError(f"{bundle_dir} is already a bundle of {record.get('image')} ({record.get('manifest')}); "
                          "remove it first (ocimg bundle --remove)")
    mount(bundle_dir, store)
    return BundleInfo(bundle_dir, record["mode"], image, reused=True)


def _mount_overlay(store: Store, layers: list[Digest], bundle_dir: str) -> None:
    """Mount DIR/rootfs: the store's unpacked `layers` (bottom first) under DIR/.ocimg/upper."""
    state = os.path.join(bundle_dir, STATE_DIR)
    lowers = [store.layer_dir(d) for d in reversed(layers)] or [os.path.join(state, "empty")]
    for d in lowers:
        if not os.path.isdir(d):
            raise BundleError(f"layer {os.path.basename(d)} of {bundle_dir} is not in the store {store.root} "
                              "any more: remove the bundle and make it again")
    overlay.mount(lowers, os.path.join(state, "upper"), os.path.join(state, "work"),
                  os.path.join(bundle_dir, "rootfs"))


def read_record(bundle_dir: str) -> dict:
    """DIR/.ocimg/bundle.json of a bundle made by ocimg."""
    state_file = os.path.join(bundle_dir, STATE_DIR, STATE_FILE)
    try:
        with open(state_file, encoding="utf-8") as f:
            record = json.load(f)
    except FileNotFoundError:
        raise BundleError(f"{bundle_dir} is not a bundle made by ocimg (no {STATE_DIR}/{STATE_FILE})") from None
    except (OSError, ValueError) as e:
        raise BundleError(f"cannot read {state_file}: {e}") from None
    if not isinstance(record, dict) or record.get("mode") not in MODES:
        raise BundleError(f"{state_file} is not a bundle record of ocimg")
    return record


def is_bundle(bundle_dir: str) -> bool:
    return os.path.isfile(os.path.join(bundle_dir, STATE_DIR, STATE_FILE))


def mount(bundle_dir: str, store: Store | None = None) -> bool:
    """Mount an overlay bundle's rootfs again (after a reboot) over its kept writable layer.

    Returns False when there was nothing to do (already mounted, or a copy-mode bundle).
    """
    bundle_dir = os.path.abspath(bundle_dir)
    record = read_record(bundle_dir)
    rootfs = os.path.join(bundle_dir, "rootfs")
    if record["mode"] != "overlay" or overlay.is_mountpoint(rootfs):
        return False
    os.makedirs(rootfs, 0o755, exist_ok=True)
    if os.listdir(rootfs):
        raise BundleError(f"{rootfs} is not mounted but not empty either: not mounting over it")
    st = store or Store(record.get("store") or DEFAULT_ROOT)
    try:
        layers = [Digest.parse(d) for d in record.get("layers", [])]
    except OcimgError:
        raise BundleError(f"{bundle_dir}/{STATE_DIR}/{STATE_FILE}: invalid layer list") from None
    _mount_overlay(st, layers, bundle_dir)
    return True


def remove(bundle_dir: str, store: Store | None = None, force: bool = False) -> None:
    """Undo `create`: unmount the overlay, forget the bundle, delete the directory.

    Refused while a container runs from the bundle (its writable layer would be deleted
    under it), unless `force`.
    """
    bundle_dir = os.path.abspath(bundle_dir)
    record = read_record(bundle_dir)
    rootfs = os.path.join(bundle_dir, "rootfs")
    if not force:
        pids = processes_rooted_at(rootfs)
        if pids:
            raise BundleError(f"a container is running from {bundle_dir} (pid {pids[0]}): stop it first, "
                              "or use --force")
    if overlay.is_mountpoint(rootfs):
        overlay.unmount(rootfs)
    if overlay.is_mountpoint(rootfs):
        # Deleting through a live mount would empty the container, or worse: refuse.
        raise BundleError(f"{rootfs} is still mounted; not removing {bundle_dir}")
    st = store or Store(record.get("store") or DEFAULT_ROOT)
    st.forget_bundle(bundle_dir)
    shutil.rmtree(bundle_dir)
