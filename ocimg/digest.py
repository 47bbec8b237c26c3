"""Content digests (`algorithm:hex`) and streaming verification."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ocimg.errors import DigestError

# Lengths from the image-spec: only algorithms we can verify are accepted.
_ALGORITHMS = {"sha256": 64, "sha512": 128}
_DIGEST_RE = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")


@dataclass(frozen=True, order=True)
class Digest:
    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> "Digest":
        m = _DIGEST_RE.match(text)
        if not m:
            raise DigestError(f"invalid digest {text!r}")
        algorithm, hexpart = m.groups()
        want = _ALGORITHMS.get(algorithm)
        if want is None:
            raise DigestError(f"unsupported digest algorithm {algorithm!r} in {text!r}")
        if len(hexpart) != want or not re.fullmatch(r"[a-f0-9]+", hexpart):
            raise DigestError(f"invalid {algorithm} digest {text!r}")
        return cls(algorithm, hexpart)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> "Digest":
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self) -> "hashlib._Hash":
        return hashlib.new(self.algorithm)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @property
    def short(self) -> str:
        return self.hex[:12]


def verify_bytes(data: bytes, digest: Digest | str, size: int | None = None, what: str = "content") -> None:
    """Raise DigestError unless `data` has exactly this digest (and size, when given)."""
    d = Digest.parse(digest) if isinstance(digest, str) else digest
    if size is not None and len(data) != size:
        raise DigestError(f"{what} {d}: size {len(data)} does not match the expected {size}")
    got = hashlib.new(d.algorithm, data).hexdigest()
    if got != d.hex:
        raise DigestError(f"{what}: digest {d.algorithm}:{got} does not match the expected {d}")


class VerifyingReader:
    """Wraps a readable stream and hashes what passes through; `verify()` at the end."""

    def __init__(self, raw, digest: Digest, size: int | None = None, what: str = "blob") -> None:
        self._raw = raw
        self.digest = digest
        self.size = size
        self.what = what
        self.hasher = digest.hasher()
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if data:
            self.hasher.update(data)
            self.count += len(data)
        return data

    def readinto(self, buf) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    def verify(self) -> None:
        if self.size is not None and self.count != self.size:
            raise DigestError(f"{self.what} {self.digest}: size {self.count} does not match the expected {self.size}")
        got = self.hasher.hexdigest()
        if got != self.digest.hex:
            raise DigestError(
                f"{self.what}: digest {self.digest.algorithm}:{got} does not match the expected {self.digest}"
            )
