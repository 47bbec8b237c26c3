"""Manifests, indexes (and their Docker schema2 equivalents), image configs, platforms."""

from __future__ import annotations

import json
import platform as _platform
from dataclasses import dataclass, field
from typing import Any

from ocimg import mediatypes as mt
from ocimg.digest import Digest
from ocimg.errors import DigestError, ManifestError, PlatformError

MAX_MANIFEST_SIZE = 4 << 20  # what registries accept; bigger is an attack, not an image
MAX_CONFIG_SIZE = 8 << 20


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> "Platform":
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ManifestError(f"invalid platform {text!r}: want os/arch[/variant]")
        return cls(parts[0], normalize_arch(parts[1]), parts[2] if len(parts) == 3 else None)

    @classmethod
    def host(cls) -> "Platform":
        machine = _platform.machine()
        arch = normalize_arch(machine)
        variant = {"armv7l": "v7", "armv6l": "v6", "aarch64": "v8", "arm64": "v8"}.get(machine)
        return cls("linux", arch, variant)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "Platform":
        return cls(obj.get("os", ""), normalize_arch(obj.get("architecture", "")), obj.get("variant") or None)

    def matches(self, other: "Platform") -> bool:
        """Does an index entry `other` satisfy this wanted platform?"""
        if self.os != other.os or self.architecture != other.architecture:
            return False
        if self.variant and other.variant:
            want, have = self.variant, other.variant
            if self.architecture == "arm64":  # v8 is arm64's only common variant; treat absent as v8
                return want == have
            return want == have
        # A wanted variant with an entry that has none: accept (arm64 entries rarely say v8).
        return True

    def to_json(self) -> dict[str, str]:
        d = {"os": self.os, "architecture": self.architecture}
        if self.variant:
            d["variant"] = self.variant
        return d

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


def normalize_arch(arch: str) -> str:
    return {
        "x86_64": "amd64",
        "x86-64": "amd64",
        "aarch64": "arm64",
        "armv7l": "arm",
        "armv6l": "arm",
        "armhf": "arm",
        "i386": "386",
        "i686": "386",
    }.get(arch, arch)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, obj: Any, what: str = "descriptor") -> "Descriptor":
        if not isinstance(obj, dict):
            raise ManifestError(f"{what} is not an object")
        try:
            digest = Digest.parse(obj["digest"])
            size = obj["size"]
            media_type = obj.get("mediaType", "")
        except (KeyError, TypeError) as e:
            raise ManifestError(f"{what} lacks {e}") from None
        except DigestError as e:
            raise ManifestError(f"{what}: {e}") from None
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ManifestError(f"{what} has an invalid size {size!r}")
        plat = Platform.from_json(obj["platform"]) if isinstance(obj.get("platform"), dict) else None
        return cls(media_type, digest, size, plat, dict(obj.get("annotations") or {}), tuple(obj.get("urls") or ()))

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.platform:
            d["platform"] = self.platform.to_json()
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        return d


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: dict[str, str]


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: dict[str, str]

    def select(self, want: Platform) -> Descriptor:
        candidates = [
            d for d in self.manifests if mt.is_manifest(d.media_type) or d.media_type == ""
        ]
        for d in candidates:
            if d.platform and want.matches(d.platform):
                return d
        available = ", ".join(str(d.platform) for d in candidates if d.platform) or "none"
        raise PlatformError(f"no image for platform {want} in the index (available: {available})")


def load_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ManifestError(f"{what} is not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ManifestError(f"{what} is not a JSON object")
    return obj


def media_type_of(data: bytes, header: str | None = None) -> str:
    """The media type of a manifest document: its own mediaType, else the HTTP header, else by shape."""
    obj = load_json(data, "manifest")
    declared = obj.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if header:
        base = header.split(";")[0].strip()
        if base and base not in ("application/json", "text/plain", "application/octet-stream"):
            return base
    if "manifests" in obj:
        return mt.OCI_INDEX
    if "layers" in obj or "config" in obj:
        return mt.OCI_MANIFEST
    if obj.get("schemaVersion") == 1:
        return mt.DOCKER_SCHEMA1[0]
    raise ManifestError("cannot tell what kind of manifest this is")


def parse_manifest(data: bytes, media_type: str) -> Manifest:
    obj = load_json(data, "manifest")
    if obj.get("schemaVersion") != 2:
        raise ManifestError(f"unsupported manifest schemaVersion {obj.get('schemaVersion')!r}")
    config = Descriptor.from_json(obj.get("config"), "manifest config")
    raw_layers = obj.get("layers")
    if not isinstance(raw_layers, list):
        raise ManifestError("manifest has no layers list")
    layers = tuple(Descriptor.from_json(layer, f"layer {i}") for i, layer in enumerate(raw_layers))
    for layer in layers:
        if not mt.is_layer(layer.media_type):
            raise ManifestError(f"unsupported layer media type {layer.media_type!r}")
    return Manifest(media_type, config, layers, dict(obj.get("annotations") or {}))


def parse_index(data: bytes, media_type: str) -> Index:
    obj = load_json(data, "index")
    if obj.get("schemaVersion") != 2:
        raise ManifestError(f"unsupported index schemaVersion {obj.get('schemaVersion')!r}")
    raw = obj.get("manifests")
    if not isinstance(raw, list):
        raise ManifestError("index has no manifests list")
    return Index(media_type, tuple(Descriptor.from_json(m, f"index entry {i}") for i, m in enumerate(raw)),
                 dict(obj.get("annotations") or {}))


def check_supported(media_type: str) -> None:
    if media_type in mt.DOCKER_SCHEMA1:
        raise ManifestError("Docker schema 1 manifests are not supported (deprecated; re-push the image)")
    if not (mt.is_manifest(media_type) or mt.is_index(media_type)):
        raise ManifestError(f"unsupported manifest media type {media_type!r}")


@dataclass(frozen=True)
class ImageConfig:
    raw: dict[str, Any]

    @classmethod
    def parse(cls, data: bytes) -> "ImageConfig":
        obj = load_json(data, "image config")
        rootfs = obj.get("rootfs")
        if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
            raise ManifestError("image config has no rootfs.diff_ids")
        return cls(obj)

    @property
    def config(self) -> dict[str, Any]:
        return self.raw.get("config") or {}

    @property
    def diff_ids(self) -> list[Digest]:
        try:
            return [Digest.parse(d) for d in self.raw["rootfs"]["diff_ids"]]
        except DigestError as e:
            raise ManifestError(f"image config: {e}") from None

    @property
    def platform(self) -> Platform:
        return Platform(self.raw.get("os", ""), self.raw.get("architecture", ""), self.raw.get("variant"))
