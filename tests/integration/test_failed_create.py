"""Any failure during create leaves nothing behind: no state dir, cgroup, mount or process."""

from __future__ import annotations

import pytest

from ocirt_testlib import cgroup_dirs_named, host_mounts, pids_with_cmdline


def break_mount_source(b):
    b.config["mounts"].append({"destination": "/data", "type": "bind",
                               "source": "/nonexistent/source", "options": ["rbind"]})


def break_hook(b):
    b.config["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}


def break_binary(b):
    b.args("/no/such/binary")


def break_sysctl(b):
    b.config["linux"]["sysctl"] = {"kernel.core_pattern": "|/tmp/x"}


def break_args_path(b):
    b.args("no-such-command-anywhere")


def break_cgroup_dir(b):
    # Valid JSON, but no directory can be made under a cgroupfs file: fails while the init
    # already exists (cgroups are made in parallel with its rootfs).
    b.config["linux"]["cgroupsPath"] = "/cgroup.procs/x"


def break_cgroup_limit(b):
    # A limit the kernel refuses only when it is written.
    b.config["linux"].setdefault("resources", {})["cpu"] = {"cpus": "0-4095"}


@pytest.mark.parametrize("breaker", [break_mount_source, break_hook, break_binary, break_sysctl,
                                     break_args_path, break_cgroup_dir, break_cgroup_limit])
def test_failed_create_leaves_nothing_behind(ocirt, bundle, cid, breaker):
    before = sorted(host_mounts())
    breaker(bundle)
    bundle.write()
    p = ocirt("create", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    assert len(p.stderr.strip().splitlines()) >= 1
    assert ocirt.ids() == []
    assert cgroup_dirs_named(cid) == []
    assert sorted(host_mounts()) == before
    assert pids_with_cmdline(cid) == []


def test_missing_binary_error_names_it(ocirt, bundle, cid):
    bundle.args("no-such-command-anywhere")
    p = ocirt("create", "--bundle", str(bundle.path), cid)
    assert b'no-such-command-anywhere' in p.stderr
    assert b"executable file not found in $PATH" in p.stderr


def test_invalid_config_fails_before_anything_exists(ocirt, bundle, cid):
    bundle.config["process"]["args"] = []
    bundle.write()
    p = ocirt("create", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    assert b"process.args" in p.stderr
    assert ocirt.ids() == []


def test_json_log_gets_exactly_one_error_line(ocirt, bundle, cid, tmp_path):
    import json
    log = tmp_path / "log.json"
    bundle.args("no-such-command-anywhere")
    p = ocirt("create", "--bundle", str(bundle.path), cid,
              global_args=("--log", str(log), "--log-format", "json"))
    assert p.returncode == 1
    lines = log.read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "error" and "executable file not found" in entry["msg"]
    assert set(entry) == {"level", "msg", "time"}


def test_missing_bundle_is_a_clear_error(ocirt, cid, tmp_path):
    p = ocirt("create", "--bundle", str(tmp_path / "nowhere"), cid)
    assert p.returncode == 1 and b"nowhere" in p.stderr
    assert ocirt.ids() == []


@pytest.mark.parametrize("field,value", [
    ("intelRdt", {"closID": "x"}),
])
def test_unsupported_linux_fields_fail_create_naming_the_field(ocirt, bundle, cid, field, value):
    bundle.config["linux"][field] = value
    bundle.args("true")
    p = ocirt("create", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    assert f"linux.{field}".encode() in p.stderr and b"not supported" in p.stderr
    assert ocirt.ids() == []


def test_malformed_config_json_names_line_and_column(ocirt, bundle, cid):
    (bundle.path / "config.json").write_text('{"ociVersion": "1.3.0",\n  bad}')
    p = ocirt("create", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    assert b"config.json: invalid JSON at line 2 column 3" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert ocirt.ids() == []
