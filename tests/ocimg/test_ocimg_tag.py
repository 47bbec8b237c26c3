"""`ocimg tag SRC DST`: a second name for the same manifest in the store."""

from __future__ import annotations

import json
import os

import pytest

from test_ocimg_pull import both_platforms  # noqa: F401 -- the fixture


@pytest.fixture
def pulled(ocimg, registry):
    ref = f"{registry.host}/test/busybox"
    ocimg("pull", "--insecure", ref)
    return ref


def test_tag_names_the_same_manifest_and_the_new_name_bundles(ocimg, pulled, images, tmp):
    p = ocimg("tag", pulled, "example.org/mine/box:v1")
    assert p.stdout == f"Tagged {pulled}:latest as example.org/mine/box:v1\n"
    assert json.loads(ocimg("inspect", "example.org/mine/box:v1").stdout)["Digest"] == images.busybox.digest
    ocimg("bundle", "--mode", "copy", "example.org/mine/box:v1", str(tmp / "b"))
    assert (tmp / "b" / "rootfs" / "etc" / "motd").exists()


def test_tag_keeps_the_source_name_and_rm_of_one_keeps_the_other(ocimg, pulled, images):
    ocimg("tag", pulled, "mine")
    ocimg("rm", pulled)
    ocimg("gc")
    assert ocimg("images", "-q").stdout == "docker.io/library/mine:latest\n"
    assert json.loads(ocimg("inspect", "mine").stdout)["Digest"] == images.busybox.digest


def test_tag_moves_an_existing_name(ocimg, registry, pulled, images):
    ocimg("pull", "--insecure", f"{registry.host}/test/app")
    ocimg("tag", pulled, "mine")
    ocimg("tag", f"{registry.host}/test/app", "mine")
    assert json.loads(ocimg("inspect", "mine").stdout)["Digest"] == images.app.digest
    assert ocimg("images", "-q").stdout.count("docker.io/library/mine:latest") == 1


def test_tag_of_an_unknown_image_is_not_found_and_creates_no_store(ocimg):
    p = ocimg("tag", "nothing/here", "other", check=False)
    assert p.returncode == 1
    assert p.stderr == f"ocimg: image docker.io/nothing/here:latest is not in the store {ocimg.root} (pull it first)\n"
    assert not os.path.exists(ocimg.root)


def test_tag_to_an_invalid_or_digest_name_is_a_one_line_error(ocimg, pulled):
    p = ocimg("tag", pulled, "Bad Name", check=False)
    assert p.returncode == 1 and p.stderr.startswith("ocimg: invalid reference 'Bad Name'")
    digest = "sha256:" + "a" * 64
    p = ocimg("tag", pulled, f"mine@{digest}", check=False)
    assert p.returncode == 1
    assert p.stderr == f"ocimg: invalid tag 'mine@{digest}': a new name cannot pin a digest\n"


def test_tag_platform_tags_only_that_platforms_entry(ocimg, both_platforms, images):
    ocimg("tag", "--platform", "linux/arm64", both_platforms, "armonly")
    assert json.loads(ocimg("inspect", "armonly").stdout)["Digest"] == images.multi_arm64.digest
    ocimg("tag", both_platforms, "armonly")  # this host's platform goes beside it
    rows = sorted(line.split()[2] for line in ocimg("images").stdout.splitlines()[1:]
                  if line.startswith("docker.io/library/armonly:latest"))
    assert rows == ["linux/amd64", "linux/arm64/v8"]
