"""ocimg's own settings: insecure registries, where per-registry CA dirs live, auth files.

A TOML file (default /etc/ocimg/config.toml, or $OCIMG_CONFIG, or --config):

    insecure_registries = ["127.0.0.1:5000"]
    certs_dirs = ["/etc/containers/certs.d", "/etc/docker/certs.d"]
    auth_file = "/root/.config/containers/auth.json"
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field

from ocimg.errors import OcimgError

DEFAULT_CONFIG = "/etc/ocimg/config.toml"
DEFAULT_CERTS_DIRS = ("/etc/containers/certs.d", "/etc/docker/certs.d")


@dataclass
class Config:
    insecure_registries: list[str] = field(default_factory=list)
    certs_dirs: list[str] = field(default_factory=lambda: list(DEFAULT_CERTS_DIRS))
    auth_file: str | None = None

    def is_insecure(self, registry: str) -> bool:
        return registry in self.insecure_registries


def load(path: str | None = None) -> Config:
    explicit = path or os.environ.get("OCIMG_CONFIG")
    p = explicit or DEFAULT_CONFIG
    try:
        with open(p, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        if explicit:
            raise OcimgError(f"config file {p} does not exist") from None
        return Config()
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise OcimgError(f"cannot read config file {p}: {e}") from None
    cfg = Config()
    insecure = data.get("insecure_registries", [])
    certs = data.get("certs_dirs", cfg.certs_dirs)
    if not isinstance(insecure, list) or not all(isinstance(x, str) for x in insecure):
        raise OcimgError(f"{p}: insecure_registries must be a list of strings")
    if not isinstance(certs, list) or not all(isinstance(x, str) for x in certs):
        raise OcimgError(f"{p}: certs_dirs must be a list of strings")
    cfg.insecure_registries = insecure
    cfg.certs_dirs = certs
    auth = data.get("auth_file")
    if auth is not None and not isinstance(auth, str):
        raise OcimgError(f"{p}: auth_file must be a string")
    cfg.auth_file = auth
    return cfg
