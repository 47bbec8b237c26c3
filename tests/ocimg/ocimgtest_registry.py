"""A real registry (Debian's docker-registry) on 127.0.0.1, plus the test's own helpers:
TLS certificates, an htpasswd file, a bearer-token server and a connection-dropping proxy."""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.server
import json
import os
import secrets
import socket
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

import bcrypt
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from ocimgtest_images import Image

REGISTRY_BIN = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"registry exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


# -- certificates ---------------------------------------------------------------------------

@dataclass
class Certs:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def write(self, d: str) -> tuple[str, str, str]:
        os.makedirs(d, exist_ok=True)
        paths = (os.path.join(d, "ca.crt"), os.path.join(d, "server.pem"), os.path.join(d, "server-key.pem"))
        for p, data in zip(paths, (self.ca_pem, self.cert_pem, self.key_pem)):
            with open(p, "wb") as f:
                f.write(data)
        return paths


def make_certs() -> Certs:
    """A CA and a server certificate for 127.0.0.1 / localhost signed by it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ocimg test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return Certs(ca.public_bytes(pem), cert.public_bytes(pem),
                 key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


# -- token server ---------------------------------------------------------------------------

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """Issues registry bearer tokens (JWT, RS256, certificate in x5c) to one user."""

    ISSUER = "ocimg-test-issuer"
    SERVICE = "ocimg-test-registry"

    def __init__(self, workdir: str, user: str, password: str) -> None:
        self.user, self.password = user, password
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = datetime.datetime.now(datetime.timezone.utc)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ocimg test token signer")])
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(minutes=5))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.bundle = os.path.join(workdir, "token-root.pem")
        with open(self.bundle, "wb") as f:
            f.write(self.cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[dict] = []
        self.port = free_port()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                server._handle(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def _handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlparse(h.path)
        q = urllib.parse.parse_qs(url.query)
        auth = h.headers.get("Authorization", "")
        user = None
        if auth.startswith("Basic "):
            u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
            if (u, p) != (self.user, self.password):
                h.send_response(401)
                h.end_headers()
                self.requests.append({"scope": q.get("scope", []), "user": u, "granted": False})
                return
            user = u
        access = []
        for scope in q.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            # Anonymous users get nothing: this registry is private.
            allowed = [a for a in actions.split(",") if a in ("pull", "push")] if user else []
            access.append({"type": kind, "name": name, "actions": allowed})
        self.requests.append({"scope": q.get("scope", []), "user": user, "granted": bool(user)})
        body = json.dumps({"token": self._jwt(user or "", access), "expires_in": 300}).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _jwt(self, sub: str, access: list[dict]) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256",
                  "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]}
        claims = {"iss": self.ISSUER, "sub": sub, "aud": self.SERVICE, "exp": now + 300, "nbf": now - 30,
                  "iat": now, "jti": secrets.token_hex(8), "access": access}
        signing = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        sig = self.key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing}.{_b64url(sig)}"


# -- the registry -------------------------------------------------------------------------------

@dataclass
class Registry:
    workdir: str
    port: int
    tls: Certs | None = None
    htpasswd: tuple[str, str] | None = None
    token: TokenServer | None = None
    proc: subprocess.Popen | None = None
    log: str = ""

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def storage(self) -> str:
        return os.path.join(self.workdir, "storage")

    def start(self) -> "Registry":
        os.makedirs(self.storage, exist_ok=True)
        http_cfg = [f"  addr: 127.0.0.1:{self.port}", f"  secret: {secrets.token_hex(16)}"]
        if self.tls:
            _, cert, key = self.tls.write(os.path.join(self.workdir, "tls"))
            http_cfg += ["  tls:", f"    certificate: {cert}", f"    key: {key}"]
        auth = []
        if self.htpasswd:
            path = os.path.join(self.workdir, "htpasswd")
            user, password = self.htpasswd
            with open(path, "wb") as f:
                f.write(user.encode() + b":" + bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=6)) + b"\n")
            auth = ["auth:", "  htpasswd:", "    realm: ocimg-test", f"    path: {path}"]
        elif self.token:
            auth = ["auth:", "  token:", f"    realm: {self.token.realm}", f"    service: {TokenServer.SERVICE}",
                    f"    issuer: {TokenServer.ISSUER}", f"    rootcertbundle: {self.token.bundle}"]
        cfg = "\n".join([
            "version: 0.1",
            "log:", "  level: warn", "  accesslog:", "    disabled: true",
            "storage:", "  filesystem:", f"    rootdirectory: {self.storage}", "  delete:", "    enabled: true",
            "http:", *http_cfg, *auth, "",
        ])
        path = os.path.join(self.workdir, "config.yml")
        with open(path, "w") as f:
            f.write(cfg)
        self.log = os.path.join(self.workdir, "registry.log")
        with open(self.log, "wb") as logf:
            self.proc = subprocess.Popen([REGISTRY_BIN, "serve", path], stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def blob_data_path(self, digest: str) -> str:
        hexpart = digest.split(":")[1]
        return os.path.join(self.storage, "docker", "registry", "v2", "blobs", "sha256", hexpart[:2], hexpart, "data")

    # -- pushing, by this test code, byte for byte (no auth: for the open registry) --------------

    def push(self, repo: str, ref: str, img: Image) -> None:
        base = f"{'https' if self.tls else 'http'}://{self.host}"
        pool = urllib3.PoolManager(cert_reqs="CERT_NONE") if self.tls else urllib3.PoolManager()
        for b in img.blobs:
            if b.media_type.endswith(("manifest.v1+json", "manifest.v2+json")):
                continue
            r = pool.request("HEAD", f"{base}/v2/{repo}/blobs/{b.digest}")
            if r.status == 200:
                continue
            r = pool.request("POST", f"{base}/v2/{repo}/blobs/uploads/")
            assert r.status == 202, (r.status, r.data)
            loc = r.headers["Location"]
            if loc.startswith("/"):
                loc = base + loc
            sep = "&" if "?" in loc else "?"
            r = pool.request("PUT", f"{loc}{sep}digest={b.digest}", body=b.data,
                             headers={"Content-Type": "application/octet-stream"})
            assert r.status == 201, (r.status, r.data)
        # Child manifests of an index first, then the document itself.
        for b in img.blobs:
            if b.media_type.endswith(("manifest.v1+json", "manifest.v2+json")):
                self._put_manifest(pool, base, repo, b.digest, b)
        self._put_manifest(pool, base, repo, ref, img.manifest)

    @staticmethod
    def _put_manifest(pool, base, repo, ref, blob) -> None:
        r = pool.request("PUT", f"{base}/v2/{repo}/manifests/{ref}", body=blob.data,
                         headers={"Content-Type": blob.media_type})
        assert r.status == 201, (r.status, r.data)


# -- a proxy that cuts the first transfer of each blob ----------------------------------------

class DroppingProxy:
    """Forwards to a registry; the first GET of each blob gets half its body, then a closed
    connection. Records every blob request with its Range header. Optionally alters every
    manifest it passes on."""

    def __init__(self, upstream_port: int, mangle_manifests: bool = False, cut_blobs: bool = True,
                 refuse_ranges: bool = False, cut_patch_from: int | None = None,
                 forget_uploads: bool = False) -> None:
        self.mangle_manifests = mangle_manifests
        self.cut_blobs = cut_blobs
        # The first upload PATCH starting at or past this offset: half its body read, then the
        # connection closed, nothing of it passed on.
        self.cut_patch_from = cut_patch_from
        # Answer every upload status GET with 404, as for an upload session the registry dropped.
        self.forget_uploads = forget_uploads
        self.upload_bytes = 0  # body bytes of the PATCHes and PUTs received, cut ones included
        # Answer a ranged blob GET with 416 and a body shorter than its Content-Length.
        self.refuse_ranges = refuse_ranges
        # GETs of these blobs wait until `release` is set.
        self.held: set[str] = set()
        self.release = threading.Event()
        self.upstream = f"http://127.0.0.1:{upstream_port}"
        self.pool = urllib3.PoolManager()
        self.cut: set[str] = set()
        self.blob_requests: list[tuple[str, str | None]] = []
        self.port = free_port()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_HEAD(self):  # noqa: N802
                proxy._forward(self, "HEAD")

            def do_GET(self):  # noqa: N802
                proxy._forward(self, "GET")

            def do_POST(self):  # noqa: N802
                proxy._forward(self, "POST")

            def do_PATCH(self):  # noqa: N802
                proxy._forward(self, "PATCH")

            def do_PUT(self):  # noqa: N802
                proxy._forward(self, "PUT")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def _forward(self, h: http.server.BaseHTTPRequestHandler, method: str) -> None:
        headers = {k: v for k, v in h.headers.items()
                   if k.lower() in ("accept", "range", "authorization", "content-type", "content-range")}
        length = int(h.headers.get("Content-Length", "0"))
        if method in ("PATCH", "PUT"):
            if self._cuts_patch(h, method):
                self.upload_bytes += len(h.rfile.read(length // 2))
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)
                return
            self.upload_bytes += length
        body_in = h.rfile.read(length) if length else None
        if method == "GET" and "/blobs/uploads/" in h.path and self.forget_uploads:
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        r = self.pool.request(method, self.upstream + h.path, headers=headers, body=body_in, redirect=False)
        body = r.data
        if self.mangle_manifests and "/manifests/" in h.path and r.status == 200:
            body += b" "  # still valid JSON, but no longer the content its digest names
        is_blob = "/blobs/sha256:" in h.path and method == "GET"
        digest = h.path.rsplit("/", 1)[-1]
        if is_blob:
            self.blob_requests.append((digest, h.headers.get("Range")))
            if digest in self.held:
                self.release.wait(120)
            if self.refuse_ranges and h.headers.get("Range"):
                h.send_response(416)
                h.send_header("Content-Length", "4096")
                h.end_headers()
                h.wfile.write(b'{"errors": [')
                h.wfile.flush()
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)
                return
        cut = self.cut_blobs and is_blob and r.status == 200 and digest not in self.cut and len(body) > 1024
        h.send_response(r.status)
        for k, v in r.headers.items():
            if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                h.send_header(k, v.replace(self.upstream, f"http://{self.host}"))  # Location: back here
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if method == "HEAD":
            return
        if cut:
            self.cut.add(digest)
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        h.wfile.write(body)

    def _cuts_patch(self, h: http.server.BaseHTTPRequestHandler, method: str) -> bool:
        start = h.headers.get("Content-Range", "").partition("-")[0]
        if method != "PATCH" or self.cut_patch_from is None or not start or int(start) < self.cut_patch_from:
            return False
        self.cut_patch_from = None  # once
        return True


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


__all__ = ["Registry", "TokenServer", "DroppingProxy", "make_certs", "free_port", "sha256", "field"]
