"""Builds the test images: real layer tars (busybox-static based) in an OCI layout."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import time
from dataclasses import dataclass, field

import zstandard

BUSYBOX = "/bin/busybox"
MTIME = 1_700_000_000
APPLETS = ["sh", "cat", "ls", "echo", "id", "rm", "stat", "test", "true", "mkdir", "touch", "readlink", "find", "sleep"]

PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app user:/home/app:/bin/sh\n"
GROUP = "root:x:0:\napp:x:1000:\nextra:x:2000:app\n"


@dataclass
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    def descriptor(self, **extra) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data), **extra}


@dataclass
class Image:
    """An image manifest (or index) and every blob it needs."""

    manifest: Blob
    blobs: list[Blob] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return self.manifest.digest


class TarBuilder:
    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tf = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def _info(self, name: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0, **kw) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.mode = mode
        ti.uid, ti.gid = uid, gid
        ti.mtime = kw.pop("mtime", MTIME)
        for k, v in kw.items():
            setattr(ti, k, v)
        return ti

    def dir(self, name: str, mode: int = 0o755, **kw) -> "TarBuilder":
        self.tf.addfile(self._info(name, tarfile.DIRTYPE, mode, **kw))
        return self

    def file(self, name: str, data: bytes, mode: int = 0o644, xattrs: dict[str, str] | None = None, **kw) -> "TarBuilder":
        ti = self._info(name, tarfile.REGTYPE, mode, size=len(data), **kw)
        if xattrs:
            ti.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
        self.tf.addfile(ti, io.BytesIO(data))
        return self

    def symlink(self, name: str, target: str, **kw) -> "TarBuilder":
        self.tf.addfile(self._info(name, tarfile.SYMTYPE, 0o777, linkname=target, **kw))
        return self

    def hardlink(self, name: str, target: str) -> "TarBuilder":
        self.tf.addfile(self._info(name, tarfile.LNKTYPE, 0o644, linkname=target))
        return self

    def chardev(self, name: str, major: int, minor: int, mode: int = 0o666) -> "TarBuilder":
        self.tf.addfile(self._info(name, tarfile.CHRTYPE, mode, devmajor=major, devminor=minor))
        return self

    def fifo(self, name: str, mode: int = 0o644) -> "TarBuilder":
        self.tf.addfile(self._info(name, tarfile.FIFOTYPE, mode))
        return self

    def whiteout(self, path: str) -> "TarBuilder":
        parent, _, base = path.rpartition("/")
        return self.file(f"{parent}/.wh.{base}" if parent else f".wh.{base}", b"", 0o644)

    def opaque(self, dirpath: str) -> "TarBuilder":
        return self.file(f"{dirpath}/.wh..wh..opq", b"", 0o644)

    def bytes(self) -> bytes:
        self.tf.close()
        return self.buf.getvalue()


def layer(tar: bytes, compression: str) -> tuple[Blob, str]:
    """(layer blob, diff_id)."""
    diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
    if compression == "gzip":
        return Blob("application/vnd.oci.image.layer.v1.tar+gzip", gzip.compress(tar, 6, mtime=0)), diff_id
    if compression == "zstd":
        return Blob("application/vnd.oci.image.layer.v1.tar+zstd", zstandard.ZstdCompressor().compress(tar)), diff_id
    return Blob("application/vnd.oci.image.layer.v1.tar", tar), diff_id


def base_tar() -> bytes:
    with open(BUSYBOX, "rb") as f:
        busybox = f.read()
    t = TarBuilder()
    t.dir("bin").file("bin/busybox", busybox, 0o755)
    for a in APPLETS:
        t.symlink(f"bin/{a}", "busybox")
    t.dir("etc").file("etc/passwd", PASSWD.encode()).file("etc/group", GROUP.encode())
    t.file("etc/motd", b"hello from layer 1\n")
    t.dir("root", 0o700).dir("home").dir("home/app", 0o750, uid=1000, gid=1000)
    t.dir("tmp", 0o1777).dir("proc", 0o555).dir("sys", 0o555).dir("dev")
    t.dir("data").file("data/a", b"a from layer 1\n").file("data/b", b"b from layer 1\n")
    t.dir("opt").dir("opt/dir").file("opt/dir/x", b"x\n").file("opt/dir/y", b"y\n")
    return t.bytes()


def second_tar() -> bytes:
    t = TarBuilder()
    t.dir("etc").file("etc/motd", b"hello from layer 2\n")
    t.dir("data").file("data/c", b"c\n", 0o640, uid=1000, gid=2000, xattrs={"user.origin": "layer2"})
    t.hardlink("data/c-link", "data/c")
    t.file("data/setuid", b"#!/bin/sh\n", 0o4755)
    t.dir("srv").chardev("srv/null", 1, 3).fifo("srv/fifo")
    t.symlink("srv/abs-link", "/etc/motd")
    return t.bytes()


def third_tar() -> bytes:
    t = TarBuilder()
    t.dir("data").whiteout("data/a")
    t.dir("opt").dir("opt/dir").opaque("opt/dir").file("opt/dir/z", b"z\n")
    t.dir("etc").file("etc/motd", b"hello from layer 3\n")
    return t.bytes()


def image_config(diff_ids: list[str], arch: str = "amd64", **config) -> Blob:
    cfg = {
        "created": "2024-01-01T00:00:00Z",
        "author": "ocimg tests",
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": ["PATH=/bin", "FOO=bar"],
            "Cmd": ["/bin/sh", "-c", "cat /etc/motd"],
            "WorkingDir": "/data",
            "Labels": {"org.example.test": "yes"},
            "StopSignal": "SIGTERM",
            **config,
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "ocimg tests"} for _ in diff_ids],
    }
    return Blob("application/vnd.oci.image.config.v1+json", json.dumps(cfg, sort_keys=True).encode())


def manifest(config: Blob, layers: list[Blob], media_type: str = "application/vnd.oci.image.manifest.v1+json") -> Blob:
    doc = {"schemaVersion": 2, "mediaType": media_type, "config": config.descriptor(),
           "layers": [b.descriptor() for b in layers]}
    return Blob(media_type, json.dumps(doc).encode())


def image(layers: list[tuple[Blob, str]], arch: str = "amd64", **config) -> Image:
    cfg = image_config([d for _, d in layers], arch, **config)
    blobs = [b for b, _ in layers]
    return Image(manifest(cfg, blobs), [cfg, *blobs])


def index(entries: list[tuple[Image, dict]]) -> Image:
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
           "manifests": [img.manifest.descriptor(platform=plat) for img, plat in entries]}
    blob = Blob("application/vnd.oci.image.index.v1+json", json.dumps(doc).encode())
    blobs: list[Blob] = []
    for img, _ in entries:
        blobs += [img.manifest, *img.blobs]
    return Image(blob, blobs)


def write_layout(root: str, images: dict[str, Image]) -> str:
    """An OCI image layout at `root` (for skopeo and for `ocimg import`)."""
    os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    entries = []
    for name, img in images.items():
        for b in [img.manifest, *img.blobs]:
            p = os.path.join(root, "blobs", "sha256", b.digest.split(":")[1])
            if not os.path.exists(p):
                with open(p, "wb") as f:
                    f.write(b.data)
        entries.append(img.manifest.descriptor(annotations={"org.opencontainers.image.ref.name": name}))
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": entries}, f)
    return root


def random_layer(size: int, seed: int) -> tuple[Blob, str]:
    """A layer too big to arrive in one read, incompressible so its size is predictable."""
    data = hashlib.shake_256(f"ocimg-{seed}-{time.time_ns()}".encode()).digest(size)
    return layer(TarBuilder().dir("blob").file("blob/random", data).bytes(), "gzip")
