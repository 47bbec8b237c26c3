"""The compiled validators: up to date with specs/, and in agreement with jsonschema."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import pytest

from ocirt.config import _schema_config, _schema_features, _schema_state
from ocirt.config.defaults import default_spec

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO / "specs"
GOOD = Path(__file__).parent / "fixtures" / "config" / "good"

jsonschema = pytest.importorskip("jsonschema")
referencing = pytest.importorskip("referencing")


def gen_module() -> ModuleType:
    path = str(REPO / "hack" / "gen-validator")
    loader = importlib.machinery.SourceFileLoader("gen_validator", path)
    spec = importlib.util.spec_from_loader("gen_validator", loader)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def reference_validator(schema_file: str, pointer: str = "") -> Any:
    from referencing.jsonschema import DRAFT4

    defs = json.loads((SPECS / "defs.json").read_text())
    registry = referencing.Registry().with_resource(
        "defs.json", referencing.Resource.from_contents(defs, default_specification=DRAFT4))
    schema = json.loads((SPECS / schema_file).read_text())
    if pointer:
        # Check a sub-schema with its file's definitions still reachable by "#/definitions/...".
        sub = schema
        for tok in pointer.strip("/").split("/"):
            sub = sub[tok]
        schema = dict(sub, definitions=schema.get("definitions", {}))
    return jsonschema.Draft4Validator(schema, registry=registry)


def test_generated_modules_are_up_to_date() -> None:
    gen = gen_module()
    for name, text in gen.generate(str(SPECS)).items():
        current = (REPO / "ocirt" / "config" / name).read_text()
        assert current == text, f"ocirt/config/{name} is stale: run hack/gen-validator"


def test_gen_validator_check_mode_passes() -> None:
    r = subprocess.run([sys.executable, str(REPO / "hack" / "gen-validator"), "--check"], capture_output=True)
    assert r.returncode == 0, r.stderr


def test_generator_refuses_unsupported_keywords(tmp_path: Path) -> None:
    gen = gen_module()
    for f in SPECS.glob("*.json"):
        (tmp_path / f.name).write_text(f.read_text())
    cfg = json.loads((SPECS / "config-schema.json").read_text())
    cfg["properties"]["hostname"] = {"type": "string", "format": "hostname"}
    (tmp_path / "config-schema.json").write_text(json.dumps(cfg))
    with pytest.raises(SystemExit, match="unsupported keyword"):
        gen.generate(str(tmp_path))


def test_generator_refuses_additional_properties_false(tmp_path: Path) -> None:
    gen = gen_module()
    for f in SPECS.glob("*.json"):
        (tmp_path / f.name).write_text(f.read_text())
    cfg = json.loads((SPECS / "config-schema.json").read_text())
    cfg["additionalProperties"] = False
    (tmp_path / "config-schema.json").write_text(json.dumps(cfg))
    with pytest.raises(SystemExit, match="extensibility"):
        gen.generate(str(tmp_path))


@pytest.mark.parametrize("schema", ["config-schema.json", "state-schema.json", "features-schema.json",
                                    "defs.json"])
def test_schemas_are_valid_draft4(schema: str) -> None:
    doc = json.loads((SPECS / schema).read_text())
    assert doc["$schema"] == "http://json-schema.org/draft-04/schema#"
    jsonschema.Draft4Validator.check_schema(doc)


# -- differential: compiled vs jsonschema on good documents and on many broken ones ------------

WRONG_TYPES: dict[type, list[Any]] = {
    str: [7, None],
    bool: ["true", 0],
    int: ["1", 1.0, True],
    float: ["1"],
    list: [{}, "x"],
    dict: [[], 3],
}
EXTRA_VALUES: dict[type, list[Any]] = {
    str: ["bogus-Value", ""],
    int: [-1, -(2**63) - 1, 2**32, 2**64, 0],
    list: [[]],
    dict: [{}],
}


def walk(node: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, path + (i,))


def get(doc: Any, path: tuple) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def mutations(doc: dict[str, Any]) -> Iterator[tuple[str, tuple, Any]]:
    """(kind, path, value): replace the node at path by value, or delete it ("del").

    Sibling array items of the same shape hit the same schema, so each mutation is tried once
    per path with indexes blurred (keeps jsonschema's share of the run time reasonable)."""
    seen = set()
    for path in walk(doc):
        if not path:
            continue
        node = get(doc, path)
        t = type(node)
        cands = [("set", v) for v in WRONG_TYPES.get(t, []) + EXTRA_VALUES.get(t, [])]
        if isinstance(path[-1], str):
            cands.append(("del", None))
        if isinstance(node, dict):
            cands.append(("add", {"any": 1}))
        shape = tuple(p if isinstance(p, str) else 0 for p in path)
        for kind, v in cands:
            key = (shape, kind, repr(v))
            if key in seen:
                continue
            seen.add(key)
            if kind == "add":
                yield kind, path + ("unknownField",), v
            else:
                yield kind, path, v


def apply(doc: dict[str, Any], kind: str, path: tuple, value: Any) -> Any:
    parent = get(doc, path[:-1])
    key = path[-1]
    if kind == "del":
        old = parent.pop(key)
        return lambda: parent.__setitem__(key, old) if isinstance(parent, dict) else None
    if kind == "add":
        parent[key] = value
        return lambda: parent.pop(key)
    old = parent[key]
    parent[key] = value
    return lambda: parent.__setitem__(key, old)


def all_errors(errors: Any) -> Iterator[Any]:
    for e in errors:
        yield e
        yield from all_errors(e.context)


def agrees(check: Any, invalid: type, ref: Any, doc: Any) -> str:
    """Return "" if the compiled check and jsonschema agree on doc, else a description."""
    try:
        check(doc)
        compiled = None
    except invalid as e:
        compiled = e
    ref_errors = list(all_errors(ref.iter_errors(doc)))
    if compiled is None:
        return "" if not ref_errors else f"compiled passed, jsonschema: {ref_errors[0].message}"
    if not ref_errors:
        return f"compiled failed ({compiled.parts} {compiled.message}), jsonschema passed"
    parts = compiled.parts
    for e in ref_errors:
        path = list(e.absolute_path)
        if compiled.message == "is a required property":
            if e.validator == "required" and path == parts[:-1] and repr(parts[-1]) in e.message:
                return ""
        elif path == parts:
            if e.validator in ("type", "enum", "minimum", "maximum", "pattern") and len(e.message) < 100:
                if e.message != compiled.message:
                    return f"message differs: {compiled.message!r} vs {e.message!r}"
            return ""
    return f"compiled error at {parts} ({compiled.message}) not among jsonschema's"


def good_configs() -> list[dict[str, Any]]:
    docs = [json.loads(p.read_text()) for p in sorted(GOOD.glob("*.json"))]
    return docs + [default_spec(), default_spec(rootless=True), {"ociVersion": "1.0.0"}]


def test_compiled_agrees_with_jsonschema_on_good_configs() -> None:
    ref = reference_validator("config-schema.json")
    for doc in good_configs():
        assert agrees(_schema_config.check_config, _schema_config.Invalid, ref, doc) == ""


@pytest.mark.parametrize("base", ["full.json", "default.json"])
def test_compiled_agrees_with_jsonschema_on_mutated_configs(base: str) -> None:
    ref = reference_validator("config-schema.json")
    full = json.loads((GOOD / base).read_text())
    failures = []
    n = 0
    for kind, path, value in list(mutations(full)):
        # Only the mutated section can produce an error: check it alone, with ociVersion,
        # so that jsonschema (slow) does not re-walk the whole document each time.
        doc = {"ociVersion": full["ociVersion"], path[0]: full[path[0]]}
        undo = apply(doc, kind, path, value)
        try:
            why = agrees(_schema_config.check_config, _schema_config.Invalid, ref, doc)
        finally:
            undo()
        n += 1
        if why:
            failures.append(f"{kind} {path} = {value!r}: {why}")
    assert n > 200
    assert failures == []


def test_compiled_agrees_with_jsonschema_on_mutated_process() -> None:
    ref = reference_validator("config-schema.json", "/definitions/Process")
    doc = json.loads((GOOD / "full.json").read_text())["process"]
    failures = []
    for kind, path, value in list(mutations(doc)):
        undo = apply(doc, kind, path, value)
        try:
            why = agrees(_schema_config.check_process, _schema_config.Invalid, ref, doc)
        finally:
            undo()
        if why:
            failures.append(f"{kind} {path} = {value!r}: {why}")
    assert failures == []


STATE = {"ociVersion": "1.3.0", "id": "c1", "status": "running", "pid": 42, "bundle": "/b",
         "annotations": {"a": "b"}, "rootfs": "/b/rootfs", "created": "2026-01-01T00:00:00Z"}
FEATURES = {
    "ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0",
    "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
    "mountOptions": ["ro", "rbind", "idmap"], "annotations": {"org.opencontainers.runc.version": "x"},
    "potentiallyUnsafeConfigAnnotations": ["bundle"],
    "linux": {
        "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
        "capabilities": ["CAP_CHOWN", "CAP_BPF"],
        "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": True},
        "seccomp": {"enabled": True, "actions": ["SCMP_ACT_ALLOW"], "operators": ["SCMP_CMP_EQ"],
                    "archs": ["SCMP_ARCH_X86_64"], "knownFlags": ["SECCOMP_FILTER_FLAG_LOG"],
                    "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG"]},
        "apparmor": {"enabled": True}, "selinux": {"enabled": False},
        "intelRdt": {"enabled": True, "schemata": True, "monitoring": True},
        "memoryPolicy": {"modes": ["MPOL_BIND"], "flags": ["MPOL_F_STATIC_NODES"]},
        "mountExtensions": {"idmap": {"enabled": True}}, "netDevices": {"enabled": True},
    },
}


