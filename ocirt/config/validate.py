"""Validate config.json / process.json documents against specs/ and the semantic rules.

The schema part runs code generated from specs/ by hack/gen-validator (no jsonschema import:
that alone would cost ~200 ms on every `create`). The first violation is reported, found by a
depth-first walk in schema order, so the same document always yields the same message:

    config.json: linux.namespaces[1].type: 'foo' is not one of ['cgroup', 'ipc', ...]
    config.json: ociVersion: is a required property

Paths use dotted keys and [i] indexes; keys that are not identifiers (sysctl names,
annotations, unified files) are written as ["key"].
"""

from __future__ import annotations

from ocirt.config import _schema_config, semantic, syscall_args
from ocirt.config.semantic import format_path
from ocirt.errors import ConfigError

__all__ = ["format_path", "validate_config", "validate_process", "validate_state", "validate_features"]


def validate_config(doc: object, source: str = "config.json") -> None:
    """Raise ConfigError for the first schema or semantic violation in a config document."""
    try:
        _schema_config.check_config(doc)
    except _schema_config.Invalid as e:
        raise ConfigError(format_path(e.parts), e.message, source) from None
    semantic.check_config(doc, source)  # type: ignore[arg-type]  # the schema proved it a dict
    syscall_args.check_config(doc, source)  # type: ignore[arg-type]


def validate_process(doc: object, source: str = "process.json") -> None:
    """Validate a lone process object (`exec --process`): it must name what to run."""
    try:
        _schema_config.check_process(doc)
    except _schema_config.Invalid as e:
        raise ConfigError(format_path(e.parts), e.message, source) from None
    assert isinstance(doc, dict)
    if "args" not in doc:
        raise ConfigError("args", "is a required property", source)
    semantic.check_process(doc, (), source)
    syscall_args.check_process(doc, (), source)


def validate_state(doc: object, source: str = "state.json") -> None:
    """Check a state document (our own `state` output) against specs/state-schema.json."""
    from ocirt.config import _schema_state

    try:
        _schema_state.check_state(doc)
    except _schema_state.Invalid as e:
        raise ConfigError(format_path(e.parts), e.message, source) from None


def validate_features(doc: object, source: str = "features.json") -> None:
    """Check a features document (`ocirt features`) against specs/features-schema.json."""
    from ocirt.config import _schema_features

    try:
        _schema_features.check_features(doc)
    except _schema_features.Invalid as e:
        raise ConfigError(format_path(e.parts), e.message, source) from None
