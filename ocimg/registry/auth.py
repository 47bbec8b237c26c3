"""Registry credentials (containers auth.json / docker config.json) and the 401 challenge flow.

Basic and bearer-token auth as the distribution spec's token flow describes: a request
answered 401 carries `WWW-Authenticate`; for Bearer we ask the named realm for a token
for the scope, then retry once with it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Callable

from ocimg.errors import AuthError, OcimgError

_PARAM_RE = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "basic" or "bearer"
    params: dict[str, str]


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a WWW-Authenticate value (possibly several challenges, RFC 7235)."""
    out: list[Challenge] = []
    # Split at scheme tokens: a word followed by a space and then a key=value pair.
    for m in re.finditer(r'([A-Za-z][A-Za-z0-9_-]*)\s+((?:[A-Za-z0-9_-]+\s*=\s*(?:"(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?\s*)*)', header):
        params = {}
        for pm in _PARAM_RE.finditer(m.group(2)):
            v = pm.group(2)
            if v.startswith('"'):
                v = re.sub(r"\\(.)", r"\1", v[1:-1])
            params[pm.group(1).lower()] = v
        out.append(Challenge(m.group(1).lower(), params))
    if not out and header.strip():
        out.append(Challenge(header.strip().split()[0].lower(), {}))
    return out


def default_auth_files() -> list[str]:
    """Where podman/skopeo/buildah and docker keep credentials, in their order of precedence."""
    files = []
    if os.environ.get("REGISTRY_AUTH_FILE"):
        files.append(os.environ["REGISTRY_AUTH_FILE"])
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        files.append(os.path.join(xdg, "containers", "auth.json"))
    home = os.path.expanduser("~")
    files.append(os.path.join(home, ".config", "containers", "auth.json"))
    docker_cfg = os.environ.get("DOCKER_CONFIG")
    files.append(os.path.join(docker_cfg or os.path.join(home, ".docker"), "config.json"))
    return files