@pytest.mark.parametrize("which", ["state", "features"])
def test_compiled_agrees_with_jsonschema_on_state_and_features(which: str) -> None:
    mod, base = {"state": (_schema_state, STATE), "features": (_schema_features, FEATURES)}[which]
    check = getattr(mod, f"check_{which}")
    ref = reference_validator(f"{which}-schema.json")
    doc = json.loads(json.dumps(base))
    assert agrees(check, mod.Invalid, ref, doc) == ""
    failures = []
    for kind, path, value in list(mutations(doc)):
        undo = apply(doc, kind, path, value)
        try:
            why = agrees(check, mod.Invalid, ref, doc)
        finally:
            undo()
        if why:
            failures.append(f"{kind} {path} = {value!r}: {why}")
    assert failures == []


def test_state_and_features_validators_report_paths() -> None:
    from ocirt.config.validate import validate_features, validate_state
    from ocirt.errors import ConfigError

    validate_state(STATE)
    validate_features(FEATURES)
    with pytest.raises(ConfigError, match=r"^state.json: status: 'gone' is not one of"):
        validate_state(dict(STATE, status="gone"))
    bad = json.loads(json.dumps(FEATURES))
    bad["linux"]["capabilities"].append("chown")
    with pytest.raises(ConfigError, match=r"^features.json: linux.capabilities\[2\]: 'chown' does not match"):
        validate_features(bad)
