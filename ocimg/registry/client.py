"""A client for the OCI distribution API (v2): manifests and blobs, verified."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import InsecureRequestWarning, SSLError

from ocimg import mediatypes as mt
from ocimg.digest import Digest, verify_bytes
from ocimg.errors import AuthError, DigestError, NotFound, RegistryError
from ocimg.manifest import MAX_MANIFEST_SIZE, Descriptor
from ocimg.reference import Reference
from ocimg.registry.auth import Authenticator, Credentials
from ocimg.registry.tls import context_for

USER_AGENT = "ocimg/0.1"
CHUNK = 1 << 20

Progress = Callable[[int], None]  # called with the number of new bytes received


def _is_transient(status: int) -> bool:
    return status in (408, 429) or 500 <= status < 600


class RegistryClient:
    """One registry host. Safe to share between the threads that fetch layers."""

    def __init__(
        self,
        registry: str,
        *,
        api_host: str | None = None,
        insecure: bool = False,
        certs_dirs: Iterable[str] = (),
        cert_dir: str | None = None,
        credentials: Credentials | None = None,
        attempts: int = 5,
        timeout: float = 60.0,
    ) -> None:
        self.registry = registry
        self.host = api_host or registry
        self.insecure = insecure
        self.attempts = attempts
        ctx = context_for(registry, certs_dirs, verify=not insecure, cert_dir=cert_dir)
        if insecure:
            warnings.simplefilter("ignore", InsecureRequestWarning)
        self._pool = urllib3.PoolManager(
            num_pools=8,
            maxsize=8,
            ssl_context=ctx,
            cert_reqs="CERT_NONE" if insecure else "CERT_REQUIRED",
            timeout=urllib3.Timeout(connect=15.0, read=timeout),
            headers={"User-Agent": USER_AGENT},
        )
        # Our own retry loops decide what is retried; urllib3 only follows redirects (blob
        # storage often redirects to another host; urllib3 drops Authorization across hosts).
        self._retries = urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=5,
                                      raise_on_redirect=True, raise_on_status=False)
        self._scheme: str | None = None
        self.auth = Authenticator(credentials, self._fetch_token)

    # -- plumbing ---------------------------------------------------------------------

    def _fetch_token(self, url: str, headers: dict[str, str]) -> tuple[int, bytes]:
        try:
            r = self._pool.request("GET", url, headers=headers, retries=self._retries)
        except Urllib3Error as e:
            raise AuthError(f"cannot reach the token service {url.split('?')[0]}: {e}") from None
        return r.status, r.data

    def base_url(self) -> str:
        if self._scheme is None:
            self._scheme = self._probe_scheme()
        return f"{self._scheme}://{self.host}"

    def _probe_scheme(self) -> str:
        """HTTPS always; an insecure registry falls back to plain HTTP if TLS fails."""
        try:
            r = self._pool.request("GET", f"https://{self.host}/v2/", retries=self._retries, preload_content=False)
            r.drain_conn()
            r.release_conn()
            return "https"
        except Urllib3Error as e:
            if self.insecure:
                return "http"
            reason = getattr(e, "reason", None)
            if isinstance(e, SSLError) or isinstance(reason, SSLError):
                raise RegistryError(f"TLS with {self.host} failed: {_reason(e)} (use --insecure for a "
                                    f"plain-HTTP registry, or put its CA in certs.d/{self.registry}/)") from None
            raise RegistryError(f"cannot reach registry {self.host}: {_reason(e)}") from None

    def request(self, method: str, path: str, scope: str, headers: dict[str, str] | None = None,
                preload: bool = True, body: bytes | None = None) -> urllib3.BaseHTTPResponse:
        """One request with the 401 challenge handled; transport errors propagate (urllib3's).

        `path` is below the registry's base URL, or a whole URL (an upload's Location)."""
        url = path if path.startswith(("https://", "http://")) else self.base_url() + path
        h = dict(headers or {})
        auth = self.auth.header(scope)
        if auth:
            h["Authorization"] = auth
        r = self._pool.request(method, url, headers=h, retries=self._retries, preload_content=preload, body=body)
        if r.status == 401:
            challenge = r.headers.get("WWW-Authenticate")
            r.drain_conn()
            r.release_conn()
            h["Authorization"] = self.auth.handle_challenge(challenge, scope)
            r = self._pool.request(method, url, headers=h, retries=self._retries, preload_content=preload,
                                   body=body)
            if r.status == 401:
                r.drain_conn()
                raise AuthError(f"{self.registry}: authentication failed (HTTP 401)", 401)
        return r

    def _error(self, status: int, body: bytes, what: str) -> Exception:
        detail = ""
        try:
            errs = json.loads(body).get("errors") or []
            detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errs)
        except (ValueError, AttributeError):
            pass
        msg = f"{what}: HTTP {status}" + (f" ({detail})" if detail else "")
        if status == 404:
            return NotFound(msg)
        if status == 403:
            return AuthError(msg, 403)
        return RegistryError(msg, status)

    # -- API ----------------------------------------------------------------------------

    def check_access(self) -> None:
        """GET /v2/ with its challenge answered: AuthError when the registry refuses the credentials."""
        try:
            r = self.request("GET", "/v2/", "")
        except Urllib3Error as e:
            raise RegistryError(f"cannot reach registry {self.host}: {_reason(e)}") from None
        if r.status != 200:
            raise self._error(r.status, r.data, f"registry {self.registry}")

    def get_manifest(self, ref: Reference, selector: str | None = None) -> tuple[bytes, str, Digest]:
        """Fetch a manifest or index by tag or digest; its bytes are verified before returning."""
        sel = selector or ref.selector
        scope = f"repository:{ref.repository}:pull"
        what = f"manifest {ref.name}:{sel}" if ":" not in sel else f"manifest {ref.name}@{sel}"
        r, data = self._get_small(f"/v2/{ref.repository}/manifests/{sel}", scope,
                                  {"Accept": mt.MANIFEST_ACCEPT}, MAX_MANIFEST_SIZE, what)
        if sel.startswith(("sha256:", "sha512:")):
            digest = Digest.parse(sel)
        else:
            header = r.headers.get("Docker-Content-Digest")
            digest = Digest.parse(header) if header and header.startswith("sha256:") else Digest.of(data)
        got = hashlib.new(digest.algorithm, data).hexdigest()
        if got != digest.hex:
            raise DigestError(f"{what}: content digest {digest.algorithm}:{got} does not match {digest}")
        return data, r.headers.get("Content-Type", ""), digest

    def fetch_blob(self, ref: Reference, desc: Descriptor, partial: str, progress: Progress | None = None) -> None:
        """Download a blob into `partial`, resuming it, until it is complete and verified.

        The caller moves `partial` into place afterwards; a file that fails verification is
        removed so that the next try starts over.
        """
        what = f"blob {desc.digest}"
        scope = f"repository:{ref.repository}:pull"
        hasher = desc.digest.hasher()
        offset = 0
        if os.path.exists(partial):
            with open(partial, "rb") as f:
                while chunk := f.read(CHUNK):
                    hasher.update(chunk)
                    offset += len(chunk)
            if offset > desc.size:
                os.unlink(partial)
                hasher, offset = desc.digest.hasher(), 0
        resumed_from_disk = offset > 0
        if progress and offset:
            progress(offset)
        failures = 0
        last_error = ""
        with open(partial, "ab") as out:
            while offset < desc.size or desc.size == 0:
                if failures >= self.attempts:
                    raise RegistryError(f"{what}: giving up after {failures} failed attempts ({last_error})")
                headers = {"Range": f"bytes={offset}-"} if offset else {}
                try:
                    r = self.request("GET", f"/v2/{ref.repository}/blobs/{desc.digest}", scope, headers,
                                     preload=False)
                except Urllib3Error as e:
                    failures, last_error = failures + 1, _reason(e)
                    _backoff(failures)
                    continue
                if r.status == 200 and offset:
                    # The registry ignored the Range header: start over.
                    out.truncate(0)
                    out.seek(0)
                    if progress:
                        progress(-offset)
                    hasher, offset = desc.digest.hasher(), 0
                elif r.status == 206:
                    if not r.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
                        r.drain_conn()
                        raise RegistryError(f"{what}: registry sent an unexpected range "
                                            f"{r.headers.get('Content-Range')!r}")
                elif r.status == 416 and offset:
                    # Nothing left from `offset` on: the registry's copy is shorter than the manifest says.
                    _error_body(r)
                    out.truncate(0)
                    os.unlink(partial)
                    raise DigestError(f"{what}: the registry's copy ends before the {desc.size} bytes the manifest "
                                      f"gives it (HTTP 416 for bytes {offset}-); the blob is truncated")
                elif r.status != 200:
                    if _is_transient(r.status):
                        r.drain_conn()
                        failures, last_error = failures + 1, f"HTTP {r.status}"
                        _backoff(failures)
                        continue
                    raise self._error(r.status, _error_body(r), what)
                try:
                    for chunk in r.stream(CHUNK):
                        if offset + len(chunk) > desc.size:
                            r.drain_conn()
                            raise DigestError(f"{what}: registry sent more than the expected {desc.size} bytes")
                        out.write(chunk)
                        hasher.update(chunk)
                        offset += len(chunk)
                        if progress:
                            progress(len(chunk))
                except Urllib3Error as e:
                    # Dropped mid-transfer: what we have stays, the next try asks for the rest.
                    out.flush()
                    failures, last_error = failures + 1, _reason(e)
                    _backoff(failures)
                    continue
                finally:
                    r.release_conn()
                if offset < desc.size:
                    failures, last_error = failures + 1, "short read"
                    continue
                break
        if offset != desc.size or hasher.hexdigest() != desc.digest.hex:
            os.unlink(partial)
            if resumed_from_disk:
                # The earlier partial download may have been the bad part: one clean try.
                return self.fetch_blob(ref, desc, partial, progress and (lambda n: progress(n)))
            raise DigestError(f"{what}: downloaded content (size {offset}, digest "
                              f"{desc.digest.algorithm}:{hasher.hexdigest()}) does not match the manifest")

    def get_blob_bytes(self, ref: Reference, desc: Descriptor, limit: int) -> bytes:
        """A small blob (an image config) fetched into memory and verified."""
        if desc.size > limit:
            raise RegistryError(f"blob {desc.digest} is {desc.size} bytes, more than the {limit} allowed")
        scope = f"repository:{ref.repository}:pull"
        what = f"blob {desc.digest}"
        _, data = self._get_small(f"/v2/{ref.repository}/blobs/{desc.digest}", scope, None,
                                  limit, what)
        verify_bytes(data, desc.digest, desc.size, what)
        return data

    # -- pushing ------------------------------------------------------------------------

    def has_blob(self, ref: Reference, digest: Digest) -> bool:
        """HEAD the blob in `ref`'s repository: is it there already?"""
        r = self._push_call("HEAD", f"/v2/{ref.repository}/blobs/{digest}", ref, f"blob {digest}", (200, 404))
        return r.status == 200

    def upload_blob(self, ref: Reference, desc: Descriptor, path: str, chunk_size: int,
                    mount_from: str | None = None) -> bool:
        """Upload the file `path` as blob `desc`: one PUT when it fits in `chunk_size`, else PATCHes
        of `chunk_size` bytes and a closing PUT. A failed PATCH resumes where the registry says the
        upload stands; any other failed upload starts over, a few times.

        With `mount_from` (another repository of this registry that has the blob), the registry is
        asked to mount it from there first; True when it did, and nothing was uploaded.
        """
        what = f"blob {desc.digest}"
        for attempt in range(self.attempts):
            try:
                return self._upload_once(ref, desc, path, chunk_size, what, mount_from)
            except RegistryError as e:
                if e.status is None or not _is_transient(e.status) or attempt + 1 >= self.attempts:
                    raise
                _backoff(attempt)
        return False

    def _upload_once(self, ref: Reference, desc: Descriptor, path: str, chunk_size: int, what: str,
                     mount_from: str | None) -> bool:
        query = urllib.parse.urlencode({"mount": str(desc.digest), "from": mount_from}) if mount_from else ""
        r = self._push_call("POST", f"/v2/{ref.repository}/blobs/uploads/" + (f"?{query}" if query else ""),
                            ref, what, (201, 202))
        if r.status == 201:
            return True  # mounted
        # Not mounted (no such blob there, or no access to it): the answer is a plain upload session.
        location = self._location(r, what)
        with open(path, "rb") as f:
            if desc.size > chunk_size:
                location = self._patch_chunks(ref, f, location, chunk_size, what)
                data = b""
            else:
                data = f.read()
        sep = "&" if "?" in location else "?"
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
        r = self._push_call("PUT", f"{location}{sep}digest={desc.digest}", ref, what, (201,), headers, data)
        got = r.headers.get("Docker-Content-Digest")
        if got and got != str(desc.digest):
            raise DigestError(f"{what}: the registry stored it as {got}")
        return False

    def _patch_chunks(self, ref: Reference, f: BinaryIO, location: str, chunk_size: int, what: str) -> str:
        """PATCH the file up in chunks; returns the upload's location for the closing PUT.

        A PATCH that fails transiently is resumed where the registry says the upload stands (the
        distribution spec's upload status); when it cannot say, the error goes up and the caller
        starts over with a new upload."""
        offset = failures = 0
        while chunk := f.read(chunk_size):
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(chunk)),
                       "Content-Range": f"{offset}-{offset + len(chunk) - 1}"}
            try:
                r = self._push_call("PATCH", location, ref, what, (202,), headers, chunk)
            except RegistryError as e:
                failures += 1
                if e.status is None or not _is_transient(e.status) or failures >= self.attempts:
                    raise
                _backoff(failures - 1)
                status = self._upload_status(ref, location)
                if status is None:
                    raise
                offset, location = status
                f.seek(offset)
                continue
            location = self._location(r, what)
            offset += len(chunk)
        return location

    def _upload_status(self, ref: Reference, location: str) -> tuple[int, str] | None:
        """How many bytes the upload at `location` holds, and its location now; None when the
        registry does not tell (no Range, the session gone, no answer)."""
        try:
            r = self.request("GET", location, f"repository:{ref.repository}:pull,push")
        except Urllib3Error:
            return None
        m = re.fullmatch(r"0-(\d+)", r.headers.get("Range", "")) if r.status == 204 else None
        # "0-0" is all an empty upload can say, and it says the same of one byte: not a position.
        if m is None or m.group(1) == "0":
            return None
        return int(m.group(1)) + 1, (self._location(r, "upload") if r.headers.get("Location") else location)

    def put_manifest(self, ref: Reference, data: bytes, media_type: str) -> Digest:
        """PUT the manifest under `ref`'s tag; returns its digest (checked against the registry's)."""
        digest = Digest.of(data)
        what = f"manifest {ref}"
        r = self._push_call("PUT", f"/v2/{ref.repository}/manifests/{ref.selector}", ref, what, (201,),
                            {"Content-Type": media_type, "Content-Length": str(len(data))}, data)
        got = r.headers.get("Docker-Content-Digest")
        if got and got != str(digest):
            raise DigestError(f"{what}: the registry stored it as {got}, not {digest}")
        return digest

    def _push_call(self, method: str, path: str, ref: Reference, what: str, ok: tuple[int, ...],
                   headers: dict[str, str] | None = None, body: bytes | None = None) -> urllib3.BaseHTTPResponse:
        scope = f"repository:{ref.repository}:pull,push"
        try:
            r = self.request(method, path, scope, headers, body=body)
        except Urllib3Error as e:
            raise RegistryError(f"{what}: {_reason(e)}", 503) from None  # retried like a 503
        if r.status not in ok:
            raise self._error(r.status, r.data, what)
        return r

    def _location(self, r: urllib3.BaseHTTPResponse, what: str) -> str:
        location = r.headers.get("Location")
        if not location:
            raise RegistryError(f"{what}: the registry gave no upload location")
        return location if location.startswith(("https://", "http://")) else self.base_url() + location

    def _get_small(self, path: str, scope: str, headers: dict | None, limit: int,
                   what: str) -> tuple[urllib3.BaseHTTPResponse, bytes]:
        """GET a small document into memory, retrying transient failures."""
        for attempt in range(self.attempts):
            try:
                r = self.request("GET", path, scope, headers, preload=False)
                if r.status != 200:
                    if _is_transient(r.status) and attempt + 1 < self.attempts:
                        r.drain_conn()
                        _backoff(attempt)
                        continue
                    raise self._error(r.status, _error_body(r), what)
                return r, _read_limited(r, limit, what)
            except Urllib3Error as e:
                if attempt + 1 >= self.attempts:
                    raise RegistryError(f"{what}: {_reason(e)}") from None
                _backoff(attempt)
        raise RegistryError(f"{what}: giving up after {self.attempts} attempts")


def _read_limited(r: urllib3.BaseHTTPResponse, limit: int, what: str) -> bytes:
    buf = bytearray()
    for chunk in r.stream(1 << 16):
        buf += chunk
        if len(buf) > limit:
            r.drain_conn()
            raise RegistryError(f"{what} is larger than {limit} bytes")
    r.release_conn()
    return bytes(buf)


def _error_body(r: urllib3.BaseHTTPResponse) -> bytes:
    """An error response's body for its message: a short or broken one is just left out."""
    try:
        return r.read(decode_content=True)[:65536]
    except Urllib3Error:
        return b""
    finally:
        r.release_conn()


def _backoff(attempt: int) -> None:
    time.sleep(min(0.2 * (2**attempt), 5.0) * (0.5 + random.random() / 2))


def _reason(e: Exception) -> str:
    reason: Any = getattr(e, "reason", None)
    return str(reason or e)
