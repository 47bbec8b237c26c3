"""TLS settings per registry: system CAs plus the per-registry certs.d directories.

Same layout as containers/image and docker: `<certs dir>/<host[:port]>/` holding `*.crt`
CA certificates and `*.cert` + `*.key` client certificate pairs.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterable

from ocimg.errors import OcimgError


def context_for(registry: str, certs_dirs: Iterable[str], verify: bool = True,
                cert_dir: str | None = None) -> ssl.SSLContext:
    """`cert_dir` (like skopeo's --cert-dir) holds this registry's files directly."""
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    dirs = [os.path.join(base, registry) for base in certs_dirs]
    if cert_dir:
        dirs.insert(0, cert_dir)
    for d in dirs:
        try:
            names = sorted(os.listdir(d))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as e:
            raise OcimgError(f"cannot read certificate directory {d}: {e}") from None
        for name in names:
            path = os.path.join(d, name)
            try:
                if name.endswith(".crt"):
                    ctx.load_verify_locations(cafile=path)
                elif name.endswith(".cert"):
                    key = path[: -len(".cert")] + ".key"
                    if not os.path.exists(key):
                        raise OcimgError(f"client certificate {path} has no matching key {key}")
                    ctx.load_cert_chain(path, key)
            except (ssl.SSLError, OSError) as e:
                raise OcimgError(f"cannot load {path}: {e}") from None
    return ctx
