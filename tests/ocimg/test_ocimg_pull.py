"""Pulling from a real registry (Debian's docker-registry on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

import ocimgtest_images as ti
from ocimgtest_support import skopeo_push
from ocimg.config import Config
from ocimg.manifest import Platform
from ocimg.pull import make_client, pull
from ocimg.reference import parse
from ocimg.store import Store


def store_blobs(root: Path) -> set[str]:
    return {f"sha256:{p.name}" for p in (root / "blobs" / "sha256").iterdir()}


def test_pull_stores_every_blob_of_the_image_verified_in_an_oci_layout(ocimg, registry, images):
    p = ocimg("pull", "--insecure", f"{registry.host}/test/busybox")
    assert p.stdout.split() == [f"{registry.host}/test/busybox:latest", images.busybox.digest]
    want = {images.busybox.digest} | {b.digest for b in images.busybox.blobs}
    assert want <= store_blobs(ocimg.root)
    for d in want:
        data = (ocimg.root / "blobs" / "sha256" / d[7:]).read_bytes()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == d
    layout = json.loads((ocimg.root / "oci-layout").read_text())
    assert layout == {"imageLayoutVersion": "1.0.0"}


def test_pull_output_is_quiet_when_not_on_a_terminal(ocimg, registry):
    p = ocimg("pull", "--insecure", f"{registry.host}/test/busybox")
    assert p.stderr == ""
    assert len(p.stdout.splitlines()) == 1


def test_pulling_again_skips_blobs_already_present(tmp, registry, images):
    store = Store(str(tmp / "store"))
    ref = parse(f"{registry.host}/test/busybox")
    client = make_client(ref, Config(), insecure=True)
    first = pull(store, ref, client)
    second = pull(store, parse(f"{registry.host}/test/app"), make_client(ref, Config(), insecure=True))
    assert (first.fetched, first.skipped) == (3, 0)
    assert (second.fetched, second.skipped) == (0, 3)  # test/app shares all three layers


def test_images_lists_and_inspect_describes_a_pulled_image(ocimg, registry, images):
    ocimg("pull", "--insecure", f"{registry.host}/test/busybox")
    assert ocimg("images", "-q").stdout.split() == [f"{registry.host}/test/busybox:latest"]
    doc = json.loads(ocimg("inspect", f"{registry.host}/test/busybox").stdout)
    assert doc["Digest"] == images.busybox.digest
    assert doc["Platform"] == "linux/amd64"
    assert [layer["diffID"] for layer in doc["Layers"]] == [d for _, d in images.layers]
    assert [layer["mediaType"].rsplit(".", 1)[-1] for layer in doc["Layers"]] == ["tar+gzip", "tar+zstd", "tar"]


def test_pull_by_digest_fetches_exactly_that_manifest(ocimg, registry, images):
    p = ocimg("pull", "--insecure", f"{registry.host}/test/busybox@{images.busybox.digest}")
    assert p.stdout.split()[1] == images.busybox.digest


def test_an_index_resolves_to_this_hosts_platform_by_default(ocimg, registry, images):
    p = ocimg("pull", "--insecure", f"{registry.host}/test/multi")
    assert p.stdout.split()[1] == images.multi_amd64.digest
    assert images.multi.digest in store_blobs(ocimg.root)


def test_platform_option_selects_another_entry_of_an_index(ocimg, registry, images):
    p = ocimg("pull", "--insecure", "--platform", "linux/arm64", f"{registry.host}/test/multi")
    assert p.stdout.split()[1] == images.multi_arm64.digest
    doc = json.loads(ocimg("inspect", f"{registry.host}/test/multi").stdout)
    assert doc["Platform"] == "linux/arm64"


def test_a_platform_missing_from_the_index_is_a_clear_error(ocimg, registry):
    p = ocimg("pull", "--insecure", "--platform", "linux/s390x", f"{registry.host}/test/multi", check=False)
    assert p.returncode == 1
    assert p.stderr.strip().startswith("ocimg: no image for platform linux/s390x")
    assert "linux/amd64" in p.stderr and "linux/arm64" in p.stderr


def test_docker_schema2_manifests_from_skopeo_are_pulled(ocimg, registry, images, session_dir):
    skopeo_push(session_dir, images.gzip_only, registry.host, "test/docker:v2s2",
                ["--dest-tls-verify=false"], extra=("--format", "v2s2"))
    ocimg("pull", "--insecure", f"{registry.host}/test/docker:v2s2")
    doc = json.loads(ocimg("inspect", f"{registry.host}/test/docker:v2s2").stdout)
    assert doc["MediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert doc["Layers"][0]["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"


def test_a_plain_http_registry_needs_insecure(ocimg, registry):
    p = ocimg("pull", f"{registry.host}/test/busybox", check=False)
    assert p.returncode == 1
    assert p.stderr.startswith("ocimg: TLS with") and "--insecure" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_a_registry_listed_as_insecure_in_the_config_needs_no_flag(ocimg, registry, tmp):
    (tmp / "cfg.toml").write_text(f'insecure_registries = ["{registry.host}"]\n')
    ocimg("--config", str(tmp / "cfg.toml"), "pull", f"{registry.host}/test/busybox")


def test_a_malformed_reference_is_a_one_line_error(ocimg):
    p = ocimg("pull", "--insecure", "127.0.0.1:1/Bad/Name", check=False)
    assert p.returncode == 1
    assert p.stderr == "ocimg: invalid reference '127.0.0.1:1/Bad/Name': repository names must be lowercase\n"


def test_an_unknown_image_is_not_found(ocimg, registry):
    p = ocimg("pull", "--insecure", f"{registry.host}/test/nothing-here", check=False)
    assert p.returncode == 1 and "HTTP 404" in p.stderr and "MANIFEST_UNKNOWN" in p.stderr.upper()


def test_a_corrupted_blob_on_the_registry_is_rejected_and_not_stored(ocimg, fresh_registry):
    img = ti.image([ti.random_layer(64 << 10, 1)])
    fresh_registry.push("test/corrupt", "latest", img)
    layer = img.blobs[1]
    data_path = fresh_registry.blob_data_path(layer.digest)
    Path(data_path).write_bytes(bytes(b ^ 0xFF for b in Path(data_path).read_bytes()))
    p = ocimg("pull", "--insecure", f"{fresh_registry.host}/test/corrupt", check=False)
    assert p.returncode == 1
    assert f"blob {layer.digest}" in p.stderr and "does not match" in p.stderr
    assert layer.digest not in store_blobs(ocimg.root)
    assert ocimg("images", "-q").stdout == ""


def test_a_manifest_altered_in_transit_is_rejected_when_pulled_by_digest(ocimg, mangling_proxy, images):
    p = ocimg("pull", "--insecure", f"{mangling_proxy.host}/test/busybox@{images.busybox.digest}", check=False)
    assert p.returncode == 1 and "does not match" in p.stderr
    assert ocimg("images", "-q").stdout == ""


def test_a_manifest_altered_in_transit_is_rejected_when_pulled_by_tag(ocimg, mangling_proxy):
    # By tag, the registry's Docker-Content-Digest header is what the content must match.
    p = ocimg("pull", "--insecure", f"{mangling_proxy.host}/test/busybox", check=False)
    assert p.returncode == 1 and "does not match" in p.stderr


def test_a_connection_dropped_mid_blob_is_retried_from_where_it_stopped(ocimg, registry, dropping_proxy):
    img = ti.image([ti.random_layer(3 << 20, 3)])
    registry.push("test/dropped", "latest", img)
    layer = img.blobs[1]
    p = ocimg("pull", "--insecure", f"{dropping_proxy.host}/test/dropped")
    assert p.stdout.split()[1] == img.digest
    requests = [rng for d, rng in dropping_proxy.blob_requests if d == layer.digest]
    assert len(requests) == 2 and requests[0] is None
    assert requests[1].startswith("bytes=") and int(requests[1][6:].rstrip("-")) > 0
    stored = (ocimg.root / "blobs" / "sha256" / layer.digest[7:]).read_bytes()
    assert stored == layer.data


def test_a_dropped_connection_on_a_small_config_blob_is_retried(ocimg, registry, dropping_proxy):
    img = ti.image([ti.random_layer(2 << 10, 4)], Labels={"pad": "x" * 4096})
    registry.push("test/dropped-config", "latest", img)
    ocimg("pull", "--insecure", f"{dropping_proxy.host}/test/dropped-config")
    assert img.blobs[0].digest in {d for d, _ in dropping_proxy.blob_requests}


def test_rm_removes_the_name_and_gc_frees_what_nothing_references(ocimg, registry, images):
    ocimg("pull", "--insecure", f"{registry.host}/test/busybox")
    ocimg("pull", "--insecure", f"{registry.host}/test/multi")
    assert ocimg("rm", f"{registry.host}/test/busybox").stdout.startswith("Untagged")
    ocimg("gc")
    left = store_blobs(ocimg.root)
    assert images.busybox.digest not in left
    assert images.layers[1][0].digest not in left  # only test/busybox used the zstd layer
    assert images.layers[0][0].digest in left  # test/multi still uses the base layer
    assert images.multi_amd64.digest in left


def test_a_second_concurrent_pull_into_one_store_keeps_both_names(tmp, registry):
    root = tmp / "store"
    procs = [subprocess.Popen(["python3", "-m", "ocimg", "--root", str(root), "pull", "--insecure",
                               f"{registry.host}/test/{name}"], cwd=Path(__file__).parents[2],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for name in ("busybox", "app")]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    names = sorted(Store(str(root)).layout.find(n) is not None for n in
                   (f"{registry.host}/test/busybox:latest", f"{registry.host}/test/app:latest"))
    assert names == [True, True]


def test_host_platform_is_linux_and_this_machines_architecture():
    assert Platform.host().os == "linux"
    assert Platform.host().architecture == {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine,
                                                                                        Platform.host().architecture)


def test_a_blob_truncated_on_the_registry_is_a_one_line_error(ocimg, registry, truncating_proxy):
    img = ti.image([ti.random_layer(3 << 20, 5)])
    registry.push("test/truncated", "latest", img)
    p = ocimg("pull", "--insecure", f"{truncating_proxy.host}/test/truncated", check=False)
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert p.stderr.startswith(f"ocimg: blob {img.blobs[1].digest}: ") and "truncated" in p.stderr
    assert any(rng for _, rng in truncating_proxy.blob_requests)  # the resume was answered with a 416
    assert Store(str(ocimg.root)).layout.find(f"{truncating_proxy.host}/test/truncated:latest") is None
    assert not [n for n in os.listdir(ocimg.root / "ingest") if n.endswith(".partial")]


@pytest.fixture
def both_platforms(ocimg, registry, images):
    if Platform.host().architecture != "amd64":
        pytest.skip("expects an amd64 host (the index holds amd64 and arm64)")
    ref = f"{registry.host}/test/multi"
    ocimg("pull", "--insecure", ref)
    ocimg("pull", "--insecure", "--platform", "linux/arm64", ref)
    return ref


def test_pulling_another_platform_keeps_the_first_under_the_same_name(ocimg, both_platforms, images):
    rows = [line.split() for line in ocimg("images").stdout.splitlines()[1:]]
    assert sorted((r[0], r[2]) for r in rows) == [(f"{both_platforms}:latest", "linux/amd64"),
                                                  (f"{both_platforms}:latest", "linux/arm64/v8")]
    assert json.loads(ocimg("inspect", both_platforms).stdout)["Digest"] == images.multi_amd64.digest
    arm = json.loads(ocimg("inspect", "--platform", "linux/arm64", both_platforms).stdout)
    assert arm["Digest"] == images.multi_arm64.digest


def test_bundle_platform_picks_that_platforms_image(ocimg, both_platforms, tmp):
    ocimg("bundle", "--mode", "copy", "--platform", "linux/arm64", both_platforms, str(tmp / "arm"))
    ocimg("bundle", "--mode", "copy", both_platforms, str(tmp / "host"))
    assert (tmp / "arm" / "rootfs" / "platform").read_text() == "arm64\n"
    assert (tmp / "host" / "rootfs" / "platform").read_text() == "amd64\n"


def test_rm_platform_removes_only_that_platforms_entry(ocimg, both_platforms, images):
    ocimg("rm", "--platform", "linux/arm64", both_platforms)
    ocimg("gc")
    assert json.loads(ocimg("inspect", both_platforms).stdout)["Digest"] == images.multi_amd64.digest
    assert images.multi_arm64.digest not in store_blobs(ocimg.root)
    p = ocimg("inspect", "--platform", "linux/arm64", both_platforms, check=False)
    assert p.returncode == 1
    assert p.stderr == f"ocimg: {both_platforms}:latest is not stored for linux/arm64 (stored: linux/amd64)\n"
