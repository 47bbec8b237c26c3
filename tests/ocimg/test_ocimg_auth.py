"""TLS with per-registry CAs, basic auth (htpasswd, bcrypt) and bearer tokens, against the real registry."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from ocimgtest_support import PASSWORD, USER


def auth_json(path: Path, host: str, user: str = USER, password: str = PASSWORD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": token}}}))
    return path


def certs_config(tmp: Path, registry) -> Path:
    """An ocimg config whose certs dir holds `<host:port>/ca.crt`, like /etc/containers/certs.d."""
    certs_d = tmp / "certs.d"
    (certs_d / registry.host).mkdir(parents=True)
    (certs_d / registry.host / "ca.crt").write_bytes(registry.tls.ca_pem)
    cfg = tmp / "ocimg.toml"
    cfg.write_text(f'certs_dirs = ["{certs_d}"]\n')
    return cfg


def test_tls_with_the_ca_in_certs_d_and_basic_auth_from_auth_json(ocimg, tls_basic_registry, images, tmp):
    cfg = certs_config(tmp, tls_basic_registry)
    creds = auth_json(tmp / "auth.json", tls_basic_registry.host)
    p = ocimg("--config", str(cfg), "pull", "--authfile", str(creds), f"{tls_basic_registry.host}/test/busybox")
    assert p.returncode == 0


def test_credentials_are_found_in_docker_config_json_by_default(ocimg, tls_basic_registry, tmp):
    cfg = certs_config(tmp, tls_basic_registry)
    auth_json(tmp / "home" / ".docker" / "config.json", f"https://{tls_basic_registry.host}")
    ocimg("--config", str(cfg), "pull", f"{tls_basic_registry.host}/test/busybox")


def test_an_unknown_ca_is_refused(ocimg, tls_basic_registry, tmp):
    creds = auth_json(tmp / "auth.json", tls_basic_registry.host)
    p = ocimg("pull", "--authfile", str(creds), f"{tls_basic_registry.host}/test/busybox", check=False)
    assert p.returncode == 1 and "certificate verify failed" in p.stderr


def test_cert_dir_option_trusts_that_directorys_ca(ocimg, tls_basic_registry, tmp):
    d = tmp / "mycerts"
    d.mkdir()
    (d / "ca.crt").write_bytes(tls_basic_registry.tls.ca_pem)
    creds = auth_json(tmp / "auth.json", tls_basic_registry.host)
    ocimg("pull", "--cert-dir", str(d), "--authfile", str(creds), f"{tls_basic_registry.host}/test/busybox")


def test_basic_auth_without_credentials_is_an_authentication_error(ocimg, tls_basic_registry, tmp):
    cfg = certs_config(tmp, tls_basic_registry)
    p = ocimg("--config", str(cfg), "pull", f"{tls_basic_registry.host}/test/busybox", check=False)
    assert p.returncode == 1
    assert p.stderr == "ocimg: the registry requires authentication and no credentials were found\n"


def test_basic_auth_with_a_wrong_password_fails(ocimg, tls_basic_registry, tmp):
    cfg = certs_config(tmp, tls_basic_registry)
    creds = auth_json(tmp / "auth.json", tls_basic_registry.host, password="wrong")
    p = ocimg("--config", str(cfg), "pull", "--authfile", str(creds), f"{tls_basic_registry.host}/test/busybox",
              check=False)
    assert p.returncode == 1 and "authentication failed" in p.stderr


def test_insecure_skips_verification_of_an_https_registry(ocimg, tls_basic_registry, tmp):
    creds = auth_json(tmp / "auth.json", tls_basic_registry.host)
    ocimg("pull", "--insecure", "--authfile", str(creds), f"{tls_basic_registry.host}/test/busybox")


def test_bearer_token_flow_with_credentials(ocimg, token_registry, images, tmp):
    creds = auth_json(tmp / "auth.json", token_registry.host)
    before = len(token_registry.token.requests)
    p = ocimg("pull", "--insecure", "--authfile", str(creds), f"{token_registry.host}/test/busybox")
    assert p.returncode == 0
    asked = token_registry.token.requests[before:]
    assert asked and all(r["user"] == USER for r in asked)
    assert "repository:test/busybox:pull" in asked[0]["scope"]


def test_bearer_token_flow_without_credentials_is_denied(ocimg, token_registry):
    p = ocimg("pull", "--insecure", f"{token_registry.host}/test/busybox", check=False)
    assert p.returncode == 1 and "authentication failed" in p.stderr


def test_bearer_token_flow_with_a_wrong_password_is_refused_by_the_token_service(ocimg, token_registry, tmp):
    creds = auth_json(tmp / "auth.json", token_registry.host, password="nope")
    p = ocimg("pull", "--insecure", "--authfile", str(creds), f"{token_registry.host}/test/busybox", check=False)
    assert p.returncode == 1
    assert p.stderr == "ocimg: the token service refused the credentials\n"
