"""The command line as managers and users see it: versions, usage errors, exit codes."""

from __future__ import annotations

import json
import os

import pytest

from ocirt_testlib import cgroup_dirs_named


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


@pytest.mark.skipif(os.path.isdir("/run/systemd/system"), reason="systemd runs here")
@pytest.mark.parametrize("flag", ["--systemd-cgroup", "--cgroup-manager=systemd"])
def test_systemd_cgroup_without_systemd_is_a_clear_error(ocirt, bundle, cid, flag):
    bundle.config["linux"]["cgroupsPath"] = f"system.slice:ocirt:{cid}"
    bundle.write()
    p = ocirt("create", "--bundle", str(bundle.path), cid, global_args=(flag,))
    err = p.stderr.decode().strip()
    assert p.returncode == 1 and "systemd is not running" in err and "\n" not in err, err
    assert ocirt.ids() == []
    assert cgroup_dirs_named(cid) == []


# --- --debug ---------------------------------------------------------------------------

def debug_run(ocirt, bundle, cid, *global_args: str):
    log = bundle.path / "debug.log"
    p = ocirt("run", "--bundle", str(bundle.path), cid,
              global_args=("--debug", "--log", str(log), *global_args))
    return p, log.read_text()


def test_debug_names_every_setup_step(ocirt, bundle, cid):
    bundle.config["hooks"] = {"prestart": [{"path": "/bin/true"}]}
    bundle.args("true")
    p, text = debug_run(ocirt, bundle, cid)
    assert p.returncode == 0, p.stderr
    for step in (f"config loaded: {bundle.path}/config.json",
                 "nsexec container setup: creating namespaces ",
                 "mounts[0]: mounting proc on /proc (proc)",
                 "cgroup: creating ", "/cgroup.procs", "running prestart hook #0: /bin/true",
                 "init: jailing into ", "init: closing the pipe to signal completion",
                 "init: about to exec /bin/true", "exited: status 0"):
        assert step in text, step


def test_debug_lines_in_json_are_one_object_each(ocirt, bundle, cid):
    bundle.args("true")
    p, text = debug_run(ocirt, bundle, cid, "--log-format", "json")
    assert p.returncode == 0, p.stderr
    entries = [json.loads(line) for line in text.splitlines()]
    assert entries and all(e["level"] == "debug" and e["msg"] and e["time"] for e in entries)


def test_a_failing_create_with_debug_ends_with_its_one_error(ocirt, bundle, cid):
    bundle.args("/no/such/binary")
    log = bundle.path / "debug.log"
    p = ocirt("create", "--bundle", str(bundle.path), cid,
              global_args=("--debug", "--log", str(log), "--log-format", "json"))
    assert p.returncode == 1
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["level"] for e in entries].count("error") == 1
    assert entries[-1]["level"] == "error" and "/no/such/binary" in entries[-1]["msg"]
    assert any("child process in init()" in e["msg"] for e in entries)


def test_without_debug_a_run_writes_no_log_line(ocirt, bundle, cid):
    bundle.args("true")
    p = ocirt("run", "--bundle", str(bundle.path), cid)
    assert p.returncode == 0 and p.stderr == b""


def test_the_debug_log_never_reaches_the_container_process(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    log = bundle.path / "debug.log"
    ocirt.ok("run", "--detach", "--bundle", str(bundle.path), cid,
             global_args=("--debug", "--log", str(log)))
    pid = ocirt.state(cid)["pid"]
    fds = {fd: os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    assert sorted(fds) == ["0", "1", "2"], fds
    assert str(log) not in fds.values()
    assert "init: about to exec /bin/sleep" in log.read_text()
