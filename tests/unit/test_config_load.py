"""load_bundle / load_process: file errors, rootfs resolution, full validation."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ocirt.config.defaults import default_spec
from ocirt.config.load import load_bundle, load_process
from ocirt.errors import ConfigError


def make_bundle(tmp_path: Path, cfg: Any = None, rootfs: str = "rootfs") -> Path:
    b = tmp_path / "bundle"
    b.mkdir()
    (b / rootfs).mkdir()
    text = cfg if isinstance(cfg, str) else json.dumps(default_spec() if cfg is None else cfg)
    (b / "config.json").write_text(text)
    return b


def test_loads_a_bundle_and_resolves_root_path(tmp_path: Path) -> None:
    b = make_bundle(tmp_path)
    bundle, cfg = load_bundle(str(b))
    assert bundle == str(b)
    assert cfg["root"]["path"] == os.path.realpath(b / "rootfs")
    assert cfg["process"]["args"] == ["sh"]


def test_relative_bundle_path_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_bundle(tmp_path)
    monkeypatch.chdir(tmp_path)
    bundle, cfg = load_bundle("bundle")
    assert bundle == str(tmp_path / "bundle")
    assert os.path.isabs(cfg["root"]["path"])


def test_absolute_root_path_is_kept(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    cfg = default_spec()
    cfg["root"]["path"] = str(other)
    bundle, loaded = load_bundle(str(make_bundle(tmp_path, cfg)))
    assert loaded["root"]["path"] == os.path.realpath(other)


def test_symlinked_rootfs_is_resolved(tmp_path: Path) -> None:
    b = make_bundle(tmp_path, rootfs="real")
    (b / "rootfs").symlink_to("real")
    _, cfg = load_bundle(str(b))
    assert cfg["root"]["path"] == os.path.realpath(b / "real")


def test_missing_bundle(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^bundle: .*/nope does not exist$"):
        load_bundle(str(tmp_path / "nope"))


def test_bundle_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(ConfigError, match=r"^bundle: .*/file is not a directory$"):
        load_bundle(str(f))


def test_missing_config_json(tmp_path: Path) -> None:
    b = make_bundle(tmp_path)
    (b / "config.json").unlink()
    with pytest.raises(ConfigError, match=r"^config.json: .*/bundle/config.json: no such file$"):
        load_bundle(str(b))


def test_invalid_json_reports_line_and_column(tmp_path: Path) -> None:
    b = make_bundle(tmp_path, '{\n  "ociVersion": "1.3.0",\n  "root": }\n')
    with pytest.raises(ConfigError) as ei:
        load_bundle(str(b))
    assert str(ei.value) == "config.json: invalid JSON at line 3 column 11: Expecting value"


def test_invalid_utf8_reported_at_its_field(tmp_path: Path) -> None:
    b = make_bundle(tmp_path)
    (b / "config.json").write_bytes(b'{"ociVersion": "\xff"}')
    with pytest.raises(ConfigError, match="^config.json: ociVersion: is not valid UTF-8 text$"):
        load_bundle(str(b))


def test_schema_error_from_bundle_names_the_path(tmp_path: Path) -> None:
    cfg = default_spec()
    cfg["process"]["terminal"] = "yes"
    with pytest.raises(ConfigError, match=r"^config.json: process.terminal: 'yes' is not of type 'boolean'$"):
        load_bundle(str(make_bundle(tmp_path, cfg)))


def test_semantic_error_from_bundle_names_the_path(tmp_path: Path) -> None:
    cfg = default_spec()
    cfg["process"]["cwd"] = "tmp"
    with pytest.raises(ConfigError, match=r"^config.json: process.cwd: 'tmp' is not an absolute path$"):
        load_bundle(str(make_bundle(tmp_path, cfg)))


def test_missing_root_rejected(tmp_path: Path) -> None:
    cfg = default_spec()
    del cfg["root"]
    with pytest.raises(ConfigError, match=r"^config.json: root: is a required property$"):
        load_bundle(str(make_bundle(tmp_path, cfg)))


def test_missing_rootfs_directory_names_root_path(tmp_path: Path) -> None:
    cfg = default_spec()
    cfg["root"]["path"] = "nothere"
    with pytest.raises(ConfigError, match=r"^config.json: root.path: rootfs .*/bundle/nothere does not exist$"):
        load_bundle(str(make_bundle(tmp_path, cfg)))


def test_rootfs_that_is_a_file_names_root_path(tmp_path: Path) -> None:
    b = make_bundle(tmp_path)
    (b / "file").write_text("")
    cfg = default_spec()
    cfg["root"]["path"] = "file"
    (b / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match=r"^config.json: root.path: rootfs .*/file is not a directory$"):
        load_bundle(str(b))


def test_load_process(tmp_path: Path) -> None:
    p = tmp_path / "process.json"
    p.write_text(json.dumps({"args": ["ls"], "cwd": "/", "env": ["A=1"]}))
    assert load_process(str(p))["args"] == ["ls"]


def test_load_process_error_names_the_file_and_field(tmp_path: Path) -> None:
    p = tmp_path / "proc.json"
    p.write_text(json.dumps({"args": ["ls"], "cwd": 5}))
    with pytest.raises(ConfigError) as ei:
        load_process(str(p))
    assert str(ei.value) == f"{p}: cwd: 5 is not of type 'string'"


def test_load_process_invalid_json(tmp_path: Path) -> None:
    p = tmp_path / "proc.json"
    p.write_text("[")
    with pytest.raises(ConfigError, match="invalid JSON at line 1 column 2"):
        load_process(str(p))
