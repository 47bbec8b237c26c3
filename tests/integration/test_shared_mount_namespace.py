"""A config without a mount namespace: the container inherits the runtime's (runtime-spec), is
chrooted into its rootfs, and its mounts there are taken down when it goes."""

from __future__ import annotations

import os

import pytest

from ocirt_testlib import host_mounts, run_out


@pytest.fixture
def shared(bundle, rootfs_template):
    """A bundle with its own rootfs copy and no mount namespace."""
    rootfs = bundle.own_rootfs(rootfs_template)
    lx = bundle.config["linux"]
    lx["namespaces"] = [n for n in lx["namespaces"] if n["type"] != "mount"]
    lx.pop("maskedPaths", None)
    lx.pop("readonlyPaths", None)
    bundle.config["root"]["readonly"] = False
    (rootfs / "marker").write_text("in the rootfs\n")
    bundle.write()
    return bundle


def mounts_under(path) -> list[str]:
    prefix = os.path.realpath(path) + "/"
    return [m for m in host_mounts() if m.startswith(prefix)]


def test_container_shares_the_runtimes_mount_namespace(ocirt, shared, cid):
    out = run_out(ocirt, shared, cid, "readlink /proc/self/ns/mnt")
    assert out.strip() == os.readlink("/proc/self/ns/mnt")


def test_its_root_is_the_rootfs(ocirt, shared, cid):
    assert run_out(ocirt, shared, cid, "cat /marker; test -e /work || echo no-host") == \
        "in the rootfs\nno-host\n"


def test_its_config_mounts_are_made_in_the_rootfs(ocirt, shared, cid):
    out = run_out(ocirt, shared, cid, "grep -c ' /proc proc ' /proc/self/mounts; ls /dev/null")
    assert out.split() == ["1", "/dev/null"]


def test_mounts_exist_on_the_host_while_it_runs_and_go_with_delete(ocirt, shared, cid):
    before = sorted(host_mounts())
    shared.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(shared.path), cid)
    ocirt.ok("start", cid)
    assert os.path.realpath(shared.path / "rootfs" / "proc") in mounts_under(shared.path / "rootfs")
    ocirt.ok("delete", "--force", cid)
    assert sorted(host_mounts()) == before


def test_run_leaves_no_mount_behind(ocirt, shared, cid):
    before = sorted(host_mounts())
    run_out(ocirt, shared, cid, "true")
    assert sorted(host_mounts()) == before


def test_failed_create_unmounts_what_it_mounted(ocirt, shared, cid):
    before = sorted(host_mounts())
    shared.args("/no/such/binary")
    p = ocirt("create", "--bundle", str(shared.path), cid)
    assert p.returncode == 1
    assert sorted(host_mounts()) == before
    assert ocirt.ids() == []


def test_host_root_propagation_is_left_alone(ocirt, shared, cid):
    def root_line() -> str:
        with open("/proc/self/mountinfo") as f:
            return next(line for line in f if line.split()[4] == "/")
    before = root_line()
    shared.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(shared.path), cid)
    try:
        assert root_line() == before
    finally:
        ocirt.ok("delete", "--force", cid)


def test_exec_enters_the_containers_root(ocirt, shared, cid):
    shared.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(shared.path), cid)
    ocirt.ok("start", cid)
    try:
        p = ocirt("exec", cid, "cat", "/marker")
        assert p.returncode == 0, p.stderr.decode()
        assert p.stdout == b"in the rootfs\n"
    finally:
        ocirt.ok("delete", "--force", cid)


def test_readonly_root_without_mount_namespace_is_refused(ocirt, shared, cid):
    shared.config["root"]["readonly"] = True
    shared.write()
    p = ocirt("create", "--bundle", str(shared.path), cid)
    assert p.returncode == 1
    assert b"root.readonly: needs a mount namespace" in p.stderr
    assert ocirt.ids() == []


def test_mounts_of_a_killed_create_go_with_delete(ocirt, shared, cid):
    # Killed once the rootfs is built in our namespace: the record names the rootfs, and
    # delete takes its mounts down.
    from ocirt_testlib import paused_at
    shared.args("sleep", "100")
    p = paused_at(ocirt, "create:created", "create", "--bundle", str(shared.path), cid)
    assert mounts_under(shared.path / "rootfs") != []
    p.kill()
    p.wait()
    ocirt.ok("delete", "--force", cid)
    assert mounts_under(shared.path / "rootfs") == []
    assert ocirt.ids() == []
