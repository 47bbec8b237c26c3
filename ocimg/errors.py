"""Typed errors. Only ocimg.cli turns them into `ocimg: <message>` and an exit code."""

from __future__ import annotations


class OcimgError(Exception):
    """An error whose message is fit for a user."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(OcimgError):
    exit_code = 2


class InvalidReference(OcimgError):
    """A string that is not `[registry[:port]/]repository[:tag][@digest]`."""


class DigestError(OcimgError):
    """Content does not match the digest or size it was announced with."""


class RegistryError(OcimgError):
    """The registry answered with an error, or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthError(RegistryError):
    """Authentication with the registry (or its token service) failed."""


class NotFound(OcimgError):
    """An image, manifest or blob that does not exist."""


class ManifestError(OcimgError):
    """A manifest, index or image config that cannot be used."""


class PlatformError(ManifestError):
    """No manifest in an index matches the wanted platform."""


class UnsafeEntry(OcimgError):
    """A layer entry that would write outside the root it is unpacked into."""


class LayerError(OcimgError):
    """A layer that cannot be unpacked."""


class LayoutError(OcimgError):
    """A directory or archive that is not a valid OCI image layout."""


class BundleError(OcimgError):
    """A runtime bundle cannot be created or removed."""


class MountError(BundleError):
    """mount(2)/umount(2) failed."""
