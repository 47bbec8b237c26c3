"""`ocirt validate`: every problem of a bundle at once, with JSON paths, without side effects."""

from __future__ import annotations

import json
import os

import pytest


def _validate(ocirt, bundle, *flags: str):
    p = ocirt("validate", "--bundle", str(bundle.path), "--format", "json", *flags)
    return p.returncode, json.loads(p.stdout)


def _paths(problems, level: str = "error") -> list[str]:
    return [p["path"] for p in problems if p["level"] == level]


def _cap_bounding() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))


def _host_errors(ocirt, bundle) -> list[str]:
    """The error paths of --host for a bundle that is valid without it."""
    bundle.write()
    assert _validate(ocirt, bundle) == (0, [])
    code, problems = _validate(ocirt, bundle, "--host")
    assert code == 1
    return _paths(problems)


def test_valid_bundle_is_reported_valid(ocirt, bundle) -> None:
    p = ocirt("validate", "--bundle", str(bundle.path))
    assert p.returncode == 0, p.stdout
    assert p.stdout == b"valid\n"


def test_every_schema_violation_is_reported(ocirt, bundle) -> None:
    bundle.config["ociVersion"] = 5
    bundle.config["process"]["terminal"] = "no"
    del bundle.config["process"]["cwd"]
    bundle.write()
    code, problems = _validate(ocirt, bundle)
    assert code == 1
    assert set(_paths(problems)) == {"ociVersion", "process.terminal", "process.cwd"}


def test_every_semantic_problem_is_reported(ocirt, bundle) -> None:
    bundle.config["process"]["env"] += ["NOEQUALS", "=empty"]
    bundle.config["linux"]["namespaces"].append({"type": "pid"})
    bundle.config["linux"]["sysctl"] = {"kernel.hostname": "x"}
    bundle.write()
    code, problems = _validate(ocirt, bundle)
    assert code == 1
    n = len(bundle.config["process"]["env"])
    last_ns = len(bundle.config["linux"]["namespaces"]) - 1
    assert _paths(problems) == [f"process.env[{n - 2}]", f"process.env[{n - 1}]",
                                f"linux.namespaces[{last_ns}].type",
                                'linux.sysctl["kernel.hostname"]']


def test_text_format_is_one_line_per_problem_with_its_path(ocirt, bundle) -> None:
    bundle.config["process"]["cwd"] = "relative"
    bundle.config["ociVersion"] = 1
    bundle.write()
    p = ocirt("validate", "--bundle", str(bundle.path))
    assert p.returncode == 1
    assert p.stdout.decode().splitlines() == [
        "error: ociVersion: 1 is not of type 'string'",
        "error: process.cwd: 'relative' is not an absolute path",
        "2 error(s), 0 warning(s)",
    ]


def test_warnings_alone_do_not_fail(ocirt, bundle) -> None:
    bundle.config["process"]["capabilities"]["bounding"].append("CAP_FROM_THE_FUTURE")
    bundle.write()
    code, problems = _validate(ocirt, bundle)
    assert code == 0
    last = len(bundle.config["process"]["capabilities"]["bounding"]) - 1
    assert _paths(problems, "warning") == [f"process.capabilities.bounding[{last}]"]


def test_missing_rootfs_is_an_error(ocirt, bundle) -> None:
    bundle.config["root"]["path"] = str(bundle.path / "nowhere")
    bundle.write()
    code, problems = _validate(ocirt, bundle)
    assert code == 1
    assert _paths(problems) == ["root.path"]
    assert "does not exist" in problems[0]["message"]


def test_missing_bundle_is_an_error(ocirt, tmp_path) -> None:
    p = ocirt("validate", "--bundle", str(tmp_path / "none"))
    assert p.returncode == 1
    assert b"does not exist" in p.stdout


def test_program_not_in_rootfs_is_an_error(ocirt, bundle) -> None:
    bundle.args("no-such-program")
    code, problems = _validate(ocirt, bundle)
    assert code == 1
    assert _paths(problems) == ["process.args[0]"]
    assert "PATH=" in problems[0]["message"]


def test_program_found_through_a_symlink_inside_the_rootfs(ocirt, bundle) -> None:
    # busybox's applets are symlinks to /bin/busybox, resolved inside the rootfs
    bundle.args("/bin/sh", "-c", "true")
    assert _validate(ocirt, bundle) == (0, [])


def test_symlink_out_of_the_rootfs_is_not_followed(ocirt, bundle, rootfs_template) -> None:
    rootfs = bundle.own_rootfs(rootfs_template)
    assert os.access("/usr/bin/python3", os.X_OK) and not (rootfs / "usr/bin/python3").exists()
    os.symlink("/usr/bin/python3", rootfs / "bin" / "hostpython")
    bundle.args("hostpython")
    code, problems = _validate(ocirt, bundle)
    assert code == 1
    assert _paths(problems) == ["process.args[0]"]


