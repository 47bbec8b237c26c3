"""Validation stays cheap: it runs on every `create`, in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GOOD = Path(__file__).parent / "fixtures" / "config" / "good"

PROBE = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import json, os
doc = json.load(open(sys.argv[2]))
t0 = time.perf_counter()
from ocirt.config.validate import validate_config
validate_config(doc)
t1 = time.perf_counter()
print(json.dumps({"ms": (t1 - t0) * 1e3, "modules": sorted(sys.modules)}))
"""


def probe(fixture: str) -> dict:
    # Warm the .pyc cache first so the figure is the steady one a real install sees.
    for _ in range(2):
        r = subprocess.run([sys.executable, "-I", "-S", "-c", PROBE, str(REPO), str(GOOD / fixture)],
                           capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


@pytest.mark.parametrize("fixture", ["default.json", "big-seccomp.json"])
def test_validation_imports_neither_jsonschema_nor_typing(fixture: str) -> None:
    mods = probe(fixture)["modules"]
    for heavy in ("jsonschema", "referencing", "typing"):
        assert heavy not in mods


@pytest.mark.parametrize("fixture", ["default.json", "big-seccomp.json"])
def test_import_plus_validate_is_fast(fixture: str) -> None:
    # Measured ~2 ms here; the bound leaves room for a loaded CI machine.
    best = min(probe(fixture)["ms"] for _ in range(3))
    assert best < 15, f"import + validate took {best:.1f} ms"
