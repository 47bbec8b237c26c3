"""`ocimg login` / `logout`: credentials checked with the registry, kept in a containers auth file."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from ocimgtest_support import PASSWORD, USER
from test_ocimg_auth import certs_config


@pytest.fixture
def runtime_dir(ocimg, tmp) -> Path:
    """$XDG_RUNTIME_DIR of the ocimg runs: where login keeps credentials by default."""
    d = tmp / "run"
    d.mkdir()
    ocimg.env["XDG_RUNTIME_DIR"] = str(d)
    return d


def entry(user: str = USER, password: str = PASSWORD) -> dict:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def login(ocimg, registry, cfg: Path, *flags: str, password: str = PASSWORD, check: bool = True):
    return ocimg("--config", str(cfg), "login", "--username", USER, "--password-stdin", *flags, registry.host,
                 input=password + "\n", check=check)


def test_login_saves_the_credentials_0600_in_xdg_runtime_dir_and_pull_uses_them(ocimg, tls_basic_registry, tmp,
                                                                                runtime_dir):
    cfg = certs_config(tmp, tls_basic_registry)
    p = login(ocimg, tls_basic_registry, cfg)
    assert p.stdout == f"Login Succeeded ({tls_basic_registry.host})\n"
    path = runtime_dir / "containers" / "auth.json"
    assert json.loads(path.read_text()) == {"auths": {tls_basic_registry.host: entry()}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ocimg("--config", str(cfg), "pull", f"{tls_basic_registry.host}/test/busybox")


def test_login_with_a_wrong_password_fails_and_saves_nothing(ocimg, tls_basic_registry, tmp, runtime_dir):
    cfg = certs_config(tmp, tls_basic_registry)
    p = login(ocimg, tls_basic_registry, cfg, password="wrong", check=False)
    assert p.returncode == 1
    assert p.stderr == (f"ocimg: login to {tls_basic_registry.host} as {USER} failed: "
                        f"{tls_basic_registry.host}: authentication failed (HTTP 401)\n")
    assert not (runtime_dir / "containers").exists()


def test_login_keeps_the_other_entries_of_the_authfile(ocimg, tls_basic_registry, tmp, runtime_dir):
    cfg = certs_config(tmp, tls_basic_registry)
    f = tmp / "my-auth.json"
    f.write_text(json.dumps({"auths": {"other.example:5000": entry("x", "y")}, "credHelpers": {"a": "b"}}))
    login(ocimg, tls_basic_registry, cfg, "--authfile", str(f))
    assert json.loads(f.read_text()) == {"auths": {"other.example:5000": entry("x", "y"),
                                                   tls_basic_registry.host: entry()},
                                         "credHelpers": {"a": "b"}}
    assert not (runtime_dir / "containers").exists()


def test_login_writes_registry_auth_file_first(ocimg, tls_basic_registry, tmp, runtime_dir):
    cfg = certs_config(tmp, tls_basic_registry)
    ocimg.env["REGISTRY_AUTH_FILE"] = str(tmp / "env-auth.json")
    login(ocimg, tls_basic_registry, cfg)
    assert json.loads((tmp / "env-auth.json").read_text())["auths"] == {tls_basic_registry.host: entry()}


def test_login_gets_a_bearer_token_with_the_credentials(ocimg, token_registry, tmp, runtime_dir):
    before = len(token_registry.token.requests)
    login(ocimg, token_registry, tmp / "empty-config.toml", "--insecure")
    assert [r["user"] for r in token_registry.token.requests[before:]] == [USER]
    ocimg("pull", "--insecure", f"{token_registry.host}/test/busybox")


def test_login_refused_by_the_token_service_saves_nothing(ocimg, token_registry, tmp, runtime_dir):
    p = login(ocimg, token_registry, tmp / "empty-config.toml", "--insecure", password="nope", check=False)
    assert p.returncode == 1
    assert p.stderr == (f"ocimg: login to {token_registry.host} as {USER} failed: "
                        "the token service refused the credentials\n")
    assert not (runtime_dir / "containers").exists()


def test_logout_removes_the_entry_and_pull_is_refused_again(ocimg, tls_basic_registry, tmp, runtime_dir):
    cfg = certs_config(tmp, tls_basic_registry)
    login(ocimg, tls_basic_registry, cfg)
    p = ocimg("--config", str(cfg), "logout", tls_basic_registry.host)
    assert p.stdout == f"Removed login credentials for {tls_basic_registry.host}\n"
    assert json.loads((runtime_dir / "containers" / "auth.json").read_text()) == {"auths": {}}
    p = ocimg("--config", str(cfg), "pull", f"{tls_basic_registry.host}/test/busybox", check=False)
    assert p.stderr == "ocimg: the registry requires authentication and no credentials were found\n"


def test_logout_when_not_logged_in_is_an_error(ocimg, runtime_dir):
    p = ocimg("logout", "registry.example:5000", check=False)
    assert p.returncode == 1
    assert p.stderr == ("ocimg: not logged in to registry.example:5000 (no credentials in "
                        f"{runtime_dir}/containers/auth.json)\n")


def test_logout_all_removes_every_entry(ocimg, tmp):
    f = tmp / "auth.json"
    f.write_text(json.dumps({"auths": {"a.example": entry(), "https://b.example": entry()}}))
    ocimg("logout", "--all", "--authfile", str(f))
    assert json.loads(f.read_text()) == {"auths": {}}


def test_logout_removes_every_spelling_pull_would_read(ocimg, tmp):
    f = tmp / "auth.json"
    f.write_text(json.dumps({"auths": {"a.example": entry(), "https://a.example": entry(), "b.example": entry()}}))
    ocimg("logout", "--authfile", str(f), "https://a.example/")
    assert json.loads(f.read_text()) == {"auths": {"b.example": entry()}}


def test_login_without_a_terminal_needs_username_and_password_stdin(ocimg, runtime_dir):
    p = ocimg("login", "registry.example", check=False)
    assert p.returncode == 2 and p.stderr == "ocimg: login: give --username (there is no terminal to ask on)\n"
    p = ocimg("login", "-u", USER, "registry.example", check=False)
    assert p.returncode == 2 and "--password-stdin" in p.stderr


def test_login_to_an_invalid_registry_name_is_a_one_line_error(ocimg):
    p = ocimg("login", "-u", USER, "--password-stdin", "bad host!", input="pw\n", check=False)
    assert p.returncode == 1 and p.stderr == "ocimg: invalid registry 'bad host!': want host[:port]\n"
