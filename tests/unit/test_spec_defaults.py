"""default_spec(): what `ocirt spec` writes, like `runc spec` (and `runc spec --rootless`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ocirt.config import defaults
from ocirt.config.defaults import default_spec
from ocirt.config.validate import validate_config

SPECS = Path(__file__).resolve().parents[2] / "specs"


def test_default_spec_validates() -> None:
    validate_config(default_spec())


def test_rootless_spec_validates() -> None:
    validate_config(default_spec(rootless=True))


def test_default_spec_validates_with_jsonschema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    referencing = pytest.importorskip("referencing")
    from referencing.jsonschema import DRAFT4

    defs = json.loads((SPECS / "defs.json").read_text())
    reg = referencing.Registry().with_resource("defs.json", referencing.Resource.from_contents(
        defs, default_specification=DRAFT4))
    v = jsonschema.Draft4Validator(json.loads((SPECS / "config-schema.json").read_text()), registry=reg)
    for rootless in (False, True):
        assert list(v.iter_errors(default_spec(rootless))) == []


@pytest.mark.parametrize("rootless", [False, True])
def test_no_inheritable_capabilities(rootless: bool) -> None:
    caps = default_spec(rootless)["process"]["capabilities"]
    assert "inheritable" not in caps and "ambient" not in caps
    for kind in ("bounding", "effective", "permitted"):
        assert caps[kind] == ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def test_process_defaults_match_runc() -> None:
    p = default_spec()["process"]
    assert p["args"] == ["sh"] and p["terminal"] is True and p["cwd"] == "/"
    assert p["env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"]
    assert p["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    assert p["noNewPrivileges"] is True
    assert p["user"] == {"uid": 0, "gid": 0}


def test_top_level_defaults() -> None:
    s = default_spec()
    assert s["ociVersion"] == "1.3.0"
    assert s["hostname"] == "ocirt"
    assert s["root"] == {"path": "rootfs", "readonly": True}


def test_default_mounts_match_runc() -> None:
    m = {x["destination"]: x for x in default_spec()["mounts"]}
    assert list(m) == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]
    assert "gid=5" in m["/dev/pts"]["options"]
    assert m["/sys"]["type"] == "sysfs" and "ro" in m["/sys"]["options"]
    assert m["/sys/fs/cgroup"]["type"] == "cgroup" and "ro" in m["/sys/fs/cgroup"]["options"]


def test_masked_and_readonly_paths_match_runc() -> None:
    lx = default_spec()["linux"]
    assert "/proc/kcore" in lx["maskedPaths"] and "/sys/firmware" in lx["maskedPaths"]
    assert len(lx["maskedPaths"]) == 10
    assert lx["readonlyPaths"] == ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    assert lx["resources"] == {"devices": [{"allow": False, "access": "rwm"}]}


@pytest.mark.parametrize("v2", [False, True])
def test_cgroup_namespace_only_on_unified_hosts(monkeypatch: pytest.MonkeyPatch, v2: bool) -> None:
    monkeypatch.setattr(defaults, "_cgroup2_unified", lambda: v2)
    types = [n["type"] for n in default_spec()["linux"]["namespaces"]]
    assert types == ["pid", "network", "ipc", "uts", "mount"] + (["cgroup"] if v2 else [])


def test_rootless_user_namespace_maps_the_caller() -> None:
    lx = default_spec(rootless=True)["linux"]
    types = [n["type"] for n in lx["namespaces"]]
    assert "network" not in types and types[-1] == "user"
    assert lx["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert lx["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    assert "resources" not in lx


def test_rootless_mounts() -> None:
    m = {x["destination"]: x for x in default_spec(rootless=True)["mounts"]}
    assert m["/sys"] == {"destination": "/sys", "type": "none", "source": "/sys",
                         "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
    assert not any(o.startswith(("gid=", "uid=")) for x in m.values() for o in x.get("options", ()))
    assert "/dev/pts" in m


def test_each_call_returns_a_fresh_document() -> None:
    a = default_spec()
    a["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    assert "CAP_SYS_ADMIN" not in default_spec()["process"]["capabilities"]["bounding"]