def _registry_keys(registry: str, repository: str | None) -> list[str]:
    """auth.json keys that may hold this registry's entry, most specific first."""
    keys = []
    if repository:
        parts = repository.split("/")
        for i in range(len(parts), 0, -1):  # containers' namespace-scoped entries
            keys.append(f"{registry}/{'/'.join(parts[:i])}")
    keys += [registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v1/", f"https://{registry}/v2/"]
    if registry == "docker.io":
        keys += ["index.docker.io", "https://index.docker.io/v1/", "registry-1.docker.io"]
    return keys


def load_credentials(registry: str, repository: str | None, auth_file: str | None = None) -> Credentials | None:
    files = [auth_file] if auth_file else default_auth_files()
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except FileNotFoundError:
            if auth_file:
                raise OcimgError(f"auth file {path} does not exist") from None
            continue
        except (OSError, ValueError) as e:
            raise OcimgError(f"cannot read auth file {path}: {e}") from None
        auths = doc.get("auths") if isinstance(doc, dict) else None
        if not isinstance(auths, dict):
            continue
        for key in _registry_keys(registry, repository):
            entry = auths.get(key)
            if isinstance(entry, dict):
                return _decode_entry(entry, path, key)
    return None


def _decode_entry(entry: dict, path: str, key: str) -> Credentials | None:
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise OcimgError(f"{path}: entry {key!r} has an invalid auth value") from None
        return Credentials(user, password)
    if entry.get("username") is not None:
        return Credentials(entry["username"], entry.get("password", ""))
    return None


def auth_file_for_writing(auth_file: str | None = None) -> str:
    """Where `login` keeps credentials: the file given, else the first of the containers' files
    pull reads ($REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
    ~/.config/containers/auth.json), never docker's config.json."""
    return auth_file or default_auth_files()[0]


def _read_auth_doc(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return {"auths": {}}
    except (OSError, ValueError) as e:
        raise OcimgError(f"cannot read auth file {path}: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.setdefault("auths", {}), dict):
        raise OcimgError(f"auth file {path} is not a containers auth file (no \"auths\" object)")
    return doc


def _write_auth_doc(path: str, doc: dict) -> None:
    from ocimg.layout import atomic_write  # noqa: PLC0415 -- only login and logout write

    os.makedirs(os.path.dirname(os.path.abspath(path)), 0o700, exist_ok=True)
    # Written whole and renamed: a reader never sees half a file; 0600, it holds passwords.
    atomic_write(path, json.dumps(doc, indent=1).encode() + b"\n", 0o600)


def store_credentials(path: str, registry: str, creds: Credentials) -> None:
    """Save `creds` as `registry`'s entry of auth file `path`, keeping every other entry."""
    doc = _read_auth_doc(path)
    raw = f"{creds.username}:{creds.password}".encode()
    doc["auths"][registry] = {"auth": base64.b64encode(raw).decode()}
    _write_auth_doc(path, doc)


def remove_credentials(path: str, registry: str | None) -> bool:
    """Drop `registry`'s entries (every spelling pull would read), or all with None.
    False when there was nothing to drop."""
    doc = _read_auth_doc(path)
    auths = doc["auths"]
    keys = list(auths) if registry is None else [k for k in _registry_keys(registry, None) if k in auths]
    if not keys:
        return False
    for k in keys:
        del auths[k]
    _write_auth_doc(path, doc)
    return True


# fetch(url, headers) -> (status, body bytes); kept abstract so the token request goes
# through the same TLS settings and connection pool as the registry requests.
Fetcher = Callable[[str, dict[str, str]], tuple[int, bytes]]


class Authenticator:
    """Holds what we learnt from challenges and the tokens we got, per scope."""

    def __init__(self, credentials: Credentials | None, fetch: Fetcher) -> None:
        self.credentials = credentials
        self._fetch = fetch
        self._lock = threading.Lock()
        self._scheme: str | None = None
        self._bearer: dict[str, str] = {}
        self._tokens: dict[str, tuple[str, float]] = {}

    def header(self, scope: str) -> str | None:
        with self._lock:
            if self._scheme == "basic" and self.credentials:
                return self.credentials.basic_header()
            if self._scheme == "bearer":
                tok = self._tokens.get(scope)
                if tok and tok[1] > time.monotonic():
                    return f"Bearer {tok[0]}"
        return None

    def handle_challenge(self, header: str | None, scope: str) -> str:
        """Answer a 401: returns the Authorization value to retry with, or raises AuthError."""
        challenges = parse_challenges(header or "")
        for ch in challenges:
            if ch.scheme == "bearer" and ch.params.get("realm"):
                token, ttl = self._request_token(ch.params, scope)
                with self._lock:
                    self._scheme = "bearer"
                    self._bearer = ch.params
                    # Refresh a little early so a long pull does not use an expired token.
                    self._tokens[scope] = (token, time.monotonic() + max(ttl - 10, 5))
                return f"Bearer {token}"
        for ch in challenges:
            if ch.scheme == "basic":
                if not self.credentials:
                    raise AuthError("the registry requires authentication and no credentials were found", 401)
                with self._lock:
                    self._scheme = "basic"
                return self.credentials.basic_header()
        raise AuthError(f"unsupported authentication challenge {header!r}", 401)

    def _request_token(self, params: dict[str, str], scope: str) -> tuple[str, int]:
        query = []
        if params.get("service"):
            query.append(("service", params["service"]))
        # The challenge's scope is what the registry wants for this request; ours names the
        # repository we are about to use. Ask for both when they differ.
        scopes = [scope] if scope else []
        if params.get("scope") and params["scope"] not in scopes:
            scopes.append(params["scope"])
        query += [("scope", s) for s in scopes]
        realm = params["realm"]
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        headers = {}
        if self.credentials:
            headers["Authorization"] = self.credentials.basic_header()
        status, body = self._fetch(url, headers)
        if status in (401, 403):
            raise AuthError(
                "the token service refused the credentials" if self.credentials
                else "the token service requires credentials and none were found", status)
        if status != 200:
            raise AuthError(f"token service at {realm} answered HTTP {status}", status)
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
            ttl = int(doc.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            raise AuthError(f"token service at {realm} sent an invalid answer") from None
        if not token or not isinstance(token, str):
            raise AuthError(f"token service at {realm} sent no token")
        return token, ttl
