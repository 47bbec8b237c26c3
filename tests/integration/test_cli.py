"""The command line as managers and users see it: versions, usage errors, exit codes."""

from __future__ import annotations

import json


def test_version_names_ocirt_and_the_spec(ocirt):
    out = ocirt.ok("--version").stdout.decode()
    assert out.startswith("ocirt version ") and "spec: 1.3.0" in out


def test_unknown_command_fails_with_status_3_as_runc(ocirt):
    p = ocirt("frobnicate")
    assert p.returncode == 3 and b"No help topic for 'frobnicate'" in p.stderr


def test_unknown_flag_fails_with_a_usage_error(ocirt):
    p = ocirt("create", "--frob", "x")
    assert p.returncode == 1 and b"flag provided but not defined: -frob" in p.stderr


def test_missing_arguments_fail(ocirt):
    for verb in ("create", "start", "state", "delete", "kill"):
        p = ocirt(verb)
        assert p.returncode == 1 and b"requires" in p.stderr, verb


def test_invalid_log_format_fails(ocirt):
    p = ocirt("list", global_args=("--log-format", "xml"))
    assert p.returncode == 1 and b"invalid log-format" in p.stderr


def test_spec_writes_a_valid_default_config(ocirt, tmp_path):
    ocirt.ok("spec", "--bundle", str(tmp_path))
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["ociVersion"] == "1.3.0" and cfg["process"]["args"] == ["sh"]
    assert "inheritable" not in cfg["process"]["capabilities"]


def test_spec_refuses_to_overwrite(ocirt, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    p = ocirt("spec", "--bundle", str(tmp_path))
    assert p.returncode == 1 and b"exists" in p.stderr


def test_rootless_spec_has_a_user_namespace(ocirt, tmp_path):
    ocirt.ok("spec", "--rootless", "--bundle", str(tmp_path))
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert any(n["type"] == "user" for n in cfg["linux"]["namespaces"])
    assert cfg["linux"]["uidMappings"]


def test_systemd_cgroup_without_systemd_is_a_clear_error(ocirt, bundle, cid):
    p = ocirt("create", "--bundle", str(bundle.path), cid, global_args=("--systemd-cgroup",))
    assert p.returncode == 1 and b"systemd" in p.stderr
    assert ocirt.ids() == []
