"""Image references: the grammar other tools use, with Docker Hub's defaults."""

import pytest

from ocimg.errors import InvalidReference
from ocimg.reference import parse

DIGEST = "sha256:" + "ab" * 32


def test_a_bare_name_means_docker_hub_library_latest():
    r = parse("busybox")
    assert (r.registry, r.repository, r.tag, r.digest) == ("docker.io", "library/busybox", "latest", None)
    assert r.api_host == "registry-1.docker.io"
    assert str(r) == "docker.io/library/busybox:latest"


def test_a_user_repository_on_docker_hub_keeps_its_namespace():
    assert str(parse("someone/tool:1.2")) == "docker.io/someone/tool:1.2"


def test_a_registry_with_a_port_is_not_taken_for_a_tag():
    r = parse("127.0.0.1:5000/test/busybox")
    assert (r.registry, r.repository, r.tag) == ("127.0.0.1:5000", "test/busybox", "latest")


def test_localhost_is_a_registry():
    assert parse("localhost/img:v1").registry == "localhost"


def test_a_digest_pins_the_image_and_no_tag_is_implied():
    r = parse(f"quay.io/org/img@{DIGEST}")
    assert r.tag is None and str(r.digest) == DIGEST and r.selector == DIGEST


def test_tag_and_digest_together_keep_both_and_fetch_by_digest():
    r = parse(f"example.com:443/a/b/c:v2@{DIGEST}")
    assert (r.tag, str(r.digest), r.selector) == ("v2", DIGEST, DIGEST)


def test_index_docker_io_is_docker_io():
    assert parse("index.docker.io/library/alpine").registry == "docker.io"


def test_familiar_name_drops_docker_hub_defaults():
    assert parse("docker.io/library/busybox:1").familiar == "busybox:1"


@pytest.mark.parametrize("text", [
    "", " busybox", "Busybox", "busybox:", "busybox:-bad", "a//b", "host:5000/", "busybox@sha256:1234",
    "busybox@md5:" + "0" * 32, "bad_registry:5000/x", "-x/y", "x" * 300, "repo/with space",
])
def test_a_malformed_reference_is_an_invalid_reference_error(text):
    with pytest.raises(InvalidReference):
        parse(text)
