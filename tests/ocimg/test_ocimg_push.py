"""`ocimg push REF [DEST]`: blobs the registry lacks (HEAD, then POST+PUT or PATCHes), the manifest last."""

from __future__ import annotations

import json
import subprocess
import uuid

from ocimg.push import destination, push
from ocimg.registry.client import RegistryClient
from ocimg.store import Store
from ocimgtest_support import PASSWORD, USER
from test_ocimg_auth import auth_json, certs_config
from test_ocimg_commit import assert_shows_the_changes, changed_bundle


def repo(registry) -> str:
    """A repository of its own in the shared registry."""
    return f"{registry.host}/pushed/{uuid.uuid4().hex[:12]}"


def skopeo_inspect(ref: str, *flags: str) -> dict:
    p = subprocess.run(["skopeo", "inspect", "--tls-verify=false", *flags, f"docker://{ref}"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_commit_push_and_pull_into_another_store_round_trip(ocimg, registry, tmp, runc):
    bundle = changed_bundle(ocimg, f"{registry.host}/test/busybox", tmp / "b", runc)
    ocimg("commit", "-m", "round trip", str(bundle), "mine:v1")
    committed = json.loads(ocimg("inspect", "mine:v1").stdout)
    dest = f"{repo(registry)}:v1"
    p = ocimg("push", "--insecure", "mine:v1", dest)
    assert p.stdout == f"{dest}@{committed['Digest']} (5 blobs pushed, 0 already there)\n"
    remote = skopeo_inspect(dest)
    assert remote["Digest"] == committed["Digest"]
    assert remote["Layers"] == [l["digest"] for l in committed["Layers"]]
    second = type(ocimg)(tmp / "store2", ocimg.env)
    second("pull", "--insecure", dest)
    assert_shows_the_changes(second, dest, tmp / "again", runc)


def test_push_keeps_the_manifest_digest_and_skips_blobs_the_registry_has(ocimg, registry, images):
    ocimg("pull", "--insecure", f"{registry.host}/test/busybox")
    ocimg("tag", f"{registry.host}/test/busybox", "elsewhere/busybox")
    dest = f"{repo(registry)}:copy"
    p = ocimg("push", "--insecure", "elsewhere/busybox", dest)
    assert p.stdout == f"{dest}@{images.busybox.digest} (4 blobs pushed, 0 already there)\n"
    p = ocimg("push", "--insecure", "elsewhere/busybox", dest)
    assert p.stdout == f"{dest}@{images.busybox.digest} (0 blobs pushed, 4 already there)\n"


def test_blobs_are_mounted_from_the_images_own_repository_on_the_same_registry(ocimg, registry, images):
    src = f"{registry.host}/test/busybox"
    ocimg("pull", "--insecure", src)
    dest = f"{repo(registry)}:mounted"
    p = ocimg("push", "--insecure", src, dest)
    assert p.stdout == (f"{dest}@{images.busybox.digest} "
                        "(0 blobs pushed, 4 mounted from test/busybox, 0 already there)\n")
    assert skopeo_inspect(dest)["Digest"] == images.busybox.digest


def test_push_to_its_own_name_by_default(ocimg, registry, images):
    src = f"{registry.host}/test/app"
    ocimg("pull", "--insecure", src)
    p = ocimg("push", "--insecure", src)
    assert p.stdout == f"{src}:latest@{images.app.digest} (0 blobs pushed, 4 already there)\n"


class CountingClient(RegistryClient):
    """The real client, counting the requests of each method."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.calls: list[str] = []

    def request(self, method, path, *a, **kw):  # type: ignore[no-untyped-def]
        self.calls.append(method)
        return super().request(method, path, *a, **kw)


def test_large_blobs_go_up_in_chunks(ocimg, registry, images, tmp):
    src = f"{registry.host}/test/gzip"
    ocimg("pull", "--insecure", src)
    ocimg("tag", src, "elsewhere/gzip")  # not mounted from test/gzip: uploaded
    dest = f"{repo(registry)}:chunked"
    store = Store(str(ocimg.root))
    layer = store.image(src).manifest.layers[0]
    client = CountingClient(registry.host, insecure=True)
    result = push(store, "elsewhere/gzip", destination(dest), client, chunk_size=65536)
    assert result.pushed == 2
    assert client.calls.count("PATCH") == -(-layer.size // 65536)  # the config fits in one PUT
    assert skopeo_inspect(dest)["Digest"] == images.gzip_only.digest
    second = type(ocimg)(tmp / "store2", ocimg.env)
    second("pull", "--insecure", dest)  # every blob checked against its digest


def push_cut_once(ocimg, registry, proxy) -> tuple[str, int, int]:
    """Push test/gzip's layer in four PATCHes through `proxy`, which cuts the third half-way.
    Returns the destination on the registry itself, the chunk size and the bytes pushed whole."""
    src = f"{registry.host}/test/gzip"
    ocimg("pull", "--insecure", src)
    ocimg("tag", src, "elsewhere/gzip")  # not mounted from test/gzip: uploaded
    store = Store(str(ocimg.root))
    image = store.image(src)
    layer = image.manifest.layers[0]
    chunk = -(-layer.size // 4)
    proxy.cut_patch_from = 2 * chunk
    path = f"pushed/{uuid.uuid4().hex[:12]}:cut"
    push(store, "elsewhere/gzip", destination(f"{proxy.host}/{path}"), RegistryClient(proxy.host, insecure=True),
         chunk_size=chunk)
    assert proxy.cut_patch_from is None  # the cut happened
    whole = layer.size + image.manifest.config.size + image.descriptor.size
    return f"{registry.host}/{path}", chunk, whole


def test_a_cut_chunked_upload_resumes_where_the_registry_stands(ocimg, registry, patch_cutting_proxy, images, tmp):
    dest, chunk, whole = push_cut_once(ocimg, registry, patch_cutting_proxy)
    # Only the cut half chunk is extra: a restart would send the two chunks before it again.
    assert patch_cutting_proxy.upload_bytes == whole + chunk // 2
    assert skopeo_inspect(dest)["Digest"] == images.gzip_only.digest
    second = type(ocimg)(tmp / "store2", ocimg.env)
    second("pull", "--insecure", dest)  # every blob checked against its digest


def test_a_cut_upload_the_registry_no_longer_knows_starts_over(ocimg, registry, forgetful_proxy, images, tmp):
    dest, chunk, whole = push_cut_once(ocimg, registry, forgetful_proxy)
    assert forgetful_proxy.upload_bytes == whole + 2 * chunk + chunk // 2
    assert skopeo_inspect(dest)["Digest"] == images.gzip_only.digest
    second = type(ocimg)(tmp / "store2", ocimg.env)
    second("pull", "--insecure", dest)


def test_push_with_basic_auth_over_tls(ocimg, tls_basic_registry, tmp):
    cfg = certs_config(tmp, tls_basic_registry)
    creds = auth_json(tmp / "auth.json", tls_basic_registry.host)
    src = f"{tls_basic_registry.host}/test/busybox"
    ocimg("--config", str(cfg), "pull", "--authfile", str(creds), src)
    dest = f"{tls_basic_registry.host}/pushed/basic:v1"
    ocimg("--config", str(cfg), "push", "--authfile", str(creds), src, dest)
    doc = skopeo_inspect(dest, "--creds", f"{USER}:{PASSWORD}")
    assert doc["Name"] == f"{tls_basic_registry.host}/pushed/basic"


def test_push_without_credentials_is_an_authentication_error(ocimg, tls_basic_registry, registry, tmp):
    cfg = certs_config(tmp, tls_basic_registry)
    src = f"{registry.host}/test/busybox"
    ocimg("pull", "--insecure", src)
    p = ocimg("--config", str(cfg), "push", src, f"{tls_basic_registry.host}/pushed/anon", check=False)
    assert p.returncode == 1
    assert p.stderr == "ocimg: the registry requires authentication and no credentials were found\n"


def test_push_asks_the_token_service_for_push_access(ocimg, token_registry, registry, tmp):
    creds = auth_json(tmp / "auth.json", token_registry.host)
    src = f"{registry.host}/test/busybox"
    ocimg("pull", "--insecure", src)
    before = len(token_registry.token.requests)
    ocimg("push", "--insecure", "--authfile", str(creds), src, f"{token_registry.host}/pushed/token:v1")
    asked = token_registry.token.requests[before:]
    assert asked and all(r["user"] == USER for r in asked)
    assert "repository:pushed/token:pull,push" in asked[0]["scope"]


def test_push_to_a_digest_is_a_one_line_error(ocimg, registry):
    src = f"{registry.host}/test/busybox"
    ocimg("pull", "--insecure", src)
    dest = f"{registry.host}/pushed/x@sha256:{'a' * 64}"
    p = ocimg("push", "--insecure", src, dest, check=False)
    assert p.returncode == 1
    assert p.stderr == f"ocimg: invalid destination {dest!r}: push to a tag, not a digest\n"


def test_push_of_an_image_not_in_the_store_is_not_found(ocimg, registry):
    p = ocimg("push", "--insecure", "nothing/here", f"{registry.host}/pushed/x", check=False)
    assert p.returncode == 1
    assert p.stderr == f"ocimg: image docker.io/nothing/here:latest is not in the store {ocimg.root} (pull it first)\n"
