"""Bundles: config.json from the image config, overlay or copied rootfs, run with real runtimes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ocimgtest_support import REPO, mounts_under
from test_ocimg_unpack import tree

SPECS = REPO / "specs"


@pytest.fixture
def pulled(ocimg, registry):
    for name in ("busybox", "app"):
        ocimg("pull", "--insecure", f"{registry.host}/test/{name}")
    return f"{registry.host}/test/busybox", f"{registry.host}/test/app"


def config_of(bundle: Path) -> dict:
    return json.loads((bundle / "config.json").read_text())


def validate_against_runtime_spec(doc: dict) -> None:
    """Validates with the runtime-spec 1.3.0 JSON schema kept in this repository."""
    jsonschema = pytest.importorskip("jsonschema")
    referencing = pytest.importorskip("referencing")
    if not (SPECS / "config-schema.json").exists():
        pytest.skip("specs/config-schema.json (runtime-spec 1.3.0 schema) is not in this checkout")
    schemas = {name: json.loads((SPECS / name).read_text()) for name in ("config-schema.json", "defs.json")}
    reg = referencing.Registry().with_resources(
        (name, referencing.Resource.from_contents(s, default_specification=referencing.jsonschema.DRAFT4))
        for name, s in schemas.items())
    schema = schemas["config-schema.json"]
    jsonschema.Draft4Validator(schema, registry=reg).validate(doc)


def test_config_json_is_valid_runtime_spec_1_3_0(ocimg, pulled, tmp):
    ocimg("bundle", pulled[0], str(tmp / "b"))
    doc = config_of(tmp / "b")
    assert doc["ociVersion"] == "1.3.0"
    validate_against_runtime_spec(doc)


def test_config_json_follows_the_image_config(ocimg, pulled, tmp, images):
    ocimg("bundle", pulled[0], str(tmp / "b"))
    doc = config_of(tmp / "b")
    proc = doc["process"]
    assert proc["args"] == ["/bin/sh", "-c", "cat /etc/motd"]
    assert proc["env"] == ["PATH=/bin", "FOO=bar", "HOME=/root"]
    assert proc["cwd"] == "/data"
    assert proc["user"] == {"uid": 0, "gid": 0}
    assert doc["root"] == {"path": "rootfs", "readonly": False}
    ann = doc["annotations"]
    assert ann["org.example.test"] == "yes"
    assert ann["org.opencontainers.image.stopSignal"] == "SIGTERM"
    assert ann["org.opencontainers.image.architecture"] == "amd64"
    assert ann["org.opencontainers.image.ref.name"] == f"{pulled[0]}:latest"


def test_config_json_has_runc_spec_namespaces_mounts_and_paths(ocimg, pulled, tmp):
    ocimg("bundle", pulled[0], str(tmp / "b"))
    doc = config_of(tmp / "b")
    assert [n["type"] for n in doc["linux"]["namespaces"]] == ["pid", "network", "ipc", "uts", "mount"]
    assert [m["destination"] for m in doc["mounts"]] == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue",
                                                         "/sys", "/sys/fs/cgroup"]
    assert "/proc/kcore" in doc["linux"]["maskedPaths"] and "/proc/sys" in doc["linux"]["readonlyPaths"]
    assert doc["process"]["noNewPrivileges"] is True


def test_default_capabilities_are_podmans_and_runc_set_is_an_option(ocimg, pulled, tmp):
    ocimg("bundle", pulled[0], str(tmp / "a"))
    ocimg("bundle", "--caps", "runc", pulled[0], str(tmp / "b"))
    assert "CAP_CHOWN" in config_of(tmp / "a")["process"]["capabilities"]["bounding"]
    assert config_of(tmp / "b")["process"]["capabilities"] == {
        k: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"] for k in ("bounding", "effective", "permitted")}


def test_user_is_resolved_against_the_images_passwd_and_group(ocimg, pulled, tmp):
    ocimg("bundle", pulled[1], str(tmp / "b"))
    proc = config_of(tmp / "b")["process"]
    assert proc["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [2000]}
    assert "HOME=/home/app" in proc["env"]
    assert proc["cwd"] == "/home/app"


def test_options_override_args_env_hostname_and_add_bind_mounts(ocimg, pulled, tmp):
    src = tmp / "shared"
    src.mkdir()
    ocimg("bundle", "--env", "FOO=baz", "-e", "NEW=1", "--hostname", "box", "--mount", f"{src}:/mnt/shared:ro",
          pulled[0], str(tmp / "b"), "--", "/bin/echo", "hi")
    doc = config_of(tmp / "b")
    assert doc["process"]["args"] == ["/bin/echo", "hi"]
    assert "FOO=baz" in doc["process"]["env"] and "NEW=1" in doc["process"]["env"]
    assert doc["hostname"] == "box"
    assert doc["mounts"][-1] == {"destination": "/mnt/shared", "type": "bind", "source": str(src),
                                 "options": ["rbind", "ro"]}


def test_overlay_bundle_mounts_the_shared_layers_and_remove_undoes_it(ocimg, pulled, tmp):
    ocimg("bundle", pulled[0], str(tmp / "b"))
    rootfs = tmp / "b" / "rootfs"
    assert mounts_under(str(rootfs)) == [str(rootfs)]
    assert (rootfs / "etc" / "motd").read_text() == "hello from layer 3\n"
    assert not (rootfs / "data" / "a").exists()
    assert sorted(os.listdir(rootfs / "opt" / "dir")) == ["z"]
    ocimg("bundle", "--remove", str(tmp / "b"))
    assert mounts_under(str(tmp / "b")) == []
    assert not (tmp / "b").exists()


def test_bundling_into_a_non_empty_directory_is_refused(ocimg, pulled, tmp):
    (tmp / "b").mkdir()
    (tmp / "b" / "keep").write_text("mine")
    p = ocimg("bundle", pulled[0], str(tmp / "b"), check=False)
    assert p.returncode == 1 and "not an empty directory" in p.stderr
    assert (tmp / "b" / "keep").read_text() == "mine"


def test_run_an_overlay_bundle_with_runc(ocimg, pulled, tmp, runc):
    ocimg("bundle", pulled[0], str(tmp / "b"))
    p = runc.run(tmp / "b")
    assert (p.returncode, p.stdout) == (0, "hello from layer 3\n"), p.stderr


def test_run_a_copy_bundle_with_runc(ocimg, pulled, tmp, runc):
    ocimg("bundle", "--mode", "copy", pulled[0], str(tmp / "b"), "--", "/bin/sh", "-c",
          "cat /etc/motd; ls /data; stat -c '%u:%g %a' /data/c")
    assert mounts_under(str(tmp / "b")) == []
    p = runc.run(tmp / "b")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["hello from layer 3", "b", "c", "c-link", "setuid", "1000:2000 640"]


def test_runc_runs_the_image_user_with_its_groups(ocimg, pulled, tmp, runc):
    ocimg("bundle", pulled[1], str(tmp / "b"))
    p = runc.run(tmp / "b")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "uid=1000(app) gid=1000(app) groups=2000(extra)"


def test_two_containers_never_see_each_others_writes_and_shared_layers_stay_unchanged(ocimg, pulled, tmp, runc):
    ocimg("bundle", pulled[0], str(tmp / "a"), "--", "/bin/sh", "-c",
          "echo A > /data/b && rm /etc/motd && echo new > /newfile && rm -r /opt/dir")
    ocimg("bundle", pulled[0], str(tmp / "b"), "--", "/bin/sh", "-c",
          "cat /data/b /etc/motd; ls /newfile /opt/dir 2>&1")
    layers = sorted((ocimg.root / "layers" / "sha256").glob("[0-9a-f]*"))
    assert len(layers) == 3
    before = {str(p): tree(p) for p in layers}
    a = runc.run(tmp / "a")
    assert a.returncode == 0, a.stderr
    b = runc.run(tmp / "b")
    assert b.stdout.splitlines() == ["b from layer 1", "hello from layer 3", "ls: /newfile: No such file or directory",
                                     "/opt/dir:", "z"]
    assert {str(p): tree(p) for p in layers} == before
    upper = tmp / "a" / ".ocimg" / "upper"
    assert (upper / "data" / "b").read_text() == "A\n"
    motd = os.lstat(upper / "etc" / "motd")
    assert stat.S_ISCHR(motd.st_mode) and motd.st_rdev == 0  # the deletion is a whiteout in A's upper
    assert os.listdir(tmp / "b" / ".ocimg" / "upper") == []


def test_gc_keeps_layers_a_live_bundle_uses_and_frees_them_once_it_is_removed(ocimg, pulled, tmp):
    ocimg("bundle", pulled[0], str(tmp / "b"))
    ocimg("rm", pulled[0], pulled[1])
    ocimg("gc")
    assert len(list((ocimg.root / "layers" / "sha256").glob("[0-9a-f]*"))) == 3
    assert (tmp / "b" / "rootfs" / "bin" / "busybox").exists()
    ocimg("bundle", "--remove", str(tmp / "b"))
    ocimg("gc")
    assert list((ocimg.root / "layers" / "sha256").glob("[0-9a-f]*")) == []
    assert list((ocimg.root / "blobs" / "sha256").iterdir()) == []


def test_export_and_import_round_trip_through_a_directory_and_a_tar(ocimg, pulled, tmp, images):
    ocimg("export", pulled[0], str(tmp / "layout"))
    ocimg("export", pulled[0], str(tmp / "image.tar"))
    other_dir = type(ocimg)(tmp / "store2", ocimg.env)
    other_tar = type(ocimg)(tmp / "store3", ocimg.env)
    assert other_dir("import", str(tmp / "layout")).stdout.strip() == f"Imported {pulled[0]}:latest"
    other_tar("import", str(tmp / "image.tar"), "localhost/copied:v1")
    assert json.loads(other_tar("inspect", "localhost/copied:v1").stdout)["Digest"] == images.busybox.digest
    assert json.loads(other_dir("inspect", pulled[0]).stdout)["Digest"] == images.busybox.digest


def test_an_exported_layout_is_readable_by_umoci(ocimg, registry, tmp):
    # umoci 0.4 knows no zstd: an image of gzip layers only.
    ocimg("pull", "--insecure", f"{registry.host}/test/gzip")
    ocimg("export", "--name", "latest", f"{registry.host}/test/gzip", str(tmp / "layout"))
    p = subprocess.run(["umoci", "unpack", "--image", f"{tmp / 'layout'}:latest", str(tmp / "umoci-bundle")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert (tmp / "umoci-bundle" / "rootfs" / "etc" / "motd").read_text() == "hello from layer 1\n"


def test_importing_a_layout_with_a_corrupted_blob_fails(ocimg, pulled, tmp, images):
    ocimg("export", pulled[0], str(tmp / "layout"))
    layer = images.layers[0][0].digest
    path = tmp / "layout" / "blobs" / "sha256" / layer[7:]
    data = path.read_bytes()
    path.unlink()  # it was hard-linked to the store's blob
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    other = type(ocimg)(tmp / "store2", ocimg.env)
    p = other("import", str(tmp / "layout"), check=False)
    assert p.returncode == 1 and "does not match" in p.stderr


def _ocirt_can_run_containers(tmp: Path, bundle: Path) -> str | None:
    """None if `python3 -m ocirt` runs a container here, else why not."""
    v = subprocess.run([sys.executable, "-m", "ocirt", "--version"], cwd=REPO, capture_output=True, text=True)
    if v.returncode != 0:
        return f"`python3 -m ocirt --version` fails: {v.stderr.strip()[-200:]}"
    p = subprocess.run([sys.executable, "-m", "ocirt", "--root", str(tmp / "ocirt-probe"), "run", "--bundle",
                        str(bundle), "ocimg-probe"], cwd=REPO, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "ocirt", "--root", str(tmp / "ocirt-probe"), "delete", "--force",
                    "ocimg-probe"], cwd=REPO, capture_output=True)
    if p.returncode != 0:
        return f"ocirt cannot run containers yet: `ocirt run` exited {p.returncode}: {p.stderr.strip()[-300:]}"
    return None


def test_run_an_overlay_bundle_with_ocirt(ocimg, pulled, tmp):
    ocimg("bundle", pulled[0], str(tmp / "probe"), "--", "/bin/true")
    why = _ocirt_can_run_containers(tmp, tmp / "probe")
    if why:
        pytest.skip(why)
    ocimg("bundle", pulled[0], str(tmp / "b"))
    root = tmp / "ocirt-root"
    try:
        p = subprocess.run([sys.executable, "-m", "ocirt", "--root", str(root), "run", "--bundle", str(tmp / "b"),
                            "ocimg-e2e"], cwd=REPO, capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
    finally:
        subprocess.run([sys.executable, "-m", "ocirt", "--root", str(root), "delete", "--force", "ocimg-e2e"],
                       cwd=REPO, capture_output=True)
    assert (p.returncode, p.stdout) == (0, "hello from layer 3\n"), p.stderr
