"""ocirt.jsonio reads and writes exactly what the json package does, without importing it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ocirt import jsonio

REPO = Path(__file__).resolve().parents[2]
SAMPLES = [{"a": 1, "b": [1, 2.5, None, True, "x\u00e9\""], "c": {}, "d": []}, [], {}, "s", 3,
           {"n": {"m": [{"k": "v"}]}}, -1.5e300]


@pytest.mark.parametrize("obj", SAMPLES)
def test_dumps_matches_json(obj):
    assert jsonio.dumps(obj) == json.dumps(obj)
    assert jsonio.dumps(obj, compact=True) == json.dumps(obj, separators=(",", ":"))
    for indent in (2, 4, "\t"):
        assert jsonio.dumps(obj, indent=indent) == json.dumps(obj, indent=indent)


@pytest.mark.parametrize("obj", SAMPLES)
def test_loads_round_trips(obj):
    assert jsonio.loads(" \n" + json.dumps(obj, indent=2) + "\n ") == obj


@pytest.mark.parametrize("text", ["{bad json", "{", "[1,", '{"a": }', '{"a":1} x', ""])
def test_malformed_input_raises_jsons_error_even_when_json_was_never_imported(text):
    # In a fresh interpreter without json loaded, as the launcher runs.
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from ocirt import jsonio\n"
            "try:\n    jsonio.loads(%r)\nexcept ValueError as e:\n"
            "    print(type(e).__name__, e.lineno, e.colno)\n") % (str(REPO), text)
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith("JSONDecodeError 1 ")


def test_importing_it_does_not_import_re_or_json():
    code = ("import sys; sys.path.insert(0, %r)\nimport ocirt.jsonio\n"
            "print('re' in sys.modules, 'json' in sys.modules)") % str(REPO)
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.split() == ["False", "False"]