def test_program_under_a_bind_mount_is_only_a_warning(ocirt, bundle, tmp_path) -> None:
    bundle.config["mounts"].append({"destination": "/opt/tools", "type": "bind",
                                    "source": str(tmp_path), "options": ["bind"]})
    bundle.args("/opt/tools/run")
    code, problems = _validate(ocirt, bundle)
    assert code == 0
    assert _paths(problems, "warning") == ["process.args[0]"]
    assert f"mounts[{len(bundle.config['mounts']) - 1}]" in problems[0]["message"]


def test_validate_leaves_nothing_behind(ocirt, bundle) -> None:
    before = sorted(os.listdir(bundle.path))
    ocirt("validate", "--bundle", str(bundle.path), "--host")
    assert sorted(os.listdir(bundle.path)) == before
    assert ocirt.ids() == []


def test_unknown_format_is_a_usage_error(ocirt, bundle) -> None:
    p = ocirt("validate", "--bundle", str(bundle.path), "--format", "yaml")
    assert p.returncode == 1
    assert b"invalid format" in p.stderr


def test_host_reports_a_missing_cgroup_controller(ocirt, bundle) -> None:
    if os.path.isdir("/sys/fs/cgroup/rdma") or "rdma" in open(
            "/sys/fs/cgroup/unified/cgroup.controllers").read().split():
        pytest.skip("this host has the rdma controller")
    bundle.config["linux"]["resources"] = {"rdma": {"mlx5_0": {"hcaHandles": 1}}}
    assert _host_errors(ocirt, bundle) == ["linux.resources.rdma"]


def test_host_reports_a_missing_lsm(ocirt, bundle) -> None:
    if os.path.exists("/sys/kernel/security/apparmor"):
        pytest.skip("AppArmor is enabled here")
    bundle.config["process"]["apparmorProfile"] = "ocirt-test"
    assert _host_errors(ocirt, bundle) == ["process.apparmorProfile"]


def test_host_warns_of_capabilities_outside_the_bounding_set(ocirt, bundle) -> None:
    from ocirt.features_data import CAPABILITIES
    missing = [name for n, name in enumerate(CAPABILITIES) if not _cap_bounding() >> n & 1]
    if not missing:
        pytest.skip("the bounding set here is complete")
    bundle.config["process"]["capabilities"]["bounding"] = [missing[0]]
    bundle.write()
    code, problems = _validate(ocirt, bundle, "--host")
    assert code == 0
    assert _paths(problems, "warning") == ["process.capabilities.bounding[0]"]


def test_host_reports_a_missing_network_device(ocirt, bundle) -> None:
    bundle.config["linux"]["netDevices"] = {"ocirtnosuch0": {"name": "eth1"}}
    assert _host_errors(ocirt, bundle) == ["linux.netDevices.ocirtnosuch0"]


def test_host_reports_a_cpu_that_is_not_online(ocirt, bundle) -> None:
    with open("/sys/devices/system/cpu/online") as f:
        last = max(int(n) for n in f.read().strip().replace("-", ",").split(","))
    bundle.config["process"]["execCPUAffinity"] = {"final": str(last + 1)}
    assert _host_errors(ocirt, bundle) == ["process.execCPUAffinity.final"]


def test_intel_rdt_is_an_error_naming_the_field(ocirt, bundle) -> None:
    bundle.config["linux"]["intelRdt"] = {"closID": "x"}
    bundle.write()
    code, problems = _validate(ocirt, bundle)
    assert code == 1
    assert _paths(problems) == ["linux.intelRdt"]
    if not os.path.isdir("/sys/fs/resctrl/info"):
        assert "no resctrl filesystem" in problems[0]["message"]


def test_creates_own_checks_report_every_problem_with_original_indexes(ocirt, bundle) -> None:
    n = len(bundle.config["mounts"])
    bundle.config["mounts"] += [
        {"destination": "/a", "type": "tmpfs", "source": "tmpfs", "options": ["remount"]},
        {"destination": "/b", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/c", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]},
    ]
    bundle.config["process"]["user"]["umask"] = 99999
    bundle.write()
    code, problems = _validate(ocirt, bundle)
    assert code == 1
    assert _paths(problems) == ["process.user.umask", f"mounts[{n}].options",
                                f"mounts[{n + 2}].options"]


def test_host_reports_a_missing_cgroup_file(ocirt, bundle, cid) -> None:
    from ocirt_testlib import blkio_weight_file, cgroup_mounts
    if "blkio" not in cgroup_mounts()[0] or blkio_weight_file() is not None:
        pytest.skip("needs a cgroup v1 blkio hierarchy without a weight file")
    bundle.config["linux"]["resources"] = {"blockIO": {"weight": 300}}
    assert _host_errors(ocirt, bundle) == ["linux.resources.blockIO.weight"]
    # what create itself then says, once it has made the cgroup
    p = ocirt("create", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1 and b"linux.resources.blockIO.weight" in p.stderr
