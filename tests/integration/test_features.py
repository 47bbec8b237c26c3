"""`ocirt features`: a complete, schema-valid document of what this build implements."""

from __future__ import annotations

import json
from pathlib import Path

from ocirt.config.validate import validate_features


def _features(ocirt) -> dict:
    return json.loads(ocirt.ok("features").stdout)


def test_features_document_is_schema_valid(ocirt):
    validate_features(_features(ocirt))


def test_features_lists_every_memory_policy_mode_and_flag(ocirt):
    with open(Path(__file__).resolve().parents[2] / "specs" / "defs.json") as f:
        defs = json.load(f)["definitions"]
    policy = _features(ocirt)["linux"]["memoryPolicy"]
    assert sorted(policy["modes"]) == sorted(defs["MemoryPolicyMode"]["enum"])
    assert sorted(policy["flags"]) == sorted(defs["MemoryPolicyFlag"]["enum"])


def test_features_says_intel_rdt_is_not_implemented(ocirt):
    assert _features(ocirt)["linux"]["intelRdt"] == {"enabled": False}
