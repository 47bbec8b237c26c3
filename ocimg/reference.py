"""Image references: `[registry[:port]/]repository[:tag][@algorithm:hex]`, with Docker Hub defaults.

The grammar is the one of the distribution project (which Docker, containerd and
containers/image share), so a reference that works with other tools works here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ocimg.digest import Digest
from ocimg.errors import DigestError, InvalidReference

DOCKER_HUB = "docker.io"
# Docker Hub's API is not served on the name people write in references.
DOCKER_HUB_API = "registry-1.docker.io"
DEFAULT_TAG = "latest"

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(
    rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$"
)
_PATH_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_MAX_NAME = 255


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def selector(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag."""
        return str(self.digest) if self.digest else (self.tag or DEFAULT_TAG)

    def with_digest(self, digest: Digest) -> "Reference":
        return Reference(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s

    @property
    def familiar(self) -> str:
        """The short form people type, e.g. `busybox:latest` for docker.io/library/busybox."""
        s = str(self)
        if self.registry == DOCKER_HUB:
            s = s[len(DOCKER_HUB) + 1 :]
            if s.startswith("library/") and "/" not in self.repository[len("library/") :]:
                s = s[len("library/") :]
        return s


def parse(text: str, default_tag: bool = True) -> Reference:
    """Parse and normalise a reference; a tag of `latest` is implied when there is no digest."""
    if not text or text != text.strip():
        raise InvalidReference(f"invalid reference {text!r}: empty or surrounded by spaces")
    rest = text
    digest: Digest | None = None
    if "@" in rest:
        rest, _, dtext = rest.partition("@")
        try:
            digest = Digest.parse(dtext)
        except DigestError as e:
            raise InvalidReference(f"invalid reference {text!r}: {e}") from None
    tag: str | None = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise InvalidReference(f"invalid reference {text!r}: bad tag {tag!r}")
    if not rest:
        raise InvalidReference(f"invalid reference {text!r}: no repository")

    first, sep, remainder = rest.partition("/")
    # As in distribution/reference: the first component is a registry only if it looks
    # like a host (dot, port, localhost, or capitals, which a repository cannot have).
    if sep and (any(c in first for c in ".:") or first == "localhost" or first.lower() != first):
        registry, path = first, remainder
        if not _DOMAIN_RE.match(registry):
            raise InvalidReference(f"invalid reference {text!r}: bad registry {registry!r}")
    else:
        registry, path = DOCKER_HUB, rest
    if registry == "index.docker.io":
        registry = DOCKER_HUB
    components = path.split("/")
    for comp in components:
        if not _PATH_COMPONENT_RE.match(comp):
            if comp.lower() != comp:
                raise InvalidReference(f"invalid reference {text!r}: repository names must be lowercase")
            raise InvalidReference(f"invalid reference {text!r}: bad repository component {comp!r}")
    if registry == DOCKER_HUB and len(components) == 1:
        path = f"library/{path}"
    if len(f"{registry}/{path}") > _MAX_NAME:
        raise InvalidReference(f"invalid reference {text!r}: name longer than {_MAX_NAME} characters")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(registry, path, tag, digest)


def parse_registry(text: str) -> str:
    """A registry host as `login` and auth.json name it: `host[:port]`, Docker Hub as docker.io."""
    host = text.strip()
    for prefix in ("https://", "http://"):
        host = host.removeprefix(prefix)
    host = host.rstrip("/")
    if host.endswith("/v1") or host.endswith("/v2"):
        host = host[:-3]
    if not host or not _DOMAIN_RE.match(host):
        raise InvalidReference(f"invalid registry {text!r}: want host[:port]")
    return DOCKER_HUB if host in ("index.docker.io", DOCKER_HUB_API) else host
