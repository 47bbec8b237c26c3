"""`login` and `logout`: registry credentials checked against the registry, kept in an auth file
of the containers format (`{"auths": {"host:port": {"auth": base64(user:password)}}}`)."""

from __future__ import annotations

from ocimg.config import Config
from ocimg.errors import AuthError
from ocimg.reference import Reference
from ocimg.registry.auth import Credentials, auth_file_for_writing, remove_credentials, store_credentials
from ocimg.registry.client import RegistryClient


def login(registry: str, creds: Credentials, cfg: Config, auth_file: str | None = None, insecure: bool = False,
          cert_dir: str | None = None) -> str:
    """Check `creds` with `registry` (the /v2/ challenge flow), then save them. Returns the file."""
    client = RegistryClient(registry, api_host=Reference(registry, "").api_host,
                            insecure=insecure or cfg.is_insecure(registry), certs_dirs=cfg.certs_dirs,
                            cert_dir=cert_dir, credentials=creds)
    try:
        client.check_access()
    except AuthError as e:
        raise AuthError(f"login to {registry} as {creds.username} failed: {e}", e.status) from None
    path = auth_file_for_writing(auth_file or cfg.auth_file)
    store_credentials(path, registry, creds)
    return path


def logout(registry: str | None, cfg: Config, auth_file: str | None = None) -> tuple[str, bool]:
    """Forget `registry`'s credentials (all with None). Returns (file, whether any were there)."""
    path = auth_file_for_writing(auth_file or cfg.auth_file)
    return path, remove_credentials(path, registry)
