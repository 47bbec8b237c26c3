"""Extra unit properties from config.json annotations "org.systemd.property.NAME", as runc has
them: the value in GVariant text form ("uint64 5", "true", "'text'", "[1, 2]"); a NAME ending in
a lowercase letter + "Sec" is systemd's documented spelling of the "USec" property, converted
from seconds."""

from __future__ import annotations

import re

from ocirt.errors import ConfigError

PREFIX = "org.systemd.property."

_NAME = re.compile(r"[A-Z][A-Za-z]*")
_INT_TYPES = {"byte": "y", "int16": "n", "uint16": "q", "int32": "i", "uint32": "u",
              "int64": "x", "uint64": "t"}
_UNSIGNED = frozenset("yqut")
_INTS = frozenset(_INT_TYPES.values())
_UNTYPED = "I"      # a number without a type word: int32, unless an array's type says more


def properties(annotations: dict | None) -> list[tuple[str, tuple[str, object]]]:
    out = []
    for key, text in sorted((annotations or {}).items()):
        if not key.startswith(PREFIX):
            continue
        where = f"annotations[{key!r}]"
        name = key[len(PREFIX):]
        if not _NAME.fullmatch(name):
            raise ConfigError(where, f"{name!r} is not a systemd property name (ASCII letters, "
                                     "starting with a capital)")
        try:
            sig, value = parse(str(text))
        except ValueError as e:
            raise ConfigError(where, f"cannot parse {text!r} as a D-Bus value: {e}") from None
        if name.endswith("Sec") and len(name) > 3 and name[-4].islower():
            if sig not in _INTS | {"d"} or value < 0:
                raise ConfigError(where, f"{name} needs a number of seconds, got {text!r}")
            name, sig, value = name[:-3] + "USec", "t", int(value * 1_000_000)
        out.append((name, (sig, value)))
    return out


def parse(text: str) -> tuple[str, object]:
    """One GVariant text value: booleans, numbers (int32 unless typed, double with a point),
    strings, and arrays of one element type."""
    sig, value, rest = _value(text.strip())
    if rest.strip():
        raise ValueError(f"unexpected {rest.strip()!r}")
    return sig.replace(_UNTYPED, "i"), value


def _value(s: str) -> tuple[str, object, str]:
    if s.startswith("["):
        items, sig, s = [], None, s[1:].lstrip()
        while not s.startswith("]"):
            isig, v, s = _value(s)
            # "[uint32 1, 2]": the first typed number types the untyped ones.
            if sig is None or (sig == _UNTYPED and isig in _INTS):
                sig = isig
            elif sig != isig and not (isig == _UNTYPED and sig in _INTS):
                raise ValueError("array elements of different types")
            items.append(v)
            s = s.lstrip()
            if s.startswith(","):
                s = s[1:].lstrip()
            elif not s.startswith("]"):
                raise ValueError("missing ] or ,")
        if sig is None:
            raise ValueError("an empty array has no type")
        if sig in _UNSIGNED and any(v < 0 for v in items):
            raise ValueError("an unsigned number cannot be negative")
        return "a" + sig, items, s[1:]
    m = re.match(r"(true|false)\b", s)
    if m:
        return "b", m.group(1) == "true", s[m.end():]
    if s[:1] in ("'", '"'):
        q, i, out = s[0], 1, ""
        while i < len(s) and s[i] != q:
            if s[i] == "\\" and i + 1 < len(s):
                i += 1
            out += s[i]
            i += 1
        if i >= len(s):
            raise ValueError("unterminated string")
        return "s", out, s[i + 1:]
    m = re.match(r"(?:(\w+)\s+)?([-+]?\d+(\.\d*)?)", s)
    if m:
        typ, num, frac = m.groups()
        rest = s[m.end():]
        if typ == "double" or (typ is None and frac):
            return "d", float(num), rest
        if frac:
            raise ValueError(f"{typ} cannot hold {num}")
        sig = _INT_TYPES.get(typ) if typ else _UNTYPED
        if sig is None:
            raise ValueError(f"unknown type {typ!r}")
        n = int(num)
        if sig in _UNSIGNED and n < 0:
            raise ValueError(f"{typ} cannot be negative")
        return sig, n, rest
    raise ValueError(f"unexpected {s[:20]!r}")
